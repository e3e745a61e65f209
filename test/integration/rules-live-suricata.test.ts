import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ReferenceCollector } from '../../src/collector/reference-collector.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { rulesUpdaterConfig, RulesUpdater } from '../../src/rules/rules-updater.js';
import { readReloadTime, readRulesetStats } from '../../src/suricata/reload-verify.js';
import { createReloader } from '../../src/suricata/reload-strategy.js';
import { hasSuricata, requireOrSkip } from '../helpers/requirements.js';
import { LiveSuricata } from '../helpers/live-suricata.js';

const TOKEN = 'live-suricata-token';
const marker = `etpro-live-${randomBytes(4).toString('hex')}`;
const rule = (sid: number, uri: string): string => `alert http any any -> any any (msg:"LIVE ${sid}"; flow:established,to_server; http.uri; content:"/${uri}"; sid:${sid}; rev:1;)`;
const OLD_RULE = rule(5001, `${marker}-old`);
const NEW_RULE = rule(5002, `${marker}-new`);
const BROKEN_RULE = 'alert http any any -> any any (msg:"LIVE broken"; http.uri; no_such_keyword; sid:5003; rev:1;)';

function updaterFor(live: LiveSuricata, collectorUrl: string): RulesUpdater {
  const cfg = loadConfig({
    ETPRO_TOKEN: TOKEN,
    ETPRO_BASE_URL: collectorUrl,
    ETPRO_RULES_DIR: live.rulesDir,
    ETPRO_STATE_DIR: join(live.dir, 'state'),
    ETPRO_SURICATA_SOCKET: live.socketPath,
    ETPRO_RELOAD: 'socket',
    ETPRO_RELOAD_TIMEOUT_MS: '60000',
    ETPRO_PLATFORM: 'host',
  });
  const reloader = createReloader('socket', {
    control: live.control,
    pidfile: cfg.suricata.pidfile,
    dockerSocket: cfg.suricata.dockerSocket,
    container: cfg.suricata.container,
    reloadTimeoutMs: cfg.rules.reloadTimeoutMs,
    maxFailed: cfg.rules.maxFailed,
    log: silentLogger(),
  });
  return new RulesUpdater(rulesUpdaterConfig(cfg), { subscription: () => 'ACTIVE', control: live.control, reloader }, silentLogger());
}

