import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { Config } from '../config.js';
import { AgentError, errorCode, errorMessage, isAgentError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SubscriptionStatus } from '../status/sensorinfo-poller.js';
import type { Reloader, ReloadResult } from '../suricata/reload-verify.js';
import type { SuricataControl } from '../suricata/suricata-control.js';
import { parseMatcherList, parseModifyList, parseRuleFile, selectRules, type SelectionPolicy, type SelectionResult } from './rule-selector.js';
import { RulesHttp, safeUrl, type Validators } from './rules-http.js';
import { RulesLock } from './rules-lock.js';
import { CLASSIFICATION_FILE, RULES_FILE, RulesStore, SIDS_FILE, VERSION_FILE, type InstalledVersion, type RuleSetFiles } from './rules-store.js';
import { chooseSource, etOpenUrl, suricataVersionOf, type RulesetSource } from './ruleset-source.js';
import { extractArchive, md5Hex, parseMd5File, verifyMd5, type ArchiveFiles } from './safe-extract.js';

/** The settings a RulesUpdater needs: the rules slice plus a few top-level ones. */
export interface RulesUpdaterConfig {
  readonly rules: Config['rules'];
  readonly baseUrl: string;
  readonly token: string | null;
  readonly stateDir: string;
  readonly httpTimeoutMs: number;
  readonly caFile: string | null;
  /** ETPRO_SURICATA_VERSION: used for the ET Open URL when the socket cannot be asked. */
  readonly suricataVersion: string | null;
  readonly userAgent?: string;
}

export function rulesUpdaterConfig(config: Config, userAgent?: string): RulesUpdaterConfig {
  return {
    rules: config.rules,
    baseUrl: config.baseUrl,
    token: config.token,
    stateDir: config.stateDir,
    httpTimeoutMs: config.httpTimeoutMs,
    caFile: config.caFile,
    suricataVersion: config.suricata.version,
    ...(userAgent ? { userAgent } : {}),
  };
}

export interface RulesUpdaterDeps {
  /** The current subscription status (SubscriptionPoller.current().status). */
  readonly subscription: () => SubscriptionStatus;
  readonly control: SuricataControl;
  readonly reloader: Reloader;
  readonly now?: () => number;
}

export type RulesUpdateOutcome = 'installed' | 'unchanged' | 'rolled-back';

export interface RulesUpdateResult {
  readonly outcome: RulesUpdateOutcome;
  readonly source: RulesetSource;
  readonly reason: string;
  readonly version: string;
  readonly ruleCount: number;
  readonly telemetrySidCount: number;
  readonly reload: ReloadResult | null;
  readonly rollback: RollbackInfo | null;
  /**
   * After a rollback: the set in the rules dir now (the restored last-known-good one), whereas
   * `version`/`ruleCount` describe the rejected set. Absent for other outcomes.
   */
  readonly inPlace?: { readonly version: string; readonly ruleCount: number } | null;
  /** Categories asked for in ETPRO_CATEGORIES that the archive does not have. */
  readonly missingCategories: readonly string[];
  /** Lines in the selected rule files that are neither blank, comments nor parseable rules (left out). */
  readonly skippedLines: number;
  /** SIDs listed in telemetry_sids.txt that are not among the installed rules (the file is written as given). */
  readonly telemetrySidsNotInRules: number;
}

export interface RollbackInfo {
  readonly at: string;
  /** Why the new set was rejected. */
  readonly reason: string;
  /** The reload of the restored set. */
  readonly reload: ReloadResult | null;
  readonly ok: boolean;
}

