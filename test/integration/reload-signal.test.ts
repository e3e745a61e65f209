import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/logger.js';
import { SignalReloader } from '../../src/suricata/reload-signal.js';
import { readReloadTime, readRulesetStats } from '../../src/suricata/reload-verify.js';
import { hasSuricata, requireOrSkip } from '../helpers/requirements.js';
import { LiveSuricata } from '../helpers/live-suricata.js';

const rule = (sid: number): string => `alert http any any -> any any (msg:"SIG ${sid}"; http.uri; content:"/sig-${sid}"; sid:${sid}; rev:1;)`;

describe('signal reload against a real Suricata pidfile', { concurrency: false }, () => {
  let live: LiveSuricata | null = null;

  before(async () => {
    if (!hasSuricata()) return;
    live = new LiveSuricata({ rules: `${rule(6001)}\n` });
    await live.start();
  });
  after(async () => {
    await live?.stop();
  });

  it('sends SIGUSR2 to the PID in the pidfile and verifies the new count through the socket', async (t) => {
    if (!requireOrSkip(t, live !== null, 'suricata is not installed')) return;
    const s = live!;
    const before = await readReloadTime(s.control);
    writeFileSync(join(s.rulesDir, 'suricata.rules'), `${rule(6001)}\n${rule(6002)}\n${rule(6003)}\n`);
    const r = await new SignalReloader({ pidfile: s.pidfile, reloadTimeoutMs: 30_000, maxFailed: 0 }, s.control, silentLogger()).reload({ enabledRules: 3 });
    assert.equal(r.ok, true, r.error?.message);
    assert.equal(r.method, 'signal');
    assert.equal(r.verified, true);
    assert.equal(r.loaded, 3);
    assert.notEqual(await readReloadTime(s.control), before);
    assert.equal((await readRulesetStats(s.control)).loaded, 3);
  });

  it('without a socket, counts Suricata staying up after SIGUSR2 as reloaded, unverified', async (t) => {
    if (!requireOrSkip(t, live !== null, 'suricata is not installed')) return;
    const s = live!;
    const before = await readReloadTime(s.control);
    writeFileSync(join(s.rulesDir, 'suricata.rules'), `${rule(6001)}\n`);
    const r = await new SignalReloader({ pidfile: s.pidfile, reloadTimeoutMs: 30_000, maxFailed: 0, settleMs: 1_500 }, null, silentLogger()).reload({ enabledRules: 1 });
    assert.equal(r.ok, true, r.error?.message);
    assert.equal(r.verified, false);
    assert.match(r.note ?? '', /not verified/);
    assert.notEqual(await readReloadTime(s.control), before, 'Suricata did reload');
    assert.equal((await readRulesetStats(s.control)).loaded, 1);
  });

  it('reports a missing pidfile and a stale PID with the file named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pidfile-'));
    const missing = await new SignalReloader({ pidfile: join(dir, 'none.pid'), reloadTimeoutMs: 1_000, maxFailed: 0 }, null, silentLogger()).reload({ enabledRules: 1 });
    assert.equal(missing.ok, false);
    assert.equal(missing.error?.code, 'ERR_RELOAD_UNAVAILABLE');
    assert.match(missing.error?.message ?? '', /none\.pid cannot be read \(ENOENT\)/);

    const stale = join(dir, 'stale.pid');
    writeFileSync(stale, `${spawnSync(process.execPath, ['-e', '']).pid}\n`);
    const r = await new SignalReloader({ pidfile: stale, reloadTimeoutMs: 1_000, maxFailed: 0 }, null, silentLogger()).reload({ enabledRules: 1 });
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'ERR_RELOAD_UNAVAILABLE');
    assert.match(r.error?.message ?? '', /stale/);
  });
});
