import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RulesStore } from '../../src/rules/rules-store.js';
import { requireOrSkip } from '../helpers/requirements.js';

/** A 64 KiB tmpfs: a real "no space left on device" without filling the machine's disk. */
function smallVolume(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('a rules install that runs out of space changes nothing in the rules dir and leaves no temp files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-full-'));
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  if (!requireOrSkip(t, smallVolume(rulesDir), 'mounting a small tmpfs needs root')) return;
  t.after(() => {
    execFileSync('umount', [rulesDir], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });
  const store = new RulesStore(rulesDir, join(dir, 'state'));
  const rule = (sid: number): string => `alert http any any -> any any (msg:"x"; content:"${'a'.repeat(60)}"; sid:${sid}; rev:1;)\n`;
  const old = { 'suricata.rules': rule(1), 'telemetry_sids.txt': '1\n', 'telemetry_version.json': '{"version":"old"}' };
  await store.install(old);

  // telemetry_sids.txt is small and comes first; suricata.rules does not fit.
  const huge = Array.from({ length: 2_000 }, (_, i) => rule(i + 2)).join('');
  await assert.rejects(store.install({ 'suricata.rules': huge, 'telemetry_sids.txt': '2\n3\n', 'telemetry_version.json': '{"version":"new"}' }), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');

  assert.deepEqual(readdirSync(rulesDir).sort(), ['suricata.rules', 'telemetry_sids.txt', 'telemetry_version.json'], 'no temp file is left behind');
  for (const [name, content] of Object.entries(old)) assert.equal(readFileSync(join(rulesDir, name), 'utf8'), content, `${name} is unchanged`);
});
