import type { AxiosInstance } from 'axios';
import { RateLimitedLog, type Logger } from '../logger.js';
import { describeHttpFailure, type HttpFailureKind } from '../util/http-client.js';

/**
 * Subscription status: `GET /api/v1/sensorinfo` at start and every `ETPRO_STATUS_POLL_S`.
 * The server answers (as the OPNsense plugin's dashboard widget reads it) `sensor_status`
 * (`ACTIVE`/`DORMANT`/`DISABLED`), `event_received`, `last_rule_download`, `last_heartbeat`;
 * every field it sends is kept.
 */
export type SubscriptionStatus = 'ACTIVE' | 'DORMANT' | 'DISABLED' | 'ERROR' | 'UNCONFIGURED';

export const SUBSCRIPTION_STATUSES: readonly SubscriptionStatus[] = ['ACTIVE', 'DORMANT', 'DISABLED', 'ERROR', 'UNCONFIGURED'];

/** Why the server could not be asked: an HTTP answer other than 200, or a network-level failure. */
export type SubscriptionErrorKind = 'http' | 'auth' | 'invalid-response' | HttpFailureKind;

export interface SubscriptionState {
  readonly status: SubscriptionStatus;
  /** For ERROR: one sentence naming the HTTP code or the failure (timeout, DNS, TLS, connection). */
  readonly reason: string | null;
  readonly errorKind: SubscriptionErrorKind | null;
  readonly httpCode: number | null;
  /** When the last poll finished (ISO 8601), null before the first. */
  readonly checkedAt: string | null;
  /** The last status the server itself gave, kept across later failures (null if it never answered). */
  readonly lastServerStatus: 'ACTIVE' | 'DORMANT' | 'DISABLED' | null;
  /** Every field of the last successful sensorinfo answer, and when it was received. */
  readonly sensorInfo: Readonly<Record<string, unknown>> | null;
  readonly sensorInfoAt: string | null;
  /** For DORMANT/DISABLED: what the agent knows that could explain it. Empty otherwise. */
  readonly explanation: readonly string[];
}

/** Facts the rest of the agent supplies to explain a DORMANT or DISABLED status. */
export interface ExplanationFacts {
  /** Last time the collector acknowledged an alert (ISO), null if never since start. */
  readonly lastEventAckAt: string | null;
  /** Last heartbeat the server acknowledged with 201 (ISO), null if never. */
  readonly lastHeartbeatAckAt: string | null;
  /** When the agent started (ISO). */
  readonly startedAt: string;
  /** Alerts acknowledged since start. */
  readonly alertsAcked?: number;
  /** The shipper's last error (e.g. "HTTP 401"), if any. */
  readonly shipperLastError?: string | null;
}

export interface SubscriptionPollerOptions {
  /** Null: no token configured, the status is UNCONFIGURED and nothing is asked. */
  readonly token: string | null;
  readonly pollS: number;
  readonly http: AxiosInstance;
  readonly explain?: () => ExplanationFacts;
  readonly now?: () => number;
}

export type SubscriptionListener = (state: SubscriptionState, previous: SubscriptionState) => void;

const SENSORINFO_PATH = '/api/v1/sensorinfo';

function initialState(configured: boolean): SubscriptionState {
  return {
    status: configured ? 'ERROR' : 'UNCONFIGURED',
    reason: configured ? 'not asked yet' : 'no ETPRO_TOKEN configured',
    errorKind: null,
    httpCode: null,
    checkedAt: null,
    lastServerStatus: null,
    sensorInfo: null,
    sensorInfoAt: null,
    explanation: [],
  };
}

const FIELD_ALIASES: Record<string, readonly string[]> = {
  event_received: ['event_received', 'last_event_received'],
  last_rule_download: ['last_rule_download'],
  last_heartbeat: ['last_heartbeat'],
};

/**
 * A timestamp field of a sensorinfo answer as text, by the plugin's name (`event_received`,
 * `last_rule_download`, `last_heartbeat`), accepting the `last_`-prefixed spelling too. Null when absent.
 */
