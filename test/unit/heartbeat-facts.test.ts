import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AgentError } from '../../src/errors.js';
import { HeartbeatFacts } from '../../src/heartbeat/heartbeat-facts.js';
import { SensorIdStore } from '../../src/heartbeat/sensor-id.js';
import { silentLogger } from '../../src/logger.js';
import { UnixSocketControl, type SuricataControl } from '../../src/suricata/suricata-control.js';

const FIXTURE_STATS = new URL('../fixtures/suricata-capture/stats.log', import.meta.url);

/** A SuricataControl answering from a table, as the running Suricata would. */
class TableControl implements SuricataControl {
  readonly socketPath = '(table)';
  asked: string[] = [];
  constructor(private readonly answers: Record<string, unknown>) {}
  async command(name: string): Promise<unknown> {
    this.asked.push(name);
    if (name in this.answers) return this.answers[name];
    throw new AgentError('ERR_SURICATA_NOK', `NOK ${name}`);
  }
}

function sensorDir(opts: { yaml?: string; rules?: boolean; stats?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'hb-facts-'));
  const rulesDir = join(root, 'rules');
  mkdirSync(rulesDir);
  if (opts.rules !== false) {
    writeFileSync(
      join(rulesDir, 'suricata.rules'),
      ['alert ip any any -> any any (msg:"a"; sid:2099001; rev:1;)', 'alert ip any any -> any any (msg:"b"; sid:2099002; rev:1;)', '# alert ip any any -> any any (msg:"c"; sid:2099003; rev:1;)', 'alert ip any any -> any any (msg:"d"; sid:100; rev:1;)'].join('\n'),
    );
    writeFileSync(join(rulesDir, 'telemetry_sids.txt'), '2099001\n2099002\n2099003\n');
    writeFileSync(join(rulesDir, 'telemetry_version.json'), '{"version": "2026120301"}');
  }
  const yamlPath = join(root, 'suricata.yaml');
  // The yaml names a default-rule-path that exists only in Suricata's container: the rules volume is used.
  writeFileSync(yamlPath, opts.yaml ?? '%YAML 1.1\n---\ndefault-rule-path: /var/lib/suricata/rules-in-other-container\nrule-files:\n  - suricata.rules\n');
  const statsLog = join(root, 'stats.log');
  if (opts.stats !== false) copyFileSync(FIXTURE_STATS, statsLog);
  return { root, rulesDir, yamlPath, statsLog, stateDir: join(root, 'state') };
}

function facts(d: ReturnType<typeof sensorDir>, control: SuricataControl, extra: Partial<ConstructorParameters<typeof HeartbeatFacts>[0]> = {}) {
  return new HeartbeatFacts(
    {
      control,
      sensorIds: new SensorIdStore(d.stateDir, silentLogger()),
      rulesDir: d.rulesDir,
      suricataYaml: d.yamlPath,
      statsLog: d.statsLog,
      platform: 'docker',
      softwareVersion: '9.9.9',
      now: () => 1_764_780_000_123,
      ...extra,
    },
    silentLogger(),
  );
}

