import type { AxiosInstance } from 'axios';
import schedule from 'node-schedule';
import type { Config } from '../config.js';
import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { UnixSocketControl, type SuricataControl } from '../suricata/suricata-control.js';
import { describeHttpFailure } from '../util/http-client.js';
import { HeartbeatFacts, type HeartbeatPayload } from './heartbeat-facts.js';
import { SensorIdStore } from './sensor-id.js';

export const TELEMETRY_PATH = '/api/v1/telemetry';

/** The outcome of one heartbeat POST. 201 is the only success. */
export interface HeartbeatSendResult {
  readonly ok: boolean;
  readonly httpCode: number | null;
  /** Null on success; otherwise "HTTP 500", "timed out waiting for the server", … */
  readonly error: string | null;
}

/** What /status shows about heartbeats. Times are ISO 8601. */
export interface HeartbeatState {
  readonly enabled: boolean;
  readonly lastAttemptAt: string | null;
  readonly lastSuccessAt: string | null;
  readonly lastHttpCode: number | null;
  readonly lastError: string | null;
  readonly nextRunAt: string | null;
  readonly sent: number;
  readonly failed: number;
  readonly lastPayload: HeartbeatPayload | null;
}

/** POSTs one heartbeat. Never rejects. */
export async function sendHeartbeat(http: AxiosInstance, payload: HeartbeatPayload): Promise<HeartbeatSendResult> {
  try {
    const res = await http.post(TELEMETRY_PATH, payload, { headers: { 'Content-Type': 'application/json' } });
    if (res.status === 201) return { ok: true, httpCode: 201, error: null };
    const hint = res.status === 401 || res.status === 403 ? ' (the token is likely wrong or revoked)' : '';
    return { ok: false, httpCode: res.status, error: `HTTP ${res.status}${hint}` };
  } catch (err) {
    return { ok: false, httpCode: null, error: describeHttpFailure(err).reason };
  }
}

/**
 * Builds the heartbeat payload from the configuration, as `etpro-sidecar heartbeat` prints it.
 * `control` defaults to the configured Suricata socket. Rejects only when the sensor id cannot be
 * kept in the state dir (ERR_STATE_INVALID).
 */
export async function buildHeartbeat(config: Config, deps: { log?: Logger; control?: SuricataControl; facts?: HeartbeatFacts } = {}): Promise<HeartbeatPayload> {
  const facts = deps.facts ?? createHeartbeatFacts(config, deps.log ?? silentLogger(), deps.control);
  return facts.collect();
}

/** The HeartbeatFacts for a configuration (main.ts keeps one and feeds it eve `stats` records). */
export function createHeartbeatFacts(config: Config, log: Logger, control?: SuricataControl): HeartbeatFacts {
  return new HeartbeatFacts(
    {
      control: control ?? new UnixSocketControl(config.suricata.socket),
      sensorIds: new SensorIdStore(config.stateDir, log),
      rulesDir: config.rules.dir,
      suricataYaml: config.privacy.suricataYaml,
      statsLog: config.heartbeat.statsLog,
      platform: config.platform,
      configuredSuricataVersion: config.suricata.version,
    },
    log,
  );
}

export interface HeartbeatJobOptions {
  readonly facts: HeartbeatFacts;
  readonly http: AxiosInstance;
  readonly enabled: boolean;
  /** Each hourly run waits a random 0..spreadS seconds (ETPRO_HEARTBEAT_SPREAD_S). */
  readonly spreadS: number;
  /** The first run waits a random 0..startDelayMaxS seconds after start (default 30). */
  readonly startDelayMaxS?: number;
  /** Cron rule of the slots (default hourly, `0 * * * *`). */
  readonly cron?: string;
  readonly random?: () => number;
  readonly now?: () => number;
}

/**
 * The heartbeat: once shortly after start, then every hour (node-schedule), each run delayed by a
 * random spread. Runs never overlap: a slot that comes while a run is still waiting or sending
 * is skipped. A failed heartbeat is logged with its HTTP code and simply waits for the next slot.
 */