export function sensorInfoField(info: Readonly<Record<string, unknown>> | null, name: 'event_received' | 'last_rule_download' | 'last_heartbeat'): string | null {
  if (!info) return null;
  for (const key of FIELD_ALIASES[name]!) {
    const v = info[key];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return null;
}

/** Reads the server's status word from a sensorinfo body; null when there is none we know. */
export function serverStatusOf(body: Record<string, unknown>): 'ACTIVE' | 'DORMANT' | 'DISABLED' | null {
  const raw = body['sensor_status'] ?? body['status'];
  if (typeof raw !== 'string') return null;
  const s = raw.trim().toUpperCase();
  return s === 'ACTIVE' || s === 'DORMANT' || s === 'DISABLED' ? s : null;
}

/**
 * Sentences explaining a DORMANT/DISABLED status from what the agent knows and what the server
 * said it last received. Pure: exported for tests and the CLI.
 */
export function explainStatus(status: SubscriptionStatus, facts: ExplanationFacts | null, info: Readonly<Record<string, unknown>> | null): string[] {
  if (status !== 'DORMANT' && status !== 'DISABLED') return [];
  const out: string[] =
    status === 'DORMANT'
      ? ['The server marks this sensor DORMANT: it has not received telemetry from it recently. Rules keep coming while alerts and heartbeats are acknowledged again.']
      : ['The server marks this sensor DISABLED: ET Pro rules are not served to it; ET Open is used instead.'];
  if (facts) {
    out.push(
      facts.lastEventAckAt
        ? `Last alert acknowledged by the collector at ${facts.lastEventAckAt}.`
        : `No alert acknowledged since the agent started at ${facts.startedAt}.`,
    );
    out.push(facts.lastHeartbeatAckAt ? `Last heartbeat acknowledged at ${facts.lastHeartbeatAckAt}.` : 'No heartbeat acknowledged since the agent started.');
    if (facts.shipperLastError) out.push(`The event shipper's last error: ${facts.shipperLastError}.`);
  }
  if (info) {
    const ev = sensorInfoField(info, 'event_received');
    if (ev) out.push(`The server reports its last event received at ${ev}.`);
    const hb = sensorInfoField(info, 'last_heartbeat');
    if (hb) out.push(`The server reports its last heartbeat received at ${hb}.`);
  }
  return out;
}

/**
 * Polls sensorinfo on a timer (unref'd) and keeps the result. The rules updater reads
 * `current()` and subscribes with `onChange`. Never throws: every failure becomes status ERROR
 * with its reason; the same error repeating is logged rate-limited.
 */
export class SubscriptionPoller {
  private state: SubscriptionState;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private inFlight: Promise<SubscriptionState> | null = null;
  private readonly listeners = new Set<SubscriptionListener>();
  private readonly now: () => number;
  private readonly errorLog: RateLimitedLog;

  constructor(
    private readonly opts: SubscriptionPollerOptions,
    private readonly log: Logger,
  ) {
    this.state = initialState(opts.token !== null);
    this.now = opts.now ?? Date.now;
    this.errorLog = new RateLimitedLog(log, 'warn', 3_600_000, this.now);
  }

  /** The latest known state (never undefined; ERROR "not asked yet" before the first poll). */
  current(): SubscriptionState {
    return this.state;
  }

  /** Calls `listener` whenever the status word changes. Returns the unsubscribe function. */
  onChange(listener: SubscriptionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Polls now, then every pollS. Resolves after the first poll. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.pollNow();
    this.schedule();
  }

  /** Idempotent. An in-flight request finishes but its result starts no new timer. */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.pollNow().finally(() => this.schedule());
    }, this.opts.pollS * 1_000);
    this.timer.unref();
  }

  /** One poll (joins one already running). Used by the timer, `status --remote`, and tests. */
  pollNow(): Promise<SubscriptionState> {
    if (!this.inFlight) {
      this.inFlight = this.poll().finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  private async poll(): Promise<SubscriptionState> {
    if (this.opts.token === null) {
      this.update({ ...initialState(false), checkedAt: new Date(this.now()).toISOString() });
      return this.state;
    }
    const checkedAt = (): string => new Date(this.now()).toISOString();
    let next: SubscriptionState;
    try {
      const res = await this.opts.http.get(SENSORINFO_PATH, { responseType: 'json' });
      const code = res.status;
      if (code === 200) {
        const body: unknown = typeof res.data === 'string' ? safeJson(res.data) : res.data;
        if (body === null || typeof body !== 'object' || Array.isArray(body)) {
          next = this.error('invalid-response', code, `sensorinfo answered HTTP 200 with a body that is not a JSON object`);
        } else {
          const info = body as Record<string, unknown>;
          const server = serverStatusOf(info);
          if (server === null) {
            next = {
              ...this.error('invalid-response', code, `sensorinfo answered HTTP 200 without a known sensor_status (${JSON.stringify(String(info['sensor_status'] ?? info['status'] ?? 'none')).slice(0, 40)})`),
              sensorInfo: info,
              sensorInfoAt: checkedAt(),
            };
          } else {
            next = {
              status: server,
              reason: null,
              errorKind: null,
              httpCode: code,
              checkedAt: checkedAt(),
              lastServerStatus: server,
              sensorInfo: info,
              sensorInfoAt: checkedAt(),
              explanation: explainStatus(server, this.facts(), info),
            };
          }
        }
      } else if (code === 401 || code === 403) {
        next = this.error('auth', code, `sensorinfo answered HTTP ${code}: the token is likely wrong or revoked`);
      } else {
        next = this.error('http', code, `sensorinfo answered HTTP ${code}`);
      }
    } catch (err) {
      const f = describeHttpFailure(err);
      next = this.error(f.kind, null, `sensorinfo could not be asked: ${f.reason}`);
    }
    this.update(next);
    return this.state;
  }

  private facts(): ExplanationFacts | null {
    if (!this.opts.explain) return null;
    try {
      return this.opts.explain();
    } catch (err) {
      this.log.debug('Explanation facts unavailable.', { error: err instanceof Error ? err.message : String(err) });
      return null;
    }
  }

  private error(kind: SubscriptionErrorKind, httpCode: number | null, reason: string): SubscriptionState {
    return {
      ...this.state,
      status: 'ERROR',
      reason,
      errorKind: kind,
      httpCode,
      checkedAt: new Date(this.now()).toISOString(),
      explanation: [],
    };
  }

  private update(next: SubscriptionState): void {
    const previous = this.state;
    this.state = next;
    if (next.status === 'ERROR') {
      const fields = { status: next.status, httpCode: next.httpCode, errorKind: next.errorKind, reason: next.reason };
      if (previous.status !== 'ERROR' || previous.reason !== next.reason) this.log.warn('Subscription status cannot be read.', fields);
      else this.errorLog.write('Subscription status still cannot be read.', fields);
    } else if (previous.status !== next.status) {
      const level = next.status === 'ACTIVE' || next.status === 'UNCONFIGURED' ? 'info' : 'warn';
      if (previous.checkedAt === null) this.log.log(level, 'Subscription status.', { status: next.status, explanation: next.explanation });
      else this.log.log(level, 'Subscription status changed.', { status: next.status, previous: previous.status, explanation: next.explanation });
    }
    if (previous.status !== next.status) {
      for (const l of this.listeners) {
        try {
          l(next, previous);
        } catch (err) {
          this.log.error('A subscription status listener failed.', { error: err instanceof Error ? err.message : String(err) });
        }
      }
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
