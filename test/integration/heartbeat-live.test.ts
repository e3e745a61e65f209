import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ReferenceCollector } from '../../src/collector/reference-collector.js';
import { HeartbeatFacts } from '../../src/heartbeat/heartbeat-facts.js';
import { HeartbeatJob } from '../../src/heartbeat/heartbeat-job.js';
import { SensorIdStore } from '../../src/heartbeat/sensor-id.js';
import { LOG_STAT_NAMES, parseLastStatsBlock } from '../../src/heartbeat/stats-log.js';
import { silentLogger } from '../../src/logger.js';
import { createControlPlaneHttp } from '../../src/util/http-client.js';
import { hasSuricata, requireOrSkip } from '../helpers/requirements.js';
import { LiveSuricata } from '../helpers/live-suricata.js';

const RULES = [
  'alert http any any -> any any (msg:"HB LIVE uri"; flow:to_server,established; http.uri; content:"/hb-live"; sid:2099101; rev:1;)',
  'alert tcp any any -> any any (msg:"HB LIVE tcp"; flow:to_server; content:"hb-live-probe"; sid:2099102; rev:1;)',
  '# alert tcp any any -> any any (msg:"HB LIVE disabled"; sid:2099103; rev:1;)',
  'alert udp any any -> any 9 (msg:"HB LIVE udp"; sid:1000001; rev:1;)',
].join('\n');

const TOKEN = 'live-heartbeat-token';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Loopback HTTP traffic for Suricata to count (127.0.0.1 only). */
async function makeTraffic(): Promise<void> {
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    for (let i = 0; i < 5; i++) await (await fetch(`http://127.0.0.1:${port}/hb-live?i=${i}`)).text();
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

describe('heartbeat from a live Suricata', { timeout: 180_000 }, () => {
  const available = hasSuricata();
  let live: LiveSuricata | null = null;
  const collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens: new Map([[TOKEN, 'ACTIVE']]) }, silentLogger());
  let facts: HeartbeatFacts;

  before(async () => {
    await collector.start();
    if (!available) return;
    live = new LiveSuricata({ rules: RULES, statsIntervalS: 1 });
    writeFileSync(join(live.rulesDir, 'telemetry_sids.txt'), '2099101\n2099102\n2099103\n');
    writeFileSync(join(live.rulesDir, 'telemetry_version.json'), JSON.stringify({ version: '2026120307' }));
    await live.start();
    facts = new HeartbeatFacts(
      {
        control: live.control,
        sensorIds: new SensorIdStore(join(live.dir, 'state'), silentLogger()),
        rulesDir: live.rulesDir,
        suricataYaml: live.yamlPath,
        statsLog: live.statsLogPath,
        platform: 'host',
      },
      silentLogger(),
    );
  });
  after(async () => {
    await live?.stop();
    await collector.stop();
  });

  it('reports every key with real values while Suricata runs', async (t) => {
    if (!requireOrSkip(t, available, 'suricata (Suricata 7) is not installed')) return;
    const s = live!;
    await makeTraffic();
    // wait until stats.log has a block counting the traffic
    let pkts = 0;
    for (let i = 0; i < 150 && pkts === 0; i++) {
      await sleep(200);
      // Capture can start a moment after the socket answers: keep the traffic coming until counted.
      if (i % 5 === 4) await makeTraffic();
      if (!existsSync(s.statsLogPath)) continue;
      pkts = parseLastStatsBlock(readFileSync(s.statsLogPath, 'utf8'))?.counters.get('decoder.pkts') ?? 0;
    }
    assert.ok(pkts > 0, `stats.log never counted a packet:\n${s.log().slice(-2_000)}`);

    const p = await facts.collect();
    assert.deepEqual(Object.keys(p).sort(), [
      'log_stats', 'mode', 'platform', 'ruleset_version', 'sensor_id', 'software_version', 'suricata_status', 'suricata_version', 'system_time',
      'total_enabled_rules', 'total_enabled_telemetry_rules',
    ]);
    assert.equal(p.suricata_status, 'Running');
    assert.match(p.suricata_version, /^7\.\d+\.\d+/);
    assert.equal(p.suricata_version, await s.control.command('version'));
    assert.equal(p.mode, 'IDS');
    assert.equal(p.ruleset_version, '2026120307');
    assert.equal(p.total_enabled_rules, 3);
    assert.equal(p.total_enabled_telemetry_rules, 2);
    assert.match(p.software_version, /^\d+\.\d+\.\d+/);
    assert.ok(Math.abs(p.system_time - Date.now() / 1_000) < 60);
    assert.ok(typeof p.log_stats === 'object', `log_stats: ${String(p.log_stats)}`);
    assert.deepEqual(Object.keys(p.log_stats), [...LOG_STAT_NAMES]);
    for (const name of LOG_STAT_NAMES) assert.ok(p.log_stats[name] === null || Number.isInteger(p.log_stats[name]), name);
    assert.ok((p.log_stats['decoder.pkts'] ?? 0) >= pkts);
    assert.ok((p.log_stats['decoder.ipv4'] ?? 0) > 0);
    assert.ok((p.log_stats['decoder.bytes'] ?? 0) > (p.log_stats['decoder.pkts'] ?? 0));
    assert.ok((p.log_stats['flow.tcp'] ?? 0) > 0);
    // The same counters, structured, from the socket: never behind what the heartbeat reported.
    const counters = (await s.control.command('dump-counters')) as { decoder: { pkts: number } };
    assert.ok(counters.decoder.pkts >= (p.log_stats['decoder.pkts'] ?? 0));
  });

  it('delivers the live heartbeat to the collector, acknowledged with 201', async (t) => {
    if (!requireOrSkip(t, available, 'suricata (Suricata 7) is not installed')) return;
    const job = new HeartbeatJob(
      { facts, http: createControlPlaneHttp({ baseUrl: collector.url, token: TOKEN, timeoutMs: 5_000, caFile: null }), enabled: true, spreadS: 0 },
      silentLogger(),
    );
    const r = await job.runOnce();
    assert.deepEqual(r, { ok: true, httpCode: 201, error: null });
    const hb = collector.heartbeats().at(-1) as Record<string, unknown>;
    assert.equal(hb['suricata_status'], 'Running');
    assert.equal(hb['sensor_id'], job.state().lastPayload?.sensor_id);
    assert.equal(typeof hb['log_stats'], 'object');
  });

  it('reports Stopped with the other facts still filled once Suricata is stopped', async (t) => {
    if (!requireOrSkip(t, available, 'suricata (Suricata 7) is not installed')) return;
    const running = await facts.collect();
    await live!.stop();
    const p = await facts.collect();
    assert.equal(p.suricata_status, 'Stopped');
    assert.equal(p.suricata_version, running.suricata_version);
    assert.equal(p.sensor_id, running.sensor_id);
    assert.equal(p.ruleset_version, '2026120307');
    assert.equal(p.total_enabled_rules, 3);
    assert.equal(p.total_enabled_telemetry_rules, 2);
    assert.equal(p.mode, 'IDS');
    assert.ok(typeof p.log_stats === 'object');
    assert.ok((p.log_stats['decoder.pkts'] ?? 0) > 0);
  });
});
