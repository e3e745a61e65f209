import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Platform } from '../config.js';
import { errorCode, errorMessage, isAgentError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SuricataControl } from '../suricata/suricata-control.js';
import { agentVersion } from './agent-version.js';
import { RuleCounter } from './rule-counter.js';
import type { SensorIdStore } from './sensor-id.js';
import { logStatsFromBlock, logStatsFromEve, readLastStatsBlock, type LogStats } from './stats-log.js';
import { modeFromCaptureMode, readSuricataYaml, resolveRuleFiles, type SuricataYamlInfo } from './suricata-yaml.js';

/** A fact that could not be read: the source is absent ("NOTFOUND") or broken ("ERROR"). */
export type Unavailable = 'NOTFOUND' | 'ERROR';

/** The heartbeat body (design §4), plus `platform`. */
export interface HeartbeatPayload {
  readonly sensor_id: string;
  readonly software_version: string;
  readonly platform: Platform;
  readonly suricata_version: string;
  /** Running when the control socket answers; Stopped when nothing listens (ENOENT/ECONNREFUSED). */
  readonly suricata_status: 'Running' | 'Stopped' | 'ERROR';
  /** Epoch seconds. */
  readonly system_time: number;
  readonly ruleset_version: string;
  readonly total_enabled_rules: number | Unavailable;
  readonly total_enabled_telemetry_rules: number | Unavailable;
  readonly mode: 'IPS' | 'IDS' | Unavailable;
  readonly log_stats: LogStats | Unavailable;
}

export interface HeartbeatFactsOptions {
  readonly control: SuricataControl;
  readonly sensorIds: SensorIdStore;
  /** The rules volume: telemetry_version.json, telemetry_sids.txt, and rule files when the yaml names none. */
  readonly rulesDir: string;
  readonly suricataYaml: string;
  readonly statsLog: string;
  readonly platform: Platform;
  /** ETPRO_SURICATA_VERSION: reported while Suricata cannot be asked and was never asked. */
  readonly configuredSuricataVersion?: string | null;
  readonly softwareVersion?: string;
  readonly socketTimeoutMs?: number;
  readonly now?: () => number;
}

export const TELEMETRY_VERSION_FILE = 'telemetry_version.json';
export const TELEMETRY_SIDS_FILE = 'telemetry_sids.txt';

const missing = (err: unknown): Unavailable => (errorCode(err) === 'ENOENT' ? 'NOTFOUND' : 'ERROR');

/**
 * Gathers the sensor facts for the heartbeat. Each fact fails on its own to "NOTFOUND"/"ERROR";
 * `collect()` never rejects except when the sensor id cannot be kept (state dir unwritable).
 * Rule files and telemetry_sids.txt are parsed again only when their mtime or size changed.
 */
export class HeartbeatFacts {
  private readonly counter = new RuleCounter();
  private readonly now: () => number;
  private lastKnownVersion: string | null = null;
  private eveStats: { stats: LogStats; atMs: number } | null = null;