export interface RulesStatus {
  readonly lastCheckAt: string | null;
  readonly lastUpdateAt: string | null;
  readonly lastOutcome: RulesUpdateOutcome | 'failed' | null;
  readonly source: RulesetSource | null;
  readonly reason: string | null;
  readonly version: string | null;
  readonly ruleCount: number | null;
  readonly telemetrySidCount: number | null;
  readonly lastReload: { readonly method: string; readonly ok: boolean; readonly verified: boolean; readonly loaded: number | null; readonly failed: number | null; readonly durationMs: number; readonly at: string } | null;
  readonly rollback: { readonly at: string; readonly reason: string; readonly ok: boolean } | null;
  readonly lastError: { readonly code: string; readonly message: string; readonly at: string } | null;
  /** From the last install: rule-file lines that were not rules, and telemetry SIDs without a rule. */
  readonly skippedLines: number | null;
  readonly telemetrySidsNotInRules: number | null;
  /** Whether suricata.rules exists in the rules dir (checked after every update and at load); null = not checked yet. */
  readonly rulesFilePresent: boolean | null;
  readonly running: boolean;
}

/**
 * One sentence naming what is wrong with the rules, for readiness: the last update ended rolled
 * back without a working restore, or the rules dir has no suricata.rules after an update. Null when fine.
 */
export function rulesHealthProblem(status: RulesStatus): string | null {
  if (status.lastOutcome === 'rolled-back' && status.rollback && !status.rollback.ok) {
    return `The last rules update failed and the rollback did not restore a working set (${status.rollback.reason}).`;
  }
  if (status.lastOutcome !== null && status.rulesFilePresent === false) {
    return `The rules dir has no ${RULES_FILE} after the last rules update (${status.lastOutcome}${status.lastError ? `: ${status.lastError.code}` : ''}).`;
  }
  return null;
}

/** What the rollback reports when the new set failed on a rules dir that had no set before. */
export const NO_LAST_KNOWN_GOOD = 'no last-known-good set to roll back to; the new files stay';

interface Candidate {
  readonly source: RulesetSource;
  readonly reason: string;
  readonly version: string;
  readonly md5: string;
  readonly files: ArchiveFiles;
  readonly url: string;
  readonly validators: { etag: string | null; lastModified: string | null };
}

type Fetched =
  | Candidate
  | {
      readonly unchanged: true;
      readonly source: RulesetSource;
      readonly reason: string;
      readonly version: string;
      readonly why: string;
      /** Set when the installed set was kept because its source failed. */
      readonly problem?: { readonly code: string; readonly message: string };
    };

const SMALL_BODY = 64 * 1024;
const MIB = 1_048_576;

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