async function waitForAlert(evePath: string, sid: number, timeoutMs: number): Promise<Record<string, unknown> | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(evePath)) {
      for (const line of readFileSync(evePath, 'utf8').split('\n')) {
        if (!line.includes('"event_type":"alert"')) continue;
        const rec = JSON.parse(line) as { alert?: { signature_id?: number } };
        if (rec.alert?.signature_id === sid) return rec as Record<string, unknown>;
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return null;
}

describe('rules update with a live Suricata', { concurrency: false }, () => {
  let live: LiveSuricata;
  let collector: ReferenceCollector;
  let proRules: string;
  let updater: RulesUpdater;
  let skip = false;

  before(async () => {
    if (!hasSuricata()) {
      skip = true;
      return;
    }
    live = new LiveSuricata({ rules: `${OLD_RULE}\n` });
    await live.start();
    proRules = mkdtempSync(join(tmpdir(), 'live-pro-rules-'));
    writeFileSync(join(proRules, 'emerging-live.rules'), `${OLD_RULE}\n${NEW_RULE}\n`);
    writeFileSync(join(proRules, 'telemetry_sids.txt'), '5002\n');
    collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: proRules, tokens: new Map([[TOKEN, 'ACTIVE']]) }, silentLogger());
    await collector.start();
    updater = updaterFor(live, collector.url);
  });
  after(async () => {
    await live?.stop();
    await collector?.stop();
  });

  it('loads the new rule count after an update and alerts on loopback traffic matching the new rule', async (t) => {
    if (!requireOrSkip(t, !skip, 'suricata is not installed')) return;
    assert.equal((await readRulesetStats(live.control)).loaded, 1);
    const result = await updater.update();
    assert.equal(result.outcome, 'installed', JSON.stringify(result.reload));
    assert.equal(result.reload?.method, 'socket');
    assert.equal(result.reload?.verified, true);
    assert.equal(result.reload?.loaded, 2);
    assert.equal(result.reload?.failed, 0);
    assert.deepEqual(await readRulesetStats(live.control), { loaded: 2, failed: 0, skipped: 0 });
    const st = updater.status();
    assert.equal(st.lastReload?.ok, true);
    assert.equal(st.source, 'etpro');

    const server = createServer((_req, res) => res.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    let alert: Record<string, unknown> | null = null;
    try {
      const port = (server.address() as AddressInfo).port;
      // The shared loopback can drop a capture under load: ask again (a new flow each time) until the alert shows.
      for (let attempt = 0; attempt < 5 && alert === null; attempt++) {
        const res = await fetch(`http://127.0.0.1:${port}/${marker}-new?x=${attempt}`, { headers: { connection: 'close' } });
        assert.equal(await res.text(), 'hello');
        alert = await waitForAlert(live.evePath, 5002, 5_000);
      }
    } finally {
      server.closeAllConnections();
      server.close();
    }
    assert.ok(alert, `an alert of the new rule 5002 appears in eve.json; eve has: ${existsSync(live.evePath) ? readFileSync(live.evePath, 'utf8').split('\n').filter((l) => l.includes(marker)).join('\n').slice(0, 2000) : '(no eve.json)'}`);
    assert.equal((alert as { dest_ip?: string }).dest_ip, '127.0.0.1');
  });

  it('does not write or reload when the ET Pro version is unchanged', async (t) => {
    if (!requireOrSkip(t, !skip, 'suricata is not installed')) return;
    const reloadBefore = await readReloadTime(live.control);
    const mtime = statSync(join(live.rulesDir, 'suricata.rules')).mtimeMs;
    const result = await updater.update();
    assert.equal(result.outcome, 'unchanged');
    assert.equal(await readReloadTime(live.control), reloadBefore);
    assert.equal(statSync(join(live.rulesDir, 'suricata.rules')).mtimeMs, mtime);
  });

  it('rolls back an archive with a broken rule and leaves Suricata running with the old count', async (t) => {
    if (!requireOrSkip(t, !skip, 'suricata is not installed')) return;
    const goodRules = readFileSync(join(live.rulesDir, 'suricata.rules'), 'utf8');
    writeFileSync(join(proRules, 'emerging-live.rules'), `${OLD_RULE}\n${NEW_RULE}\n${BROKEN_RULE}\n`);
    const result = await updater.update();
    assert.equal(result.outcome, 'rolled-back');
    assert.equal(result.reload?.ok, false);
    assert.equal(result.reload?.failed, 1);
    assert.match(result.reload?.error?.message ?? '', /failed to load 1 rules/);
    assert.ok(result.reload?.failedRules?.some((r) => r.rule.includes('sid:5003')), 'the broken rule is named');
    assert.equal(result.rollback?.ok, true);
    assert.equal(result.ruleCount, 3, 'ruleCount describes the rejected set');
    assert.equal(result.inPlace?.ruleCount, 2, 'inPlace describes the restored set');
    assert.notEqual(result.inPlace?.version, result.version);
    assert.equal(readFileSync(join(live.rulesDir, 'suricata.rules'), 'utf8'), goodRules);
    assert.match(String(await live.control.command('version')), /^7\./);
    assert.deepEqual(await readRulesetStats(live.control), { loaded: 2, failed: 0, skipped: 0 });
    const st = updater.status();
    assert.ok(st.rollback, 'rollback on status');
    assert.match(st.rollback.reason, /failed to load 1 rules/);
    assert.equal(st.lastError?.code, 'ERR_RELOAD_FAILED');
    assert.equal(st.ruleCount, 2);
  });
});

describe('rules update with a Suricata started with -S', () => {
  it('reports Suricata NOK message and the fix, and keeps the old rule files', async (t) => {
    if (!requireOrSkip(t, hasSuricata(), 'suricata is not installed')) return;
    const sFile = join(mkdtempSync(join(tmpdir(), 'dash-s-')), 'only.rules');
    writeFileSync(sFile, `${OLD_RULE}\n`);
    const live = new LiveSuricata({ rules: `${OLD_RULE}\n`, extraArgs: ['-S', sFile] });
    const proRules = mkdtempSync(join(tmpdir(), 'live-pro-rules-'));
    writeFileSync(join(proRules, 'emerging-live.rules'), `${OLD_RULE}\n${NEW_RULE}\n`);
    const collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: proRules, tokens: new Map([[TOKEN, 'ACTIVE']]) }, silentLogger());
    await collector.start();
    try {
      await live.start();
      const updater = updaterFor(live, collector.url);
      const result = await updater.update();
      assert.equal(result.outcome, 'rolled-back');
      assert.equal(result.reload?.error?.code, 'ERR_SURICATA_NOK');
      assert.match(result.reload?.error?.message ?? '', /Live rule reload not possible if -s or -S option used at runtime\./);
      assert.match(result.reload?.error?.message ?? '', /Start Suricata without -S\/-s/);
      assert.equal(readFileSync(join(live.rulesDir, 'suricata.rules'), 'utf8'), `${OLD_RULE}\n`);
      assert.match(updater.status().lastError?.message ?? '', /-s or -S/);
    } finally {
      await live.stop();
      await collector.stop();
    }
  });
});
