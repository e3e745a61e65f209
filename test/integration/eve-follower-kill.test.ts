import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const isTs = here.endsWith('.ts');
const childScript = join(dirname(here), `eve-follower-child.${isTs ? 'ts' : 'js'}`);

const line = (n: number): string => `{"event_type":"alert","n":"${String(n).padStart(6, '0')}"}`;
const LINE_BYTES = Buffer.byteLength(line(0)) + 1;
const linesText = (from: number, to: number): string => {
  let s = '';
  for (let n = from; n < to; n++) s += `${line(n)}\n`;
  return s;
};

function startChild(eve: string, stateDir: string, out: string): ChildProcess {
  const args = isTs ? ['--import', 'tsx', childScript, eve, stateDir, out] : [childScript, eve, stateDir, out];
  return spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
}

const exited = (c: ChildProcess): Promise<void> => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r())));

function outputRecords(out: string): { offset: number; n: number }[] {
  if (!existsSync(out)) return [];
  return readFileSync(out, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [offset, text] = l.split('\t');
      return { offset: Number(offset), n: Number((JSON.parse(text!) as { n: string }).n) };
    });
}

async function until(what: string, pred: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('after kill -9 and a restart every line is delivered, and only the un-checkpointed window twice', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eve-kill-'));
  const eve = join(dir, 'eve.json');
  const stateDir = join(dir, 'state');
  const out = join(dir, 'delivered.txt');
  const TOTAL = 4000;
  writeFileSync(eve, linesText(0, 2500));

  const first = startChild(eve, stateDir, out);
  t.after(() => {
    if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
  });
  await until('first run delivers 1000 lines', () => outputRecords(out).length >= 1000);
  first.kill('SIGKILL');
  await exited(first);
  assert.equal(first.signalCode, 'SIGKILL');

  const beforeKill = outputRecords(out);
  const cp = JSON.parse(readFileSync(join(stateDir, 'checkpoint.json'), 'utf8')) as { offset: number };
  assert.ok(beforeKill.length < TOTAL, 'killed mid-stream');
  assert.ok(cp.offset > 0 && cp.offset % LINE_BYTES === 0, `the checkpoint is a line start: ${cp.offset}`);
  assert.ok(cp.offset <= beforeKill.length * LINE_BYTES, 'the checkpoint never runs ahead of delivery');

  appendFileSync(eve, linesText(2500, 3000));
  const second = startChild(eve, stateDir, out);
  t.after(() => {
    if (second.exitCode === null && second.signalCode === null) second.kill('SIGKILL');
  });
  appendFileSync(eve, linesText(3000, TOTAL));
  await until('every line delivered', () => new Set(outputRecords(out).map((r) => r.n)).size === TOTAL);
  second.kill('SIGTERM');
  await exited(second);

  const all = outputRecords(out);
  const afterRestart = all.slice(beforeKill.length);
  assert.equal(afterRestart[0]!.offset, cp.offset, 'the restart resumes exactly at the checkpoint');
  assert.deepEqual(
    afterRestart.map((r) => r.n),
    Array.from({ length: TOTAL - cp.offset / LINE_BYTES }, (_, i) => cp.offset / LINE_BYTES + i),
    'the second run delivers from the checkpoint to the end, in order',
  );
  const counts = new Map<number, number>();
  for (const r of all) counts.set(r.n, (counts.get(r.n) ?? 0) + 1);
  const duplicated = [...counts].filter(([, c]) => c > 1).map(([n]) => n);
  assert.ok(
    duplicated.every((n) => n * LINE_BYTES >= cp.offset),
    'only lines past the checkpoint are delivered twice',
  );
  assert.ok([...counts.values()].every((c) => c <= 2));
  assert.equal(duplicated.length, beforeKill.length - cp.offset / LINE_BYTES);
  t.diagnostic(`delivered before kill: ${beforeKill.length}, checkpoint at line ${cp.offset / LINE_BYTES}, duplicates: ${duplicated.length}`);
});
