import { Counter, Gauge, Registry } from 'prom-client';
import { SUBSCRIPTION_STATUSES } from './sensorinfo-poller.js';
import { SHIPPER_STATES, rulesLastUpdateAt, type AgentStatus } from './agent-status.js';

/**
 * Prometheus metrics in their own Registry, computed from the agent's snapshot at scrape time
 * (every metric has a `collect()`; the snapshot is taken once per scrape). Names are `etpro_*`
 * with units in the name; labels come from bounded sets only (no paths, URLs or error text).
 * A time that never happened is exported as 0.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private memo: AgentStatus | null = null;

  constructor(private readonly snapshot: () => AgentStatus) {
    const snap = (): AgentStatus => this.snap();
    const r = [this.registry];
    const isoSeconds = (iso: string | null | undefined): number => {
      if (!iso) return 0;
      const ms = Date.parse(iso);
      return Number.isFinite(ms) ? ms / 1_000 : 0;
    };
    const counter = (name: string, help: string, read: (s: AgentStatus) => number): void => {
      new Counter({
        name,
        help,
        registers: r,
        collect() {
          this.reset();
          this.inc(Math.max(0, read(snap())));
        },
      });
    };
    const gauge = (name: string, help: string, read: (s: AgentStatus) => number): void => {
      new Gauge({
        name,
        help,
        registers: r,
        collect() {
          this.set(read(snap()));
        },
      });
    };

    new Gauge({
      name: 'etpro_agent_info',
      help: 'Always 1; the agent version and platform as labels.',
      labelNames: ['version', 'platform'],
      registers: r,
      collect() {
        const s = snap();
        this.reset();
        this.set({ version: s.agent.version, platform: s.agent.platform }, 1);
      },
    });
    gauge('etpro_agent_start_time_seconds', 'When the agent started (Unix time).', (s) => isoSeconds(s.agent.startedAt));

    counter('etpro_alerts_read_total', 'Alert records read from eve.json.', (s) => s.telemetry.alertsRead);
    counter('etpro_alerts_sent_total', 'Alerts sent to the collector.', (s) => s.telemetry.alertsSent);
    counter('etpro_alerts_acked_total', 'Alerts acknowledged by the collector (HTTP 201).', (s) => s.telemetry.alertsAcked);
    counter('etpro_alerts_rejected_total', 'Alerts the collector refused and that were skipped.', (s) => s.telemetry.alertsRejected);
    counter('etpro_event_retries_total', 'Event sends retried after 408, 429, 5xx, a timeout or a connection error.', (s) => s.telemetry.retries ?? 0);
    counter('etpro_event_auth_failures_total', 'Event sends answered 401 or 403 (token wrong or revoked).', (s) => s.telemetry.authFailures ?? 0);
    gauge('etpro_alerts_held', 'Alerts read and held back (no token, HOME_NET unusable, shipper full).', (s) => s.telemetry.alertsHeld ?? 0);
    gauge('etpro_rules_enabled', 'Enabled rules in the installed set (0 = none installed by the agent).', (s) => (typeof s.rules.ruleCount === 'number' ? s.rules.ruleCount : 0));
    gauge('etpro_rules_rollback_failed', '1 when the last rules update had to roll back and could not restore a working set.', (s) => {
      const rb = s.rules.rollback as { ok?: unknown } | null | undefined;
      return rb && rb.ok === false ? 1 : 0;
    });
    gauge('etpro_suricata_up', '1 while Suricata answers on its control socket, 0 when it does not (checked every 30 s).', (s) => (s.suricata?.status === 'Running' ? 1 : 0));
    counter('etpro_alerts_filtered_total', 'Alerts not sent because their SID is not in telemetry_sids.txt.', (s) => s.telemetry.alertsFiltered);
    counter('etpro_eve_malformed_lines_total', 'eve.json lines skipped because they are not JSON or lack a timestamp.', (s) => s.telemetry.malformedLines);
    counter('etpro_eve_lines_too_long_total', 'eve.json lines skipped because they exceed ETPRO_MAX_LINE_BYTES.', (s) => s.telemetry.linesTooLong);
    gauge('etpro_eve_offset_bytes', 'Byte offset read up to in the followed eve.json.', (s) => s.telemetry.follower?.offset ?? 0);
    gauge('etpro_eve_lag_bytes', 'Bytes of eve.json written by Suricata and not yet read.', (s) => s.telemetry.follower?.lagBytes ?? 0);
    gauge('etpro_eve_follower_running', '1 while the eve.json follower is reading.', (s) => (s.telemetry.follower?.running ? 1 : 0));
    gauge('etpro_last_event_sent_timestamp_seconds', 'When an alert was last sent (Unix time, 0 = never).', (s) => isoSeconds(s.telemetry.lastEventSentAt));
    gauge('etpro_last_event_ack_timestamp_seconds', 'When an alert was last acknowledged (Unix time, 0 = never).', (s) => isoSeconds(s.telemetry.lastAckAt));
    new Gauge({
      name: 'etpro_shipper_state',
      help: '1 for the state the event shipper is in, 0 for the others.',
      labelNames: ['state'],
      registers: r,
      collect() {
        const cur = snap().telemetry.shipper.state;
        for (const st of SHIPPER_STATES) this.set({ state: st }, st === cur ? 1 : 0);
      },
    });

    new Gauge({
      name: 'etpro_subscription_status',
      help: '1 for the current subscription status (ACTIVE, DORMANT, DISABLED, ERROR, UNCONFIGURED), 0 for the others.',
      labelNames: ['status'],
      registers: r,
      collect() {
        const cur = snap().subscription.status;
        for (const st of SUBSCRIPTION_STATUSES) this.set({ status: st }, st === cur ? 1 : 0);
      },
    });
    gauge('etpro_subscription_last_check_timestamp_seconds', 'When sensorinfo was last polled (Unix time, 0 = never).', (s) => isoSeconds(s.subscription.checkedAt));

    new Counter({
      name: 'etpro_heartbeats_total',
      help: 'Heartbeats sent, by result (acknowledged = HTTP 201).',
      labelNames: ['result'],
      registers: r,
      collect() {
        const h = snap().heartbeat;
        this.reset();
        this.inc({ result: 'acknowledged' }, h.sent);
        this.inc({ result: 'failed' }, h.failed);
      },
    });
    gauge('etpro_heartbeat_last_success_timestamp_seconds', 'When a heartbeat was last acknowledged (Unix time, 0 = never).', (s) => isoSeconds(s.heartbeat.lastSuccessAt));
    gauge('etpro_rules_last_update_timestamp_seconds', 'When rules were last installed (Unix time, 0 = never).', (s) => isoSeconds(rulesLastUpdateAt(s.rules)));
    gauge('etpro_privacy_warnings', 'Number of privacy warnings shown on /status (e.g. no HOME_NET found).', (s) => s.privacy.warnings.length);
  }

  /** One snapshot per scrape: taken on first use, forgotten on the next turn of the event loop. */
  private snap(): AgentStatus {
    if (this.memo === null) {
      this.memo = this.snapshot();
      setImmediate(() => {
        this.memo = null;
      });
    }
    return this.memo;
  }

  /** The exposition text (Prometheus text format). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
