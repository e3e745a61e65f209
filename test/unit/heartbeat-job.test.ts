import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ReferenceCollector } from '../../src/collector/reference-collector.js';
import { HeartbeatFacts } from '../../src/heartbeat/heartbeat-facts.js';
import { HeartbeatJob, sendHeartbeat } from '../../src/heartbeat/heartbeat-job.js';
import { SensorIdStore } from '../../src/heartbeat/sensor-id.js';
import { silentLogger } from '../../src/logger.js';
import { UnixSocketControl } from '../../src/suricata/suricata-control.js';
import { createControlPlaneHttp } from '../../src/util/http-client.js';

const TOKEN = 'hb-token-1';

function makeFacts(): HeartbeatFacts {
  const root = mkdtempSync(join(tmpdir(), 'hb-job-'));
  mkdirSync(join(root, 'rules'));
  writeFileSync(join(root, 'rules', 'suricata.rules'), 'alert ip any any -> any any (msg:"a"; sid:1; rev:1;)\n');
  copyFileSync(new URL('../fixtures/suricata-capture/stats.log', import.meta.url), join(root, 'stats.log'));
  return new HeartbeatFacts(
    {
      control: new UnixSocketControl(join(root, 'none.socket')),
      sensorIds: new SensorIdStore(join(root, 'state'), silentLogger()),
      rulesDir: join(root, 'rules'),
      suricataYaml: join(root, 'suricata.yaml'),
      statsLog: join(root, 'stats.log'),
      platform: 'host',
    },
    silentLogger(),
  );
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('heartbeat job', () => {
  const collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens: new Map([[TOKEN, 'ACTIVE']]) }, silentLogger());
  let http: ReturnType<typeof createControlPlaneHttp>;
  before(async () => {
    await collector.start();
    http = createControlPlaneHttp({ baseUrl: collector.url, token: TOKEN, timeoutMs: 2_000, caFile: null });
  });
  after(() => collector.stop());

  it('posts the payload to /api/v1/telemetry and counts a 201 as acknowledged', async () => {
    const job = new HeartbeatJob({ facts: makeFacts(), http, enabled: true, spreadS: 0 }, silentLogger());
    const before = collector.heartbeats().length;
    const r = await job.runOnce();
    assert.deepEqual(r, { ok: true, httpCode: 201, error: null });
    const received = collector.heartbeats().slice(before) as Record<string, unknown>[];
    assert.equal(received.length, 1);
    assert.equal(received[0]!['suricata_status'], 'Stopped');
    assert.equal(received[0]!['total_enabled_rules'], 1);
    const st = job.state();
    assert.equal(st.sent, 1);
    assert.equal(st.failed, 0);
    assert.equal(st.lastHttpCode, 201);
    assert.ok(st.lastSuccessAt !== null && st.lastSuccessAt === st.lastAttemptAt);
    assert.equal(st.lastPayload?.sensor_id, received[0]!['sensor_id']);
  });

  it('records any other answer with its HTTP code and keeps the last success', async () => {
    const job = new HeartbeatJob({ facts: makeFacts(), http, enabled: true, spreadS: 0 }, silentLogger());
    await job.runOnce();
    const okAt = job.state().lastSuccessAt;
    collector.failNext(1, 503, { path: '/api/v1/telemetry' });
    const r = await job.runOnce();
    assert.deepEqual(r, { ok: false, httpCode: 503, error: 'HTTP 503' });
    const st = job.state();
    assert.equal(st.failed, 1);
    assert.equal(st.lastHttpCode, 503);
    assert.equal(st.lastError, 'HTTP 503');
    assert.equal(st.lastSuccessAt, okAt);
  });

  it('names a 401 as a likely wrong token', async () => {
    const bad = createControlPlaneHttp({ baseUrl: collector.url, token: 'wrong', timeoutMs: 2_000, caFile: null });
    const r = await sendHeartbeat(bad, await makeFacts().collect());
    assert.equal(r.httpCode, 401);
    assert.match(r.error ?? '', /HTTP 401.*token/);
  });

  it('reports an unreachable server without throwing', async () => {
    const port = await freePort();
    const down = createControlPlaneHttp({ baseUrl: `http://127.0.0.1:${port}`, token: TOKEN, timeoutMs: 2_000, caFile: null });
    const job = new HeartbeatJob({ facts: makeFacts(), http: down, enabled: true, spreadS: 0 }, silentLogger());
    const r = await job.runOnce();
    assert.equal(r.ok, false);
    assert.equal(r.httpCode, null);
    assert.match(r.error ?? '', /ECONNREFUSED/);
  });

  it('never runs two heartbeats at once', async () => {
    const job = new HeartbeatJob({ facts: makeFacts(), http, enabled: true, spreadS: 0 }, silentLogger());
    const before = collector.heartbeats().length;
    const [a, b] = await Promise.all([job.runOnce(), job.runOnce()]);
    assert.equal(a, b);
    assert.equal(collector.heartbeats().length - before, 1);
  });

  it('sends the first heartbeat after the random start delay and stops cleanly', async () => {
    const job = new HeartbeatJob({ facts: makeFacts(), http, enabled: true, spreadS: 1_800, startDelayMaxS: 0.2, random: () => 0.5 }, silentLogger());
    const before = collector.heartbeats().length;
    job.start();
    job.start();
    const next = job.state().nextRunAt;
    assert.ok(next !== null);
    for (let i = 0; i < 100 && job.state().sent === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(job.state().sent, 1);
    assert.equal(collector.heartbeats().length - before, 1);
    // Between runs /status still shows when the next one is due: the next hourly slot.
    const slot = job.state().nextRunAt;
    assert.ok(slot !== null, 'nextRunAt between runs');
    assert.equal(new Date(slot).getMinutes(), 0); // cron slots are in local time
    assert.ok(Date.parse(slot) > Date.now() && Date.parse(slot) <= Date.now() + 3_600_000);
    await job.stop();
    await job.stop();
    assert.equal(job.state().nextRunAt, null);
  });

  it('does nothing when disabled', async () => {
    const job = new HeartbeatJob({ facts: makeFacts(), http, enabled: false, spreadS: 0, startDelayMaxS: 0 }, silentLogger());
    job.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(job.state().enabled, false);
    assert.equal(job.state().lastAttemptAt, null);
    await job.stop();
  });
});
