import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ReferenceCollector } from '../../src/collector/reference-collector.js';
import { loadConfig, redactConfig } from '../../src/config.js';
import type { HeartbeatState } from '../../src/heartbeat/heartbeat-job.js';
import { silentLogger } from '../../src/logger.js';
import type { AgentStatus, TelemetryStatus } from '../../src/status/agent-status.js';
import { SubscriptionPoller } from '../../src/status/sensorinfo-poller.js';
import { StatusServer, type Readiness } from '../../src/status/status-server.js';
import { fetchAgentStatus, formatStatusSummary, formatSubscriptionSummary } from '../../src/status/status-summary.js';
import { createControlPlaneHttp } from '../../src/util/http-client.js';

const SECRET = 'status-secret-token-value';

/** Parses Prometheus text into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('status surface over HTTP', () => {
  const collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens: new Map([[SECRET, 'DORMANT']]) }, silentLogger());
  const config = loadConfig({ ETPRO_TOKEN: SECRET, ETPRO_PLATFORM: 'kubernetes', ETPRO_STATUS_PORT: '0' });
  let poller: SubscriptionPoller;
  let server: StatusServer;
  let base: string;
  let readiness: Readiness = { ready: true, reasons: [] };
  let snapshotCalls = 0;
  const telemetry: { -readonly [K in keyof TelemetryStatus]: TelemetryStatus[K] } = {
    follower: { file: '/var/log/suricata/eve.json', running: true, offset: 12_345, size: 20_000, lagBytes: 7_655, checkpointOffset: 12_000 },
    alertsRead: 120,
    alertsSent: 110,
    alertsAcked: 100,
    alertsRejected: 3,
    alertsFiltered: 7,
    malformedLines: 2,
    linesTooLong: 1,
    lastEventSentAt: '2026-12-03T16:00:01.000Z',
    lastAckAt: '2026-12-03T16:00:02.000Z',
    shipper: { state: 'backoff', lastError: 'HTTP 503', inFlight: 4 },
  };
  const heartbeat: HeartbeatState = {
    enabled: true,
    lastAttemptAt: '2026-12-03T15:30:00.000Z',
    lastSuccessAt: '2026-12-03T14:30:00.000Z',
    lastHttpCode: 500,
    lastError: 'HTTP 500',
    nextRunAt: '2026-12-03T16:40:00.000Z',
    sent: 5,
    failed: 2,
    lastPayload: null,
  };
  const snapshot = (): AgentStatus => {
    snapshotCalls++;
    return {
      agent: { version: '0.1.0', startedAt: '2026-12-03T10:00:00.000Z', uptimeS: 3_725, sensorId: '0b9d3c1e-2f4a-4c5d-9e8f-1a2b3c4d5e6f', platform: 'kubernetes' },
      subscription: poller.current(),
      telemetry,
      heartbeat,
      rules: { lastUpdate: { at: '2026-12-03T03:12:00.000Z', version: '2026120301' }, source: 'etpro', reason: 'new version', lastReload: { ok: true } },
      privacy: { homeNetSource: 'suricata.yaml', warnings: ['interface networks could not be listed'] },
      config: redactConfig(config),
    };
  };

  before(async () => {
    await collector.start();
    poller = new SubscriptionPoller(
      {
        token: SECRET,
        pollS: 900,
        http: createControlPlaneHttp({ baseUrl: collector.url, token: SECRET, timeoutMs: 2_000, caFile: null }),
        explain: () => ({ lastEventAckAt: telemetry.lastAckAt, lastHeartbeatAckAt: heartbeat.lastSuccessAt, startedAt: '2026-12-03T10:00:00.000Z' }),
      },
      silentLogger(),
    );
    await poller.start();
    server = new StatusServer({ port: 0, addr: '127.0.0.1', snapshot, readiness: () => readiness }, silentLogger());
    const port = await server.start();
    assert.ok(port > 0);
    base = server.url!;
  });
  after(async () => {
    poller.stop();
    await server.stop();
    await server.stop();
    await collector.stop();
  });

  it('answers /healthz with 200', async () => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('answers /readyz 200 when ready and 503 with the reasons when not', async () => {
    readiness = { ready: true, reasons: [] };
    let res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ready: true, reasons: [] });
    readiness = { ready: false, reasons: ['the eve.json follower is not running', 'the collector has failed for 10 minutes'] };
    res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { ready: false, reasons: readiness.reasons });
    readiness = { ready: true, reasons: [] };
  });

  it('serves /status with every section, the subscription explained and the token redacted', async () => {
    const res = await fetch(`${base}/status`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const text = await res.text();
    assert.equal(text.includes(SECRET), false);
    const s = JSON.parse(text) as AgentStatus;
    assert.equal(s.subscription.status, 'DORMANT');
    assert.equal(s.subscription.httpCode, 200);
    assert.equal(s.subscription.sensorInfo?.['status'], 'DORMANT');
    assert.ok(s.subscription.explanation.some((l) => l.includes('Last alert acknowledged by the collector at 2026-12-03T16:00:02.000Z')));
    assert.ok(s.subscription.explanation.some((l) => l.includes('Last heartbeat acknowledged at 2026-12-03T14:30:00.000Z')));
    assert.deepEqual(s.telemetry, telemetry);
    assert.deepEqual(s.heartbeat, heartbeat);
    assert.equal((s.rules.lastUpdate as { at: string }).at, '2026-12-03T03:12:00.000Z');
    assert.equal(s.rules.source, 'etpro');
    assert.deepEqual(s.privacy, { homeNetSource: 'suricata.yaml', warnings: ['interface networks could not be listed'] });
    assert.equal(s.config['token'], '(set, redacted)');
    assert.equal(s.config['platform'], 'kubernetes');
    assert.equal(s.agent.uptimeS, 3_725);
  });

  it('serves /metrics in Prometheus text, built from the snapshot once per scrape', async () => {
    const before = snapshotCalls;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.equal(snapshotCalls - before, 1);
    const m = parseMetrics(text);
    assert.equal(m.get('etpro_alerts_read_total'), 120);
    assert.equal(m.get('etpro_alerts_sent_total'), 110);
    assert.equal(m.get('etpro_alerts_acked_total'), 100);
    assert.equal(m.get('etpro_alerts_rejected_total'), 3);
    assert.equal(m.get('etpro_alerts_filtered_total'), 7);
    assert.equal(m.get('etpro_eve_malformed_lines_total'), 2);
    assert.equal(m.get('etpro_eve_lines_too_long_total'), 1);
    assert.equal(m.get('etpro_eve_offset_bytes'), 12_345);
    assert.equal(m.get('etpro_eve_lag_bytes'), 7_655);
    assert.equal(m.get('etpro_eve_follower_running'), 1);
    assert.equal(m.get('etpro_last_event_ack_timestamp_seconds'), Date.parse('2026-12-03T16:00:02.000Z') / 1_000);
    assert.equal(m.get('etpro_shipper_state{state="backoff"}'), 1);
    assert.equal(m.get('etpro_shipper_state{state="idle"}'), 0);
    assert.equal(m.get('etpro_subscription_status{status="DORMANT"}'), 1);
    assert.equal(m.get('etpro_subscription_status{status="ACTIVE"}'), 0);
    assert.equal(m.get('etpro_heartbeats_total{result="acknowledged"}'), 5);
    assert.equal(m.get('etpro_heartbeats_total{result="failed"}'), 2);
    assert.equal(m.get('etpro_heartbeat_last_success_timestamp_seconds'), Date.parse('2026-12-03T14:30:00.000Z') / 1_000);
    assert.equal(m.get('etpro_rules_last_update_timestamp_seconds'), Date.parse('2026-12-03T03:12:00.000Z') / 1_000);
    assert.equal(m.get('etpro_agent_info{version="0.1.0",platform="kubernetes"}'), 1);
    assert.equal(m.get('etpro_privacy_warnings'), 1);
    // Every name is etpro_*, and no label carries a path, URL or error text.
    for (const key of m.keys()) {
      assert.match(key, /^etpro_/);
      assert.equal(/\/|HTTP|eve\.json/.test(key), false, key);
    }
  });

  it('reflects new numbers at the next scrape', async () => {
    telemetry.alertsAcked = 101;
    const m = parseMetrics(await (await fetch(`${base}/metrics`)).text());
    assert.equal(m.get('etpro_alerts_acked_total'), 101);
  });

  it('answers 404 for an unknown path and 405 for a POST', async () => {
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    const res = await fetch(`${base}/status`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
  });

  it('answers 500 with an error code when the snapshot fails, and keeps serving', async () => {
    const broken = new StatusServer(
      {
        port: 0,
        addr: '127.0.0.1',
        snapshot: () => {
          throw Object.assign(new Error('boom'), { code: 'ERR_TEST_BROKEN' });
        },
        readiness: () => readiness,
      },
      silentLogger(),
    );
    await broken.start();
    try {
      const res = await fetch(`${broken.url}/status`);
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), { error: 'internal error', code: 'ERR_TEST_BROKEN' });
      assert.equal((await fetch(`${broken.url}/healthz`)).status, 200);
    } finally {
      await broken.stop();
    }
  });

  it('refuses to start on a port already taken, naming the address', async () => {
    const other = new StatusServer({ port: Number(new URL(base).port), addr: '127.0.0.1', snapshot, readiness: () => readiness }, silentLogger());
    await assert.rejects(other.start(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_STATUS_UNAVAILABLE');
      assert.match(err.message, /127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
      return true;
    });
  });

  it('fetches a running agent status and prints the dashboard summary', async () => {
    const s = await fetchAgentStatus(base);
    const text = formatStatusSummary(s);
    const lines = text.split('\n');
    assert.ok(lines[0]!.startsWith('ET Pro telemetry sidecar 0.1.0 on kubernetes, up 1h 2m, sensor 0b9d3c1e-'));
    assert.ok(lines.includes('Status:               DORMANT'), text);
    assert.ok(lines.some((l) => /^Event received: +-$/.test(l)), text);
    assert.ok(lines.some((l) => /^Last rule download: +-$/.test(l)), text);
    assert.ok(lines.includes('Alerts:               120 read, 101 acknowledged, 3 rejected, 7 filtered (110 send attempts)'), text);
    assert.ok(lines.includes('Last alert acked:     2026-12-03T16:00:02.000Z'), text);
    assert.ok(lines.includes('Shipper:              backoff (HTTP 503)'), text);
    assert.ok(lines.includes('Following:            /var/log/suricata/eve.json at byte 12345, 7655 bytes behind'), text);
    assert.ok(lines.includes('Last heartbeat:       acknowledged at 2026-12-03T14:30:00.000Z; the last attempt (2026-12-03T15:30:00.000Z) failed: HTTP 500'), text);
    assert.ok(lines.includes('Last rules update:    2026-12-03T03:12:00.000Z (etpro)'), text);
    assert.ok(lines.includes('  warning: interface networks could not be listed'), text);
    assert.ok(text.includes('Last heartbeat acknowledged at 2026-12-03T14:30:00.000Z.'), text);
    assert.equal(text.includes(SECRET), false);
  });

  it('names the URL when the agent cannot be reached', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(fetchAgentStatus(`http://127.0.0.1:${port}`), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_STATUS_UNAVAILABLE');
      assert.ok(err.message.includes(`http://127.0.0.1:${port}/status`));
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
  });

  it('prints the server timestamps in the widget summary when the server sends them', () => {
    const text = formatSubscriptionSummary({
      status: 'ACTIVE',
      reason: null,
      errorKind: null,
      httpCode: 200,
      checkedAt: '2026-12-03T16:00:00.000Z',
      lastServerStatus: 'ACTIVE',
      sensorInfo: { sensor_status: 'ACTIVE', event_received: '2026-12-03T15:59:00Z', last_rule_download: '2026-12-03T03:00:00Z', last_heartbeat: '2026-12-03T15:30:00Z' },
      sensorInfoAt: '2026-12-03T16:00:00.000Z',
      explanation: [],
    });
    assert.equal(
      text,
      [
        'Status:               ACTIVE',
        'Event received:       2026-12-03T15:59:00Z',
        'Last rule download:   2026-12-03T03:00:00Z',
        'Last heartbeat:       2026-12-03T15:30:00Z',
        'Checked at:           2026-12-03T16:00:00.000Z',
      ].join('\n'),
    );
  });
});