  constructor(
    private readonly opts: HeartbeatFactsOptions,
    private readonly log: Logger,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** How many rule/SID files were parsed so far (unchanged files are not parsed again). */
  get fileParses(): number {
    return this.counter.parses;
  }

  /**
   * Hook for the main pipeline: give it every parsed eve `stats` record. Only the eight counters
   * and the record's time are kept. Used when stats.log is absent or older.
   */
  noteEveStats(record: unknown): void {
    const stats = logStatsFromEve(record);
    if (!stats) return;
    const ts = (record as { timestamp?: unknown }).timestamp;
    const parsed = typeof ts === 'string' ? Date.parse(ts) : NaN;
    this.eveStats = { stats, atMs: Number.isFinite(parsed) ? parsed : this.now() };
  }

  /** The sensor id (made and saved on first use), for /status. */
  sensorId(): Promise<string> {
    return this.opts.sensorIds.get();
  }

  async collect(): Promise<HeartbeatPayload> {
    const sensorId = await this.opts.sensorIds.get();
    const [suricata, yaml] = await Promise.all([this.askSuricata(), this.readYaml()]);
    const [rulesetVersion, counts, logStats] = await Promise.all([this.rulesetVersion(), this.ruleCounts(yaml.info), this.logStats()]);
    let mode: HeartbeatPayload['mode'];
    if (yaml.info === null && suricata.captureMode === null) mode = yaml.error;
    else mode = modeFromCaptureMode(suricata.captureMode, yaml.info) ?? yaml.error;
    return {
      sensor_id: sensorId,
      software_version: this.opts.softwareVersion ?? agentVersion(),
      platform: this.opts.platform,
      suricata_version: suricata.version,
      suricata_status: suricata.status,
      system_time: Math.floor(this.now() / 1_000),
      ruleset_version: rulesetVersion,
      total_enabled_rules: counts.total,
      total_enabled_telemetry_rules: counts.telemetry,
      mode,
      log_stats: logStats,
    };
  }

  private async askSuricata(): Promise<{ status: HeartbeatPayload['suricata_status']; version: string; captureMode: string | null }> {
    const timeout = this.opts.socketTimeoutMs ?? 5_000;
    const { control } = this.opts;
    let status: HeartbeatPayload['suricata_status'];
    try {
      await control.command('uptime', undefined, timeout);
      status = 'Running';
    } catch (err) {
      status = isAgentError(err, 'ERR_SURICATA_UNAVAILABLE') ? 'Stopped' : 'ERROR';
      this.log.debug('Suricata uptime not available.', { code: errorCode(err), error: errorMessage(err) });
    }
    let version: string;
    let captureMode: string | null = null;
    if (status === 'Stopped') {
      version = this.lastKnownVersion ?? this.opts.configuredSuricataVersion ?? 'NOTFOUND';
    } else {
      try {
        const v = await control.command('version', undefined, timeout);
        version = typeof v === 'string' && v.trim() !== '' ? v.trim() : 'ERROR';
        if (version !== 'ERROR') this.lastKnownVersion = version;
      } catch (err) {
        version = this.lastKnownVersion ?? this.opts.configuredSuricataVersion ?? (isAgentError(err, 'ERR_SURICATA_UNAVAILABLE') ? 'NOTFOUND' : 'ERROR');
      }
      try {
        const m = await control.command('capture-mode', undefined, timeout);
        captureMode = typeof m === 'string' ? m : null;
      } catch {
        captureMode = null;
      }
    }
    return { status, version, captureMode };
  }

  private async readYaml(): Promise<{ info: SuricataYamlInfo | null; error: Unavailable }> {
    try {
      return { info: await readSuricataYaml(this.opts.suricataYaml), error: 'ERROR' };
    } catch (err) {
      const notFound = isAgentError(err, 'ERR_SURICATA_YAML_MISSING');
      this.log.debug('suricata.yaml not usable for the heartbeat.', { file: this.opts.suricataYaml, error: errorMessage(err) });
      return { info: null, error: notFound ? 'NOTFOUND' : 'ERROR' };
    }
  }

  private async rulesetVersion(): Promise<string> {
    const file = join(this.opts.rulesDir, TELEMETRY_VERSION_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      return missing(err);
    }
    try {
      const v = (JSON.parse(text) as { version?: unknown }).version;
      if ((typeof v === 'string' && v.trim() !== '') || typeof v === 'number') return String(v).trim();
      return 'ERROR';
    } catch {
      return 'ERROR';
    }
  }

  /**
   * The rule files Suricata loads. The yaml's default-rule-path is a path inside Suricata's
   * container; when it does not exist here, the same entries are looked up in the rules volume.
   */
  private async ruleFiles(info: SuricataYamlInfo | null): Promise<string[]> {
    if (info?.defaultRulePath) {
      const here = await stat(info.defaultRulePath).then(
        (s) => s.isDirectory(),
        () => false,
      );
      if (!here) return resolveRuleFiles({ ...info, defaultRulePath: this.opts.rulesDir }, this.opts.rulesDir);
    }
    return resolveRuleFiles(info, this.opts.rulesDir);
  }

  private async ruleCounts(info: SuricataYamlInfo | null): Promise<{ total: number | Unavailable; telemetry: number | Unavailable }> {
    let enabled: Set<number>;
    try {
      const files = await this.ruleFiles(info);
      if (files.length === 0) return { total: 'NOTFOUND', telemetry: 'NOTFOUND' };
      enabled = await this.counter.enabledSids(files);
    } catch (err) {
      this.log.debug('Rule files not readable.', { error: errorMessage(err) });
      const m = missing(err);
      return { total: m, telemetry: m };
    }
    let telemetry: number | Unavailable;
    try {
      const listed = await this.counter.telemetrySids(join(this.opts.rulesDir, TELEMETRY_SIDS_FILE));
      telemetry = 0;
      for (const sid of listed) if (enabled.has(sid)) telemetry++;
    } catch (err) {
      telemetry = missing(err);
    }
    return { total: enabled.size, telemetry };
  }

  /** stats.log's last block, unless the newest eve `stats` record is more recent. */
  private async logStats(): Promise<LogStats | Unavailable> {
    let fromFile: { stats: LogStats; atMs: number } | null = null;
    let fileError: Unavailable = 'NOTFOUND';
    try {
      const { block, mtimeMs } = await readLastStatsBlock(this.opts.statsLog);
      if (block) fromFile = { stats: logStatsFromBlock(block), atMs: mtimeMs };
    } catch (err) {
      fileError = missing(err);
      if (fileError === 'ERROR') this.log.debug('stats.log not readable.', { file: this.opts.statsLog, code: errorCode(err) });
    }
    const eve = this.eveStats;
    if (fromFile && (!eve || fromFile.atMs >= eve.atMs)) return { ...fromFile.stats };
    if (eve) return { ...eve.stats };
    return fileError;
  }
}