export class HeartbeatJob {
  private job: schedule.Job | null = null;
  private delayTimer: NodeJS.Timeout | null = null;
  private busy = false;
  private started = false;
  private nextRunMs: number | null = null;
  private current: Promise<HeartbeatSendResult> | null = null;
  private st: Omit<HeartbeatState, 'enabled' | 'nextRunAt'> = {
    lastAttemptAt: null,
    lastSuccessAt: null,
    lastHttpCode: null,
    lastError: null,
    sent: 0,
    failed: 0,
    lastPayload: null,
  };
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(
    private readonly opts: HeartbeatJobOptions,
    private readonly log: Logger,
  ) {
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  state(): HeartbeatState {
    return {
      enabled: this.opts.enabled,
      // Between runs: the next hourly slot (its random spread is drawn when the slot comes).
      nextRunAt: this.nextRunMs !== null ? new Date(this.nextRunMs).toISOString() : (this.job?.nextInvocation()?.toISOString() ?? null),
      ...this.st,
    };
  }

  start(): void {
    if (this.started || !this.opts.enabled) return;
    this.started = true;
    this.delayed(this.opts.startDelayMaxS ?? 30);
    this.job = schedule.scheduleJob(this.opts.cron ?? '0 * * * *', () => this.delayed(this.opts.spreadS));
  }

  /** Idempotent. Resolves when a heartbeat being sent has finished. */
  async stop(): Promise<void> {
    this.started = false;
    this.job?.cancel();
    this.job = null;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimer = null;
    this.nextRunMs = null;
    if (this.current) await this.current.catch(() => undefined);
  }

  private delayed(maxS: number): void {
    if (!this.started) return;
    if (this.busy) {
      this.log.debug('Heartbeat slot skipped: the previous run has not finished.');
      return;
    }
    this.busy = true;
    const ms = Math.floor(this.random() * Math.max(0, maxS) * 1_000);
    this.nextRunMs = this.now() + ms;
    this.delayTimer = setTimeout(() => {
      this.delayTimer = null;
      this.nextRunMs = null;
      void this.runOnce().finally(() => {
        this.busy = false;
      });
    }, ms);
    this.delayTimer.unref();
  }

  /** One heartbeat now (joins one in progress). Never rejects. */
  runOnce(): Promise<HeartbeatSendResult> {
    if (!this.current) {
      this.current = this.run().finally(() => {
        this.current = null;
      });
    }
    return this.current;
  }

  private async run(): Promise<HeartbeatSendResult> {
    const at = new Date(this.now()).toISOString();
    let payload: HeartbeatPayload;
    try {
      payload = await this.opts.facts.collect();
    } catch (err) {
      const error = `heartbeat not built: ${errorMessage(err)}`;
      this.st = { ...this.st, lastAttemptAt: at, lastError: error, lastHttpCode: null, failed: this.st.failed + 1 };
      this.log.error('Heartbeat could not be built.', { error: errorMessage(err) });
      return { ok: false, httpCode: null, error };
    }
    const result = await sendHeartbeat(this.opts.http, payload);
    if (result.ok) {
      this.st = { ...this.st, lastAttemptAt: at, lastSuccessAt: at, lastHttpCode: 201, lastError: null, sent: this.st.sent + 1, lastPayload: payload };
      this.log.info('Heartbeat acknowledged.', { httpCode: 201, suricataStatus: payload.suricata_status, rulesetVersion: payload.ruleset_version });
    } else {
      this.st = { ...this.st, lastAttemptAt: at, lastHttpCode: result.httpCode, lastError: result.error, failed: this.st.failed + 1, lastPayload: payload };
      // At most one line an hour: no rate limit needed.
      this.log.warn('Heartbeat not acknowledged; retrying at the next slot.', { httpCode: result.httpCode, error: result.error });
    }
    return result;
  }
}