describe('heartbeat facts', () => {
  it('fills every fact from the files while Suricata is stopped', async () => {
    const d = sensorDir();
    const p = await facts(d, new UnixSocketControl(join(d.root, 'no-suricata.socket')), { configuredSuricataVersion: '7.0.10' }).collect();
    assert.match(p.sensor_id, /^[0-9a-f-]{36}$/);
    assert.equal(p.software_version, '9.9.9');
    assert.equal(p.platform, 'docker');
    assert.equal(p.suricata_status, 'Stopped');
    assert.equal(p.suricata_version, '7.0.10');
    assert.equal(p.system_time, 1_764_780_000);
    assert.equal(p.ruleset_version, '2026120301');
    assert.equal(p.total_enabled_rules, 3);
    assert.equal(p.total_enabled_telemetry_rules, 2);
    assert.equal(p.mode, 'IDS');
    assert.deepEqual(p.log_stats, {
      'capture.kernel_packets': null,
      'decoder.pkts': 1654,
      'decoder.bytes': 226083,
      'decoder.ipv4': 911,
      'decoder.ipv6': 743,
      'flow.tcp': 130,
      'flow.udp': 0,
      'detect.alert': 112,
    });
  });

  it('asks the running Suricata for its version and capture mode (NFQ means IPS)', async () => {
    const d = sensorDir();
    const control = new TableControl({ uptime: 34, version: '7.0.10 RELEASE', 'capture-mode': 'NFQ' });
    const p = await facts(d, control).collect();
    assert.equal(p.suricata_status, 'Running');
    assert.equal(p.suricata_version, '7.0.10 RELEASE');
    assert.equal(p.mode, 'IPS');
    assert.deepEqual(control.asked, ['uptime', 'version', 'capture-mode']);
  });

  it('reports NOTFOUND for each fact whose source is absent, without failing the others', async () => {
    const d = sensorDir({ rules: false, stats: false });
    const p = await facts(d, new UnixSocketControl(join(d.root, 'none.socket')), { suricataYaml: join(d.root, 'missing.yaml') }).collect();
    assert.equal(p.suricata_status, 'Stopped');
    assert.equal(p.suricata_version, 'NOTFOUND');
    assert.equal(p.ruleset_version, 'NOTFOUND');
    assert.equal(p.total_enabled_rules, 'NOTFOUND');
    assert.equal(p.total_enabled_telemetry_rules, 'NOTFOUND');
    assert.equal(p.mode, 'NOTFOUND');
    assert.equal(p.log_stats, 'NOTFOUND');
    assert.match(p.sensor_id, /^[0-9a-f-]{36}$/);
  });

  it('reports ERROR for a broken telemetry_version.json and a broken suricata.yaml', async () => {
    const d = sensorDir({ yaml: 'rule-files: [a\n' });
    writeFileSync(join(d.rulesDir, 'telemetry_version.json'), '{"version":');
    const p = await facts(d, new UnixSocketControl(join(d.root, 'none.socket'))).collect();
    assert.equal(p.ruleset_version, 'ERROR');
    assert.equal(p.mode, 'ERROR');
    // rules are still counted from the rules dir
    assert.equal(p.total_enabled_rules, 3);
  });

  it('uses a newer eve stats record over an older stats.log, and stats.log once it is newer again', async () => {
    const d = sensorDir();
    const f = facts(d, new UnixSocketControl(join(d.root, 'none.socket')));
    f.noteEveStats({ timestamp: new Date(Date.now() + 60_000).toISOString(), event_type: 'stats', stats: { capture: { kernel_packets: 50 }, decoder: { pkts: 25, bytes: 999, ipv4: 20, ipv6: 5 }, flow: { tcp: 3, udp: 1 }, detect: { alert: 0 } } });
    const p = await f.collect();
    assert.deepEqual(p.log_stats, { 'capture.kernel_packets': 50, 'decoder.pkts': 25, 'decoder.bytes': 999, 'decoder.ipv4': 20, 'decoder.ipv6': 5, 'flow.tcp': 3, 'flow.udp': 1, 'detect.alert': 0 });
    f.noteEveStats({ timestamp: '2020-01-01T00:00:00.000000+0000', event_type: 'stats', stats: { decoder: { pkts: 1 } } });
    const q = await f.collect();
    assert.equal(typeof q.log_stats === 'object' && q.log_stats['decoder.pkts'], 1654);
  });

  it('uses eve stats when there is no stats.log', async () => {
    const d = sensorDir({ stats: false });
    const f = facts(d, new UnixSocketControl(join(d.root, 'none.socket')));
    f.noteEveStats({ timestamp: '2026-12-03T16:23:10.350312+0000', event_type: 'stats', stats: { decoder: { pkts: 88 } } });
    const p = await f.collect();
    assert.equal(typeof p.log_stats === 'object' && p.log_stats['decoder.pkts'], 88);
    assert.equal(typeof p.log_stats === 'object' && p.log_stats['flow.tcp'], null);
  });

  it('does not re-parse unchanged rule files on the next heartbeat', async () => {
    const d = sensorDir();
    const f = facts(d, new UnixSocketControl(join(d.root, 'none.socket')));
    await f.collect();
    const after1 = f.fileParses;
    await f.collect();
    assert.equal(after1, 2);
    assert.equal(f.fileParses, after1);
  });

  it('keeps the last version Suricata gave once it stops', async () => {
    const d = sensorDir();
    let running = true;
    const control: SuricataControl = {
      socketPath: '(switch)',
      command: async (name) => {
        if (!running) throw new AgentError('ERR_SURICATA_UNAVAILABLE', 'stopped');
        return name === 'version' ? '7.0.10 RELEASE' : name === 'uptime' ? 5 : 'PCAP_DEV';
      },
    };
    const f = facts(d, control);
    assert.equal((await f.collect()).suricata_version, '7.0.10 RELEASE');
    running = false;
    const p = await f.collect();
    assert.equal(p.suricata_status, 'Stopped');
    assert.equal(p.suricata_version, '7.0.10 RELEASE');
    assert.equal(p.mode, 'IDS');
  });
});