function sidsOf(text: string): number[] {
  return text
    .split('\n')
    .filter((l) => /^\s*\d+\s*$/.test(l))
    .map((l) => Number(l.trim()));
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Download → verify → select → write aside → swap → reload → verify → roll back on failure.
 * `update()` resolves with what happened (installed, unchanged, rolled back) and rejects with an
 * AgentError when nothing could be installed (download, checksum, archive, config, lock); either
 * way `status()` shows it.
 */
export class RulesUpdater {
  private readonly store: RulesStore;
  private readonly lock: RulesLock;
  private readonly http: RulesHttp;
  private readonly now: () => number;
  private st: { -readonly [K in keyof RulesStatus]: RulesStatus[K] } = {
    lastCheckAt: null,
    lastUpdateAt: null,
    lastOutcome: null,
    source: null,
    reason: null,
    version: null,
    ruleCount: null,
    telemetrySidCount: null,
    lastReload: null,
    rollback: null,
    lastError: null,
    skippedLines: null,
    telemetrySidsNotInRules: null,
    rulesFilePresent: null,
    running: false,
  };

  constructor(
    private readonly cfg: RulesUpdaterConfig,
    private readonly deps: RulesUpdaterDeps,
    private readonly log: Logger,
  ) {
    this.store = new RulesStore(cfg.rules.dir, cfg.stateDir);
    this.lock = new RulesLock(cfg.stateDir);
    this.now = deps.now ?? Date.now;
    this.http = new RulesHttp({
      timeoutMs: cfg.httpTimeoutMs,
      deadlineMs: Math.max(cfg.httpTimeoutMs, 600_000),
      caFile: cfg.caFile,
      userAgent: cfg.userAgent ?? 'etpro-telemetry-sidecar',
    });
  }

  status(): RulesStatus {
    return { ...this.st };
  }

  /** Fills status() from the installed telemetry_version.json (at start, before any update). */
  async loadInstalled(): Promise<InstalledVersion | null> {
    const v = await this.store.readInstalled().catch(() => null);
    this.st.rulesFilePresent = await fileExists(`${this.cfg.rules.dir}/${RULES_FILE}`);
    // Also picks up a set installed by another process (`etpro-sidecar rules update` beside the agent).
    if (v && (this.st.version === null || (v.installedAt && v.installedAt > (this.st.lastUpdateAt ?? '')))) {
      this.st.version = v.version;
      this.st.source = v.source;
      this.st.ruleCount = v.ruleCount;
      this.st.telemetrySidCount = v.telemetrySidCount;
      this.st.lastUpdateAt = v.installedAt || null;
    }
    return v;
  }

  async update(opts: { force?: boolean } = {}): Promise<RulesUpdateResult> {
    return this.lock.run(async () => {
      this.st.running = true;
      try {
        const result = await this.runUpdate(opts.force === true);
        this.st.lastOutcome = result.outcome;
        return result;
      } catch (err) {
        const code = errorCode(err) ?? 'ERR_RULES_DOWNLOAD';
        this.st.lastOutcome = 'failed';
        this.st.lastError = { code, message: errorMessage(err), at: this.iso() };
        this.log.error('Rules update failed; installed rules unchanged.', { code, error: errorMessage(err), ...(isAgentError(err) ? { reason: err.details['reason'] } : {}) });
        throw err;
      } finally {
        this.st.rulesFilePresent = await fileExists(`${this.cfg.rules.dir}/${RULES_FILE}`);
        this.st.running = false;
      }
    });
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private async runUpdate(force: boolean): Promise<RulesUpdateResult> {
    this.st.lastCheckAt = this.iso();
    const { policy, key } = await this.loadSelection();
    const installed = await this.store.readInstalled().catch(() => null);
    const fetched = await this.fetch(installed, key, force);
    this.st.source = fetched.source;
    this.st.reason = fetched.reason;
    this.log.info('Ruleset source chosen.', { source: fetched.source, reason: fetched.reason });

    if ('unchanged' in fetched) {
      this.log.info('Rules unchanged; nothing downloaded or reloaded.', { source: fetched.source, version: fetched.version, why: fetched.why });
      if (installed) {
        this.st.version = installed.version;
        this.st.ruleCount = installed.ruleCount;
        this.st.telemetrySidCount = installed.telemetrySidCount;
      }
      this.st.lastError = fetched.problem ? { ...fetched.problem, at: this.iso() } : null;
      return {
        outcome: 'unchanged',
        source: fetched.source,
        reason: fetched.reason,
        version: fetched.version,
        ruleCount: installed?.ruleCount ?? 0,
        telemetrySidCount: installed?.telemetrySidCount ?? 0,
        reload: null,
        rollback: null,
        missingCategories: [],
        skippedLines: 0,
        telemetrySidsNotInRules: 0,
      };
    }

    const c = fetched;
    const ruleFiles = [...c.files].filter(([p]) => p.endsWith('.rules')).map(([path, buf]) => ({ path, text: buf.toString('utf8') }));
    if (ruleFiles.length === 0) throw new AgentError('ERR_RULES_ARCHIVE', `${c.source} archive from ${safeUrl(c.url)} holds no .rules files.`, { reason: 'no-rules' });
    const sel = selectRules(ruleFiles, policy);
    if (sel.missingCategories.length > 0) this.log.warn('Some ETPRO_CATEGORIES are not in the archive.', { missing: sel.missingCategories });
    if (sel.enabled === 0) {
      throw new AgentError('ERR_RULES_ARCHIVE', `No rule is enabled after selection (${sel.total} rules in ${sel.files.length} files; check ETPRO_CATEGORIES and the disable list): refusing to install an empty ruleset.`, {
        reason: 'empty-selection',
        missingCategories: sel.missingCategories,
      });
    }
    const sidsEntry = [...c.files].find(([p]) => basename(p) === SIDS_FILE);
    const classEntry = [...c.files].find(([p]) => basename(p) === CLASSIFICATION_FILE);
    const sidsText = sidsEntry ? sidsEntry[1].toString('utf8') : null;
    const telemetrySids = sidsText === null ? [] : sidsOf(sidsText);
    const telemetrySidCount = telemetrySids.length;
    const { skippedLines, telemetrySidsNotInRules } = this.reportGaps(sel, telemetrySids, sidsEntry?.[0] ?? SIDS_FILE);
    const version: InstalledVersion = {
      version: c.version,
      source: c.source,
      md5: c.md5,
      selection: key,
      installedAt: this.iso(),
      ruleCount: sel.enabled,
      telemetrySidCount,
    };
    const set: RuleSetFiles = {
      [RULES_FILE]: sel.text,
      [VERSION_FILE]: `${JSON.stringify(version, null, 2)}\n`,
      ...(sidsText !== null ? { [SIDS_FILE]: sidsText } : {}),
      ...(classEntry ? { [CLASSIFICATION_FILE]: classEntry[1] } : {}),
    };

    await this.store.snapshotLastKnownGood();
    await this.store.install(set);
    await this.store.saveHttpValidators(c.url, c.validators).catch((err: unknown) => this.log.warn('Could not save HTTP validators.', { error: errorMessage(err) }));
    this.log.info('Rules written.', { source: c.source, version: c.version, enabled: sel.enabled, disabled: sel.disabled, files: sel.files.length, telemetrySids: telemetrySidCount, dir: this.cfg.rules.dir });

    const reload = await this.deps.reloader.reload({ enabledRules: sel.enabled });
    this.recordReload(reload);
    const base = { source: c.source, reason: c.reason, missingCategories: sel.missingCategories, skippedLines, telemetrySidsNotInRules };
    /** The new set is what the rules dir now holds. */
    const recordInstalled = (): void => {
      Object.assign(this.st, { lastUpdateAt: version.installedAt, version: c.version, ruleCount: sel.enabled, telemetrySidCount, skippedLines, telemetrySidsNotInRules });
    };

    if (reload.ok || isUnavailable(reload)) {
      if (reload.ok) this.log.info('Rules reloaded.', { method: reload.method, verified: reload.verified, loaded: reload.loaded, failed: reload.failed, durationMs: reload.durationMs, note: reload.note });
      else this.log.warn('Rules written but Suricata could not be reached to reload them; it loads them on its next start or reload.', { method: reload.method, error: reload.error?.message });
      recordInstalled();
      this.st.lastError = reload.ok ? null : { code: reload.error!.code, message: reload.error!.message, at: this.iso() };
      return { ...base, outcome: 'installed', version: c.version, ruleCount: sel.enabled, telemetrySidCount, reload, rollback: null };
    }

    // The new set failed: put the last-known-good set back and reload again.
    const why = reload.error?.message ?? 'reload failed';
    this.log.error('Rule reload failed verification; rolling back to the last-known-good rules.', { method: reload.method, code: reload.error?.code, error: why, failedRules: reload.failedRules });
    let rollback: RollbackInfo;
    if (!(await this.store.hasLastKnownGood().catch(() => false))) {
      // The rules dir had no set before this one: restoring "nothing" would leave Suricata without rules.
      rollback = { at: this.iso(), reason: `${why}; ${NO_LAST_KNOWN_GOOD}`, reload: null, ok: false };
      this.log.error(`Cannot roll back: ${NO_LAST_KNOWN_GOOD}.`, { code: reload.error?.code, error: why, dir: this.cfg.rules.dir });
      this.st.rollback = { at: rollback.at, reason: rollback.reason, ok: false };
      this.st.lastError = { code: reload.error?.code ?? 'ERR_RELOAD_FAILED', message: `${why} (${NO_LAST_KNOWN_GOOD})`, at: rollback.at };
      recordInstalled();
      return { ...base, outcome: 'rolled-back', version: c.version, ruleCount: sel.enabled, telemetrySidCount, reload, rollback };
    }
    try {
      await this.store.restoreLastKnownGood();
      const restoredText = await fs.readFile(`${this.cfg.rules.dir}/${RULES_FILE}`, 'utf8').catch(() => '');
      const restoredCount = parseRuleFile({ path: RULES_FILE, text: restoredText }).filter((r) => r.enabled).length;
      const again = await this.deps.reloader.reload({ enabledRules: restoredCount });
      rollback = { at: this.iso(), reason: why, reload: again, ok: again.ok };
      if (again.ok) this.log.warn('Rolled back to the last-known-good rules.', { loaded: again.loaded, failed: again.failed, method: again.method });
      else this.log.error('Rolled back the rule files, but reloading them failed too.', { code: again.error?.code, error: again.error?.message });
    } catch (err) {
      rollback = { at: this.iso(), reason: `${why}; restoring the last-known-good rules failed: ${errorMessage(err)}`, reload: null, ok: false };
      this.log.error('Could not restore the last-known-good rules.', { code: errorCode(err), error: errorMessage(err) });
    }
    this.st.rollback = { at: rollback.at, reason: rollback.reason, ok: rollback.ok };
    this.st.lastError = { code: reload.error?.code ?? 'ERR_RELOAD_FAILED', message: why, at: rollback.at };
    const restored = await this.store.readInstalled().catch(() => null);
    this.st.version = restored?.version ?? null;
    this.st.ruleCount = restored?.ruleCount ?? null;
    this.st.telemetrySidCount = restored?.telemetrySidCount ?? null;
    return {
      ...base,
      outcome: 'rolled-back',
      version: c.version,
      ruleCount: sel.enabled,
      telemetrySidCount,
      reload,
      rollback,
      inPlace: restored === null ? null : { version: restored.version, ruleCount: restored.ruleCount },
    };
  }

  /**
   * Warns once about rule-file lines that are not rules and about telemetry SIDs without a rule.
   * Suricata stays the judge of rule syntax (the reload verification counts rules it fails); this
   * only keeps such lines from vanishing without a word.
   */
  private reportGaps(sel: SelectionResult, telemetrySids: readonly number[], sidsPath: string): { skippedLines: number; telemetrySidsNotInRules: number } {
    const skippedLines = sel.skipped.reduce((n, f) => n + f.count, 0);
    if (skippedLines > 0) {
      this.log.warn('Rule files have lines that are neither comments nor parseable rules; they were left out.', {
        skippedLines,
        files: sel.skipped.map((f) => ({ file: f.file, count: f.count, firstLine: f.firstLine })),
      });
    }
    const installedSids = new Set(sel.allSids);
    const missing = telemetrySids.filter((sid) => !installedSids.has(sid));
    if (missing.length > 0) {
      this.log.warn('Some telemetry SIDs have no rule in the installed set; the SID list is written as the archive gave it.', {
        file: sidsPath,
        telemetrySidsNotInRules: missing.length,
        telemetrySids: telemetrySids.length,
        examples: missing.slice(0, 5),
      });
    }
    return { skippedLines, telemetrySidsNotInRules: missing.length };
  }

  private recordReload(r: ReloadResult): void {
    this.st.lastReload = { method: r.method, ok: r.ok, verified: r.verified, loaded: r.loaded, failed: r.failed, durationMs: r.durationMs, at: this.iso() };
  }

  private async loadSelection(): Promise<{ policy: SelectionPolicy; key: string }> {
    const read = async (path: string | null, variable: string): Promise<string> => {
      if (path === null) return '';
      try {
        return await fs.readFile(path, 'utf8');
      } catch (err) {
        throw new AgentError('ERR_CONFIG_INVALID', `${variable}=${path} cannot be read (${errorCode(err) ?? 'error'}).`, { file: path });
      }
    };
    const r = this.cfg.rules;
    const [disable, enable, modify] = await Promise.all([read(r.disableFile, 'ETPRO_DISABLE'), read(r.enableFile, 'ETPRO_ENABLE'), read(r.modifyFile, 'ETPRO_MODIFY')]);
    const policy: SelectionPolicy = {
      categories: r.categories,
      disable: parseMatcherList(disable, `ETPRO_DISABLE (${r.disableFile})`),
      enable: parseMatcherList(enable, `ETPRO_ENABLE (${r.enableFile})`),
      modify: parseModifyList(modify, `ETPRO_MODIFY (${r.modifyFile})`),
    };
    const key = createHash('sha256').update(JSON.stringify({ categories: r.categories, disable, enable, modify })).digest('hex').slice(0, 16);
    return { policy, key };
  }

  private async fetch(installed: InstalledVersion | null, key: string, force: boolean): Promise<Fetched> {
    const choice = chooseSource(this.deps.subscription(), this.cfg.token !== null);
    if (choice.source === 'etopen') return this.fetchEtOpen(installed, key, force, choice.reason);
    try {
      return await this.fetchEtPro(installed, key, force, choice.reason);
    } catch (err) {
      const code = errorCode(err) ?? 'ERR_RULES_DOWNLOAD';
      const httpCode = isAgentError(err) ? err.details['httpCode'] : undefined;
      if (installed?.source === 'etpro') {
        // An ET Pro outage must not swap a subscriber's ET Pro set for ET Open: keep what is installed.
        const reason = `ET Pro unavailable (${code}: ${errorMessage(err)}): kept the installed ET Pro set ${installed.version}.`;
        this.log.warn('ET Pro ruleset unavailable; keeping the installed ET Pro set.', { code, ...(httpCode !== undefined ? { httpCode } : {}), error: errorMessage(err), version: installed.version });
        return { unchanged: true, source: 'etpro', reason, version: installed.version, why: 'ET Pro unavailable', problem: { code, message: errorMessage(err) } };
      }
      const reason = `ET Pro failed (${errorCode(err) ?? 'error'}: ${errorMessage(err)}): using ET Open.`;
      this.log.warn('ET Pro ruleset unavailable and no ET Pro set installed; falling back to ET Open.', { code, ...(httpCode !== undefined ? { httpCode } : {}), error: errorMessage(err) });
      return this.fetchEtOpen(installed, key, force, reason);
    }
  }

  private sameSet(installed: InstalledVersion | null, source: RulesetSource, key: string): installed is InstalledVersion {
    return installed !== null && installed.source === source && installed.selection === key;
  }

  private async validators(url: string, installed: InstalledVersion | null, source: RulesetSource, key: string, force: boolean): Promise<Validators | null> {
    if (force || !this.sameSet(installed, source, key)) return null;
    return this.store.readHttpValidators(url).catch(() => null);
  }

  private async fetchEtPro(installed: InstalledVersion | null, key: string, force: boolean, reason: string): Promise<Fetched> {
    const versionUrl = `${this.cfg.baseUrl}/api/v1/ruleset/version`;
    const vr = await this.http.get(versionUrl, { bearer: this.cfg.token, maxBytes: SMALL_BODY, what: 'ET Pro ruleset version' });
    if (vr.kind !== 'ok') throw new AgentError('ERR_RULES_DOWNLOAD', `ET Pro ruleset version: unexpected 304 from ${safeUrl(versionUrl)}.`, { reason: 'http-status' });
    let remote: string;
    try {
      const v = (JSON.parse(vr.body.toString('utf8')) as { version?: unknown }).version;
      if (typeof v !== 'string' && typeof v !== 'number') throw new Error('no "version"');
      remote = String(v);
    } catch (err) {
      throw new AgentError('ERR_RULES_DOWNLOAD', `ET Pro ruleset version: ${safeUrl(versionUrl)} did not answer JSON with a "version" (${errorMessage(err)}).`, { reason: 'bad-version' });
    }
    if (!force && this.sameSet(installed, 'etpro', key) && installed.version === remote) {
      return { unchanged: true, source: 'etpro', reason, version: remote, why: 'installed telemetry_version.json has the published version' };
    }
    const url = `${this.cfg.baseUrl}${this.cfg.rules.rulesetPath}`;
    const validators = await this.validators(url, installed, 'etpro', key, force);
    const res = await this.http.get(url, { bearer: this.cfg.token, maxBytes: this.cfg.rules.maxMb * MIB, validators, what: 'ET Pro ruleset' });
    if (res.kind === 'not-modified') return { unchanged: true, source: 'etpro', reason, version: installed?.version ?? remote, why: 'server answered 304 Not Modified' };
    const files = await extractArchive(res.body, { maxUnpackedBytes: this.cfg.rules.maxMb * MIB });
    return { source: 'etpro', reason, version: remote, md5: md5Hex(res.body), files, url, validators: { etag: res.etag, lastModified: res.lastModified } };
  }

  private async suricataVersion(): Promise<string> {
    try {
      const v = suricataVersionOf(await this.deps.control.command('version', undefined, 5_000));
      if (v) return v;
    } catch {
      // Not answering: fall back to the configured version.
    }
    if (this.cfg.suricataVersion) return this.cfg.suricataVersion;
    throw new AgentError('ERR_RULES_DOWNLOAD', "Cannot tell Suricata's version for the ET Open URL: the control socket does not answer and ETPRO_SURICATA_VERSION is not set.", { reason: 'no-suricata-version' });
  }

  private async fetchEtOpen(installed: InstalledVersion | null, key: string, force: boolean, reason: string): Promise<Fetched> {
    const url = etOpenUrl(this.cfg.rules.etOpenUrl, await this.suricataVersion());
    let md5: string | null = null;
    try {
      const m = await this.http.get(`${url}.md5`, { maxBytes: 4_096, what: 'ET Open checksum' });
      if (m.kind === 'ok') md5 = parseMd5File(m.body.toString('utf8'));
      if (md5 === null) this.log.warn('ET Open checksum file has no MD5 in it; the archive is not verified.', { url: `${safeUrl(url)}.md5` });
    } catch (err) {
      this.log.warn('ET Open checksum not available; the archive is not verified.', { url: `${safeUrl(url)}.md5`, error: errorMessage(err) });
    }
    if (!force && md5 !== null && this.sameSet(installed, 'etopen', key) && installed.md5 === md5) {
      return { unchanged: true, source: 'etopen', reason, version: installed.version, why: 'published .md5 equals the installed archive' };
    }
    const validators = await this.validators(url, installed, 'etopen', key, force);
    const res = await this.http.get(url, { maxBytes: this.cfg.rules.maxMb * MIB, validators, what: 'ET Open ruleset' });
    if (res.kind === 'not-modified') return { unchanged: true, source: 'etopen', reason, version: installed?.version ?? '', why: 'server answered 304 Not Modified' };
    verifyMd5(res.body, md5, `ET Open archive ${safeUrl(url)}`);
    const files = await extractArchive(res.body, { maxUnpackedBytes: this.cfg.rules.maxMb * MIB });
    const md5Actual = md5Hex(res.body);
    const versionTxt = [...files].find(([p]) => basename(p) === 'version.txt');
    const version = versionTxt ? versionTxt[1].toString('utf8').trim().slice(0, 64) || md5Actual : md5Actual;
    return { source: 'etopen', reason, version, md5: md5Actual, files, url, validators: { etag: res.etag, lastModified: res.lastModified } };
  }
}

function isUnavailable(r: ReloadResult): boolean {
  const code = r.error?.code;
  return code === 'ERR_SURICATA_UNAVAILABLE' || code === 'ERR_RELOAD_UNAVAILABLE';
}
