// `npm run demo`: the main job end to end, fully offline. A reference collector on 127.0.0.1,
// real Suricata output (the fixture pcap replayed through a real `suricata` when one is installed,
// otherwise the eve.json Suricata wrote for it), and the agent following it and shipping alerts.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { createLogger, silentLogger } from '../src/logger.js';
import { Agent } from '../src/main.js';
import { ReferenceCollector } from '../src/collector/reference-collector.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/suricata-capture/', import.meta.url));
const HOME_NET = '[10.0.0.0/8,2001:db8:aa::/48]';
const TOKEN = 'demo-token';

function haveSuricata(): boolean {
  return spawnSync('suricata', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** eve.json from a real Suricata run over the pcap, or the recorded one. */
function produceEve(dir: string): { path: string; source: string } {
  const out = join(dir, 'suricata');
  mkdirSync(out);
  if (haveSuricata()) {
    const r = spawnSync(
      'suricata',
      ['-r', join(FIXTURES, 'http-tls-v4-v6.pcap'), '-S', join(FIXTURES, 'et-test.rules'), '-l', out, '-k', 'none', '--set', `vars.address-groups.HOME_NET=${HOME_NET}`, '--set', 'unix-command.enabled=no'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (r.status === 0) return { path: join(out, 'eve.json'), source: 'suricata -r http-tls-v4-v6.pcap (a real Suricata run just now)' };
    process.stderr.write(`suricata failed (${r.status}); using the recorded eve.json instead.\n${r.stderr.slice(-500)}\n`);
  }
  copyFileSync(join(FIXTURES, 'eve.json'), join(out, 'eve.json'));
  return { path: join(out, 'eve.json'), source: 'test/fixtures/suricata-capture/eve.json (recorded from the same pcap)' };
}

function countAlerts(evePath: string): number {
  return readFileSync(evePath, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"event_type":"alert"')).length;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'etpro-demo-'));
  try {
    const eve = produceEve(dir);
    const expected = countAlerts(eve.path);
    const yamlPath = join(dir, 'suricata.yaml');
    writeFileSync(yamlPath, `%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "${HOME_NET}"\n    EXTERNAL_NET: "!$HOME_NET"\n`);
    const rulesDir = join(dir, 'rules');
    mkdirSync(rulesDir);
    copyFileSync(join(FIXTURES, 'et-test.rules'), join(rulesDir, 'et-test.rules'));

    const collector = new ReferenceCollector(
      { port: 0, host: '127.0.0.1', dataDir: join(dir, 'collector'), rulesDir, tokens: new Map([[TOKEN, 'ACTIVE']]) },
      silentLogger(),
    );
    await collector.start();

    const config = loadConfig({
      ETPRO_TOKEN: TOKEN,
      ETPRO_BASE_URL: collector.url,
      ETPRO_EVE_PATH: eve.path,
      ETPRO_START_AT: 'beginning',
      ETPRO_STATE_DIR: join(dir, 'state'),
      ETPRO_RULES_DIR: join(dir, 'agent-rules'),
      ETPRO_SURICATA_YAML: yamlPath,
      ETPRO_SURICATA_SOCKET: join(dir, 'no-suricata.socket'),
      ETPRO_STATS_LOG: join(dir, 'suricata', 'stats.log'),
      ETPRO_STATUS_PORT: '0',
      ETPRO_RULES_UPDATE_ENABLED: 'false',
      ETPRO_HEARTBEAT_ENABLED: 'false',
      ETPRO_POLL_INTERVAL_MS: '50',
      ETPRO_LOG_FORMAT: 'text',
      ETPRO_LOG_LEVEL: 'warn',
    });
    const agent = new Agent(config, createLogger('warn', 'text', process.stderr));
    const t0 = Date.now();
    await agent.start();
    const deadline = Date.now() + 60_000;
    while (collector.stats().events < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const elapsedMs = Date.now() - t0;
    await agent.stop(); // writes the final checkpoint
    const status = agent.snapshot();
    const events = collector.events() as Record<string, unknown>[];
    await collector.stop();

    const t = status.telemetry;
    const isMasked = (v: unknown): boolean => typeof v === 'string' && v.startsWith('xxx');
    const masked = events.reduce((n, e) => n + (isMasked(e['src_ip']) ? 1 : 0) + (isMasked(e['dest_ip']) ? 1 : 0), 0);
    const example = events.find((e) => String(e['src_ip']).startsWith('xxx.')) ?? events[0];
    const lines = [
      '',
      'etpro-telemetry-sidecar demo (offline)',
      `  eve.json source:          ${eve.source}`,
      `  alerts in eve.json:       ${expected}`,
      `  alerts read:              ${t.alertsRead}`,
      `  alerts sent:              ${t.alertsSent}`,
      `  alerts acknowledged:      ${t.alertsAcked}   (collector stored ${events.length} in ${elapsedMs} ms)`,
      `  alerts rejected/skipped:  ${t.alertsRejected}`,
      `  addresses masked:         ${masked} (src_ip/dest_ip in HOME_NET or private ranges)`,
      `  HOME_NET from:            ${status.privacy.homeNetSource}`,
      `  checkpoint offset:        ${status.telemetry.follower?.checkpointOffset ?? 'n/a'} of ${statSync(eve.path).size} bytes of eve.json`,
      '',
      'One event as sent to the collector:',
      JSON.stringify(example, null, 2),
      '',
    ];
    process.stdout.write(lines.join('\n'));
    if (t.alertsAcked !== expected) {
      process.stderr.write(`demo: expected ${expected} alerts acknowledged, got ${t.alertsAcked}\n`);
      process.exitCode = 1;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
