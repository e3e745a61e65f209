import type { HeartbeatState } from '../heartbeat/heartbeat-job.js';
import type { SubscriptionState } from './sensorinfo-poller.js';

/**
 * What `/status` returns and `/metrics` is built from. main.ts assembles it from the components'
 * own state in a `snapshot(): AgentStatus` function; every time is ISO 8601 (UTC) or null.
 */
export interface AgentStatus {
  readonly agent: AgentInfo;
  readonly subscription: SubscriptionState;
  readonly telemetry: TelemetryStatus;
  readonly heartbeat: HeartbeatState;
  readonly rules: RulesStatus;
  readonly privacy: PrivacyStatus;
  readonly suricata?: SuricataStatus;
  /** The effective configuration, token redacted (`redactConfig` in config.ts). */
  readonly config: Readonly<Record<string, unknown>>;
}

export interface AgentInfo {
  readonly version: string;
  readonly startedAt: string;
  readonly uptimeS: number;
  readonly sensorId: string | null;
  readonly platform: string;
}

export interface FollowerStatus {
  /** The eve.json path followed. */
  readonly file: string;
  /** Whether the follower is reading (false before start, after stop, or while the file is missing). */
  readonly running: boolean;
  /** Byte offset read up to in the current file. */
  readonly offset: number;
  /** The file's size at the last poll, null when it does not exist. */
  readonly size: number | null;
  /** size − offset: bytes written by Suricata and not yet read. */
  readonly lagBytes: number | null;
  /** Offset up to which alerts are acknowledged (the checkpoint). */
  readonly checkpointOffset?: number | null;
}

/** Bounded set (a metric label). */
export type ShipperState = 'idle' | 'sending' | 'backoff' | 'auth-paused' | 'paused' | 'stopped';
export const SHIPPER_STATES: readonly ShipperState[] = ['idle', 'sending', 'backoff', 'auth-paused', 'paused', 'stopped'];

export interface TelemetryStatus {
  readonly follower: FollowerStatus | null;
  /** Alert records read from eve.json. */
  readonly alertsRead: number;
  /** Alerts POSTed (attempts that got any answer). */
  readonly alertsSent: number;
  /** Alerts the collector acknowledged (201). */
  readonly alertsAcked: number;
  /** Alerts the collector refused with a 4xx other than 401/403/408/429: skipped. */
  readonly alertsRejected: number;
  /** Alerts read and held back (no token, HOME_NET unusable, shipper full): not sent, not acknowledged. */
  readonly alertsHeld?: number;
  /** Sends that got a retryable answer (408, 429, 5xx, timeout, connection error) and were retried. */
  readonly retries?: number;
  /** Answers 401/403 (token wrong or revoked). */
  readonly authFailures?: number;
  /** Alerts not sent because their SID is not in telemetry_sids.txt. */
  readonly alertsFiltered: number;
  readonly malformedLines: number;
  readonly linesTooLong: number;
  readonly lastEventSentAt: string | null;
  readonly lastAckAt: string | null;
  readonly shipper: {
    readonly state: ShipperState;
    readonly lastError: string | null;
    readonly inFlight?: number;
  };
}

/**
 * Filled by the rules updater; shown as it is. The summary and metrics read the documented
 * fields when present: `lastUpdate` (ISO time, or an object with `at`), `source`, `reason`,
 * `lastReload`, `rollback`.
 */
export interface RulesStatus {
  readonly lastUpdate?: string | { readonly at?: string | null; readonly [k: string]: unknown } | null;
  /** When the rules dir last received a new set (ISO), as the rules updater reports it. */
  readonly lastUpdateAt?: string | null;
  readonly ruleCount?: number | null;
  readonly source?: string | null;
  readonly reason?: string | null;
  readonly lastReload?: unknown;
  readonly rollback?: unknown;
  readonly [k: string]: unknown;
}

/** Suricata as seen through its control socket, checked periodically by the agent. */
export interface SuricataStatus {
  readonly status: 'Running' | 'Stopped' | 'ERROR' | 'unknown';
  readonly version: string | null;
  readonly checkedAt: string | null;
  /** Why it is Stopped/ERROR, one sentence. */
  readonly reason: string | null;
}

export interface PrivacyStatus {
  /** Where HOME_NET came from, e.g. "suricata.yaml", "ETPRO_HOME_NET", "none (private ranges only)". */
  readonly homeNetSource: string;
  readonly warnings: readonly string[];
}

/** The time of the last rules update, whichever shape the rules updater used. */
export function rulesLastUpdateAt(rules: RulesStatus): string | null {
  if (typeof rules.lastUpdateAt === 'string') return rules.lastUpdateAt;
  const u = rules.lastUpdate;
  if (typeof u === 'string') return u;
  if (u && typeof u === 'object' && typeof u.at === 'string') return u.at;
  return null;
}
