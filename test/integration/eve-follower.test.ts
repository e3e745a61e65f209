import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, copyFileSync, mkdirSync, symlinkSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { StartAt } from '../../src/config.js';
import { CheckpointStore } from '../../src/eve/checkpoint-store.js';
import { EveFollower, type EveLine, type EveFollowerOptions } from '../../src/eve/eve-follower.js';
import { createLogger, silentLogger, type Logger } from '../../src/logger.js';

const POLL_MS = 20;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'eve-follower-'));
}

const line = (n: number): string => `{"event_type":"alert","n":${n}}`;
const linesText = (from: number, to: number): string => {
  let s = '';
  for (let n = from; n < to; n++) s += `${line(n)}\n`;
  return s;
};

async function until(what: string, pred: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets the follower run several poll cycles, to show that something does NOT happen. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, POLL_MS * 6));

/** Captures log records as parsed objects. */
function capturingLogger(): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) records.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger('debug', 'json', stream), records };
}

interface Harness {
  dir: string;
  eve: string;
  stateDir: string;
  follower: EveFollower;
  got: EveLine[];
  store: CheckpointStore;
}

function harness(opts: { dir?: string; eveDir?: string; startAt?: StartAt; autoAck?: boolean; maxLineBytes?: number; maxPendingLines?: number; now?: () => number; log?: Logger; readGate?: () => boolean } = {}): Harness {
  const dir = opts.dir ?? tempDir();
  const eve = join(opts.eveDir ?? dir, 'eve.json');
  const stateDir = join(dir, 'state');
  const log = opts.log ?? silentLogger();
  const store = new CheckpointStore(stateDir, log);
  const got: EveLine[] = [];
  const options: EveFollowerOptions = {
    path: eve,
    startAt: opts.startAt ?? { kind: 'beginning' },
    maxLineBytes: opts.maxLineBytes ?? 1_048_576,
    pollIntervalMs: POLL_MS,
    maxPendingLines: opts.maxPendingLines ?? 10_000,
    ...(opts.readGate ? { readGate: opts.readGate } : {}),
  };
  const autoAck = opts.autoAck ?? true;
  const follower: EveFollower = new EveFollower(
    options,
    store,
    log,
    (lines) => {
      got.push(...lines);
      if (autoAck) for (const l of lines) follower.ack(l.seq);
    },
    opts.now,
  );
  return { dir, eve, stateDir, follower, got, store };
}

/**
 * A log dir that is a symlink to `first`; pointing it at `second` in one step changes several
 * files at once, out of the follower's view, whenever its next look happens.
 */
function swappableLogDir(): { root: string; logDir: string; first: string; second: string } {
  const root = tempDir();
  const logDir = join(root, 'log');
  const first = join(root, 'first');
  const second = join(root, 'second');
  mkdirSync(first);
  mkdirSync(second);
  symlinkSync(first, logDir);
  return { root, logDir, first, second };
}

const texts = (got: EveLine[]): string[] => got.map((l) => l.text);
const expected = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => line(from + i));

test('reads every line exactly once and in order across a rename rotation with writes during the rotation', async (t) => {
  const h = harness();
  t.after(() => h.follower.stop());
  await h.follower.start();
  const fd = openSync(h.eve, 'a');
  for (let n = 0; n < 1000; n += 100) {
    writeSync(fd, linesText(n, n + 100));
    await new Promise((r) => setImmediate(r));
  }
  renameSync(h.eve, `${h.eve}.1`);
  // The writer keeps appending to the renamed file until it reopens, as Suricata does after HUP.
  for (let n = 1000; n < 1500; n += 50) {
    writeSync(fd, linesText(n, n + 50));
    await new Promise((r) => setTimeout(r, 2));
  }
  closeSync(fd);
  const fd2 = openSync(h.eve, 'a');
  for (let n = 1500; n < 3000; n += 100) writeSync(fd2, linesText(n, n + 100));
  closeSync(fd2);

  await until('3000 lines', () => h.got.length >= 3000);
  await settle();
  assert.deepEqual(texts(h.got), expected(0, 3000));
  assert.deepEqual(h.got.map((l) => l.seq), Array.from({ length: 3000 }, (_, i) => i + 1));
  const firstFile = h.got.slice(0, 1500);
  const secondFile = h.got.slice(1500);
  // Whether the follower's first look came before the rename (it then followed the file as
  // eve.json) or after it (it then found the file as eve.json.1) depends on scheduling; every
  // line arrives once and in order either way.
  const firstName = firstFile[0]!.file;
  assert.ok(firstName === h.eve || firstName === `${h.eve}.1`, firstName);
  assert.ok(firstFile.every((l) => l.file === firstName && l.offset === Buffer.byteLength(linesText(0, Number(JSON.parse(l.text).n)))));
  assert.ok(secondFile.every((l) => l.file === h.eve && l.offset === Buffer.byteLength(linesText(1500, Number(JSON.parse(l.text).n)))));
  assert.equal(h.follower.stats().rotations, 1);
  await h.follower.flushCheckpoint();
  const cp = h.follower.stats().checkpoint;
  assert.equal(cp?.ino, statSync(h.eve).ino);
  assert.equal(cp?.offset, statSync(h.eve).size);
});

/**
 * Points `link` at `target` in one step (rename of a new symlink over the old one), so the
 * follower sees the directory's whole content appear at once, whenever it happens to look.
 */
function pointLink(link: string, target: string): void {
  symlinkSync(target, `${link}.next`);
  renameSync(`${link}.next`, link);
}

test('reads a file that was created, written and rotated before the follower first saw it, then the new file, in order', async (t) => {
  const root = tempDir();
  const logDir = join(root, 'log'); // a symlink, dangling until the directory is ready
  symlinkSync(join(root, 'missing'), logDir);
  const h = harness({ dir: root, eveDir: logDir, startAt: { kind: 'end' } });
  t.after(() => h.follower.stop());
  await h.follower.start();
  assert.equal(h.follower.stats().state, 'waiting-for-file');

  const real = join(root, 'real');
  mkdirSync(real);
  writeFileSync(join(real, 'eve.json.2'), 'not eve lines\n'); // an older rotation (mtime set below): not read
  const before = join(real, 'eve.json');
  writeFileSync(before, linesText(0, 1500));
  renameSync(before, `${before}.1`);
  writeFileSync(before, linesText(1500, 3000));
  // Old: last written before the follower began waiting; must not be read.
  const old = (Date.now() - 3_600_000) / 1000;
  utimesSync(join(real, 'eve.json.2'), old, old);
  pointLink(logDir, real);

  await until('3000 lines', () => h.got.length >= 3000);
  await settle();
  assert.deepEqual(texts(h.got), expected(0, 3000));
  assert.ok(h.got.slice(0, 1500).every((l) => l.file === `${h.eve}.1`));
  assert.ok(h.got.slice(1500).every((l) => l.file === h.eve));
  assert.equal(h.got[1500]!.offset, 0);
  assert.equal(h.follower.stats().rotations, 1);
  await h.follower.flushCheckpoint();
  const cp = await h.store.load();
  assert.equal(cp?.ino, statSync(h.eve).ino);
  assert.equal(cp?.offset, statSync(h.eve).size);
});

test('reads every file rotated out between two looks, oldest first, after finishing the open one', async (t) => {
  const { root, logDir, first, second } = swappableLogDir();
  const h = harness({ dir: root, eveDir: logDir, startAt: { kind: 'end' } });
  t.after(() => h.follower.stop());
  const fd = openSync(join(first, 'eve.json'), 'a');
  writeSync(fd, linesText(0, 5)); // before start: skipped (startAt end)
  await h.follower.start();
  writeSync(fd, linesText(5, 100));
  await until('95 lines', () => h.got.length === 95);

  // Invisible to the follower until the link moves: A rotated to .1 (and written on), B made and
  // rotated over .1, C made and rotated to .2, a compressed rotation, and D at the path.
  renameSync(join(first, 'eve.json'), join(second, 'eve.json.1'));
  writeSync(fd, linesText(100, 150));
  closeSync(fd);
  const path = join(second, 'eve.json');
  writeFileSync(path, linesText(150, 250));
  renameSync(path, join(second, 'eve.json.1'));
  await new Promise((r) => setTimeout(r, 30)); // distinct mtimes for B and C
  writeFileSync(path, linesText(250, 300));
  renameSync(path, join(second, 'eve.json.2'));
  writeFileSync(join(second, 'eve.json.3.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 10, 0x7b, 0x7d, 10]));
  writeFileSync(path, linesText(300, 400));
  pointLink(logDir, second);

  await until('395 lines', () => h.got.length >= 395);
  await settle();
  assert.deepEqual(texts(h.got), expected(5, 400));
  const files = (from: number, to: number): string[] => [...new Set(h.got.filter((l) => { const n = Number(JSON.parse(l.text).n); return n >= from && n < to; }).map((l) => l.file))];
  assert.deepEqual(files(5, 150), [h.eve]);
  assert.deepEqual(files(150, 250), [`${h.eve}.1`]);
  assert.deepEqual(files(250, 300), [`${h.eve}.2`]);
  assert.deepEqual(files(300, 400), [h.eve]);
  assert.equal(h.follower.stats().rotations, 3);
  await h.follower.flushCheckpoint();
  const cp = await h.store.load();
  assert.equal(cp?.ino, statSync(path).ino);
  assert.equal(cp?.offset, statSync(path).size);
});

test('starts over at offset 0 after copytruncate', async (t) => {
  const h = harness();
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, linesText(0, 100));
  await h.follower.start();
  await until('first 100 lines', () => h.got.length === 100);
  copyFileSync(h.eve, `${h.eve}.1`);
  truncateSync(h.eve, 0);
  appendFileSync(h.eve, linesText(100, 110));
  await until('110 lines', () => h.got.length >= 110);
  await settle();
  assert.deepEqual(texts(h.got), expected(0, 110));
  assert.equal(h.got[100]!.offset, 0);
  assert.equal(h.follower.stats().truncations, 1);
  assert.equal(h.follower.stats().rotations, 0);
});

test('finishes a deleted open file, then follows a new file with the same name', async (t) => {
  const h = harness();
  t.after(() => h.follower.stop());
  const fd = openSync(h.eve, 'a');
  writeSync(fd, linesText(0, 50));
  await h.follower.start();
  await until('50 lines', () => h.got.length === 50);
  unlinkSync(h.eve);
  writeSync(fd, linesText(50, 60));
  await until('60 lines from the deleted file', () => h.got.length === 60);
  assert.equal(h.follower.stats().state, 'following');
  closeSync(fd);
  writeFileSync(h.eve, linesText(60, 80));
  await until('80 lines', () => h.got.length >= 80);
  await settle();
  assert.deepEqual(texts(h.got), expected(0, 80));
  assert.equal(h.got[60]!.offset, 0);
  assert.equal(h.follower.stats().rotations, 1);
});

test('hands out a partial last line only after its newline arrives', async (t) => {
  const h = harness();
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, '{"a":1}\n{"b":');
  await h.follower.start();
  await until('first line', () => h.got.length === 1);
  await settle();
  assert.deepEqual(texts(h.got), ['{"a":1}']);
  assert.equal(h.follower.stats().offset, 8);
  appendFileSync(h.eve, '2,"c":"é');
  await settle();
  assert.equal(h.got.length, 1);
  appendFileSync(h.eve, '"}\r\n{"d":4}\n');
  await until('three lines', () => h.got.length === 3);
  assert.deepEqual(texts(h.got), ['{"a":1}', '{"b":2,"c":"é"}', '{"d":4}']);
  assert.deepEqual(h.got.map((l) => l.offset), [0, 8, 8 + Buffer.byteLength('{"b":2,"c":"é"}\r\n')]);
});

test('skips a line longer than maxLineBytes, counts it, logs its offset, and keeps the next line intact', async (t) => {
  const { log, records } = capturingLogger();
  const h = harness({ maxLineBytes: 1024, log });
  t.after(() => h.follower.stop());
  const first = '{"n":0}\n';
  writeFileSync(h.eve, `${first}{"big":"${'x'.repeat(3000)}`);
  await h.follower.start();
  await until('first line', () => h.got.length === 1);
  appendFileSync(h.eve, `${'y'.repeat(3000)}`);
  await settle();
  appendFileSync(h.eve, `"}\n{"n":2}\n`);
  await until('line after the long one', () => h.got.length === 2);
  await settle();
  assert.deepEqual(texts(h.got), ['{"n":0}', '{"n":2}']);
  const size = statSync(h.eve).size;
  assert.equal(h.got[1]!.offset, size - '{"n":2}\n'.length);
  assert.equal(h.follower.stats().linesTooLong, 1);
  const warn = records.find((r) => r['code'] === 'ERR_EVE_LINE_TOO_LONG');
  assert.ok(warn, 'a warning names the skipped line');
  assert.equal(warn['file'], h.eve);
  assert.equal(warn['offset'], first.length);
  await h.follower.flushCheckpoint();
  assert.equal(h.follower.stats().checkpoint?.offset, size);
});

test('stops reading at maxPendingLines without acks and resumes when lines are acknowledged', async (t) => {
  const h = harness({ autoAck: false, maxPendingLines: 10 });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, linesText(0, 100));
  await h.follower.start();
  await until('10 lines', () => h.got.length === 10);
  await settle();
  assert.equal(h.got.length, 10);
  assert.equal(h.follower.stats().state, 'paused');
  assert.equal(h.follower.stats().pendingLines, 10);
  for (const l of h.got.slice(0, 5)) h.follower.ack(l.seq);
  await until('15 lines', () => h.got.length === 15);
  await settle();
  assert.equal(h.got.length, 15);
  for (let acked = 5; acked < 100; ) {
    const upTo = h.got.length;
    for (const l of h.got.slice(acked, upTo)) h.follower.ack(l.seq);
    acked = upTo;
    if (acked < 100) await until('more lines', () => h.got.length > upTo);
  }
  assert.deepEqual(texts(h.got), expected(0, 100));
  assert.equal(h.follower.stats().pendingLines, 0);
  await until('following again', () => h.follower.stats().state === 'following');
});

test('advances the checkpoint only over contiguously acknowledged lines', async (t) => {
  const h = harness({ autoAck: false });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, linesText(0, 5));
  await h.follower.start();
  await until('5 lines', () => h.got.length === 5);
  const end = (i: number): number => h.got[i]!.offset + Buffer.byteLength(h.got[i]!.text) + 1;
  const checkpointOffset = async (): Promise<number | undefined> => {
    await h.follower.flushCheckpoint();
    return (await h.store.load())?.offset;
  };
  assert.equal(await checkpointOffset(), 0, 'startAt beginning is remembered at once');
  h.follower.ack(h.got[2]!.seq);
  h.follower.ack(h.got[1]!.seq);
  assert.equal(await checkpointOffset(), 0);
  h.follower.ack(h.got[0]!.seq);
  assert.equal(await checkpointOffset(), end(2));
  h.follower.ack(h.got[4]!.seq);
  h.follower.ack(h.got[4]!.seq);
  assert.equal(await checkpointOffset(), end(2));
  h.follower.ack(h.got[3]!.seq);
  assert.equal(await checkpointOffset(), end(4));
  assert.equal(end(4), statSync(h.eve).size);
});

test('a new follower resumes exactly at the checkpoint of the previous one', async () => {
  const dir = tempDir();
  const a = harness({ dir, autoAck: false });
  writeFileSync(a.eve, linesText(0, 10));
  await a.follower.start();
  await until('10 lines', () => a.got.length === 10);
  for (const l of a.got.slice(0, 6)) a.follower.ack(l.seq);
  a.follower.ack(a.got[8]!.seq); // not contiguous: must be read again
  await a.follower.stop();
  await a.follower.stop();

  appendFileSync(a.eve, linesText(10, 12));
  const b = harness({ dir, startAt: { kind: 'end' } });
  await b.follower.start();
  await until('6 lines', () => b.got.length === 6);
  await settle();
  await b.follower.stop();
  assert.deepEqual(texts(b.got), expected(6, 12));
  assert.equal(b.got[0]!.offset, Buffer.byteLength(linesText(0, 6)));
});

test('a new follower finishes the rotated file the checkpoint points into, then reads the current file from 0', async () => {
  const dir = tempDir();
  const a = harness({ dir, autoAck: false });
  writeFileSync(a.eve, linesText(0, 10));
  await a.follower.start();
  await until('10 lines', () => a.got.length === 10);
  for (const l of a.got.slice(0, 4)) a.follower.ack(l.seq);
  await a.follower.stop();

  renameSync(a.eve, `${a.eve}-20261203`);
  writeFileSync(`${a.eve}.2`, linesText(900, 910)); // an older rotation (last written before the checkpointed file): must not be read
  const old = (Date.now() - 3_600_000) / 1000;
  utimesSync(`${a.eve}.2`, old, old);
  writeFileSync(a.eve, linesText(10, 15));
  const b = harness({ dir, startAt: { kind: 'end' } });
  await b.follower.start();
  await until('11 lines', () => b.got.length === 11);
  await settle();
  await b.follower.stop();
  assert.deepEqual(texts(b.got), expected(4, 15));
  assert.ok(b.got.slice(0, 6).every((l) => l.file === `${a.eve}-20261203`));
  assert.ok(b.got.slice(6).every((l) => l.file === a.eve));
  assert.equal(b.got[6]!.offset, 0);
  const cp = await b.store.load();
  assert.equal(cp?.ino, statSync(a.eve).ino);
  assert.equal(cp?.offset, statSync(a.eve).size);
});

test('reads the current file from 0 when the checkpointed file is gone', async () => {
  const dir = tempDir();
  const { log, records } = capturingLogger();
  const a = harness({ dir });
  writeFileSync(a.eve, linesText(0, 10));
  await a.follower.start();
  await until('10 lines', () => a.got.length === 10);
  await a.follower.stop();
  // The new file is made before the old one goes, so it cannot reuse the old inode number.
  writeFileSync(`${dir}/next`, linesText(10, 13));
  rmSync(a.eve);
  renameSync(`${dir}/next`, a.eve);
  const b = harness({ dir, startAt: { kind: 'end' }, log });
  await b.follower.start();
  await until('3 lines', () => b.got.length === 3);
  await b.follower.stop();
  assert.deepEqual(texts(b.got), expected(10, 13));
  assert.ok(records.some((r) => r['level'] === 'warn' && String(r['message']).includes('gone')));
});

test('waits for a missing file and reads it from its start when it appears', async (t) => {
  const { log, records } = capturingLogger();
  const h = harness({ startAt: { kind: 'end' }, log });
  t.after(() => h.follower.stop());
  await h.follower.start();
  await settle();
  assert.equal(h.follower.stats().state, 'waiting-for-file');
  assert.equal(records.filter((r) => String(r['message']).startsWith('Waiting for the eve file')).length, 1, 'logged once');
  writeFileSync(h.eve, linesText(0, 3));
  await until('3 lines', () => h.got.length === 3);
  assert.deepEqual(texts(h.got), expected(0, 3));
  assert.equal(h.follower.stats().state, 'following');
});

test('startAt end skips what is already in the file and reads what is appended', async (t) => {
  const h = harness({ startAt: { kind: 'end' } });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, linesText(0, 5));
  await h.follower.start();
  await settle();
  assert.equal(h.got.length, 0);
  appendFileSync(h.eve, linesText(5, 7));
  await until('2 lines', () => h.got.length === 2);
  assert.deepEqual(texts(h.got), expected(5, 7));
});

test('startAt beginning reads the whole file', async (t) => {
  const h = harness({ startAt: { kind: 'beginning' } });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, linesText(0, 5));
  await h.follower.start();
  await until('5 lines', () => h.got.length === 5);
  assert.deepEqual(texts(h.got), expected(0, 5));
});

/** An eve line with a timestamp `hoursAgo` before `now`, written in the +0530 zone as Suricata would with TZ=Asia/Kolkata. */
function tsLine(now: number, minutesAgo: number, n: number): string {
  const local = new Date(now - minutesAgo * 60_000 + 330 * 60_000).toISOString().replace('Z', '');
  return `{"timestamp":"${local}123+0530","event_type":"alert","n":${n}}`;
}

test('startAt lookback starts at the first line no older than the look-back window', async (t) => {
  const now = Date.parse('2026-12-03T16:00:00Z');
  const minutes = [600, 540, 480, 420, 360, 300, 240, 200, 181, 179, 120, 60, 30, 0];
  const content = minutes.map((m, i) => `${tsLine(now, m, i)}\n`).join('');
  const h = harness({ startAt: { kind: 'lookback', ms: 3 * 3_600_000, text: '3h' }, now: () => now });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, content);
  await h.follower.start();
  await until('5 lines', () => h.got.length === 5);
  await settle();
  assert.deepEqual(h.got.map((l) => JSON.parse(l.text).n), [9, 10, 11, 12, 13]);
});

test('startAt lookback reads nothing old when every line is older, and everything when none is', async () => {
  const now = Date.parse('2026-12-03T16:00:00Z');
  for (const [ago, want] of [[[5000, 4000, 3000], 0], [[30, 20, 10], 3]] as const) {
    const h = harness({ startAt: { kind: 'lookback', ms: 3_600_000, text: '1h' }, now: () => now });
    writeFileSync(h.eve, ago.map((m, i) => `${tsLine(now, m, i)}\n`).join(''));
    await h.follower.start();
    if (want > 0) await until(`${want} lines`, () => h.got.length === want);
    await settle();
    await h.follower.stop();
    assert.equal(h.got.length, want);
  }
});

test('moves a corrupt checkpoint aside, logs it with its code, and starts as if there were none', async (t) => {
  const { log, records } = capturingLogger();
  const dir = tempDir();
  const h = harness({ dir, log, startAt: { kind: 'beginning' } });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, linesText(0, 3));
  mkdirSync(h.stateDir);
  writeFileSync(join(h.stateDir, 'checkpoint.json'), '{"version":1,"path":"/x","dev":');
  await h.follower.start();
  await until('3 lines', () => h.got.length === 3);
  const err = records.find((r) => r['code'] === 'ERR_CHECKPOINT_INVALID');
  assert.ok(err, 'the invalid checkpoint is logged with its code');
  assert.equal(err['level'], 'error');
  assert.ok(readdirSync(h.stateDir).some((n) => n.startsWith('checkpoint.json.corrupt-')));
  await h.follower.flushCheckpoint();
  const cp = JSON.parse(readFileSync(join(h.stateDir, 'checkpoint.json'), 'utf8'));
  assert.equal(cp.offset, statSync(h.eve).size);
});

test('stop is idempotent and writes the final checkpoint', async () => {
  const h = harness();
  writeFileSync(h.eve, linesText(0, 20));
  await h.follower.start();
  await until('20 lines', () => h.got.length === 20);
  await Promise.all([h.follower.stop(), h.follower.stop()]);
  await h.follower.stop();
  assert.equal(h.follower.stats().state, 'stopped');
  const cp = await h.store.load();
  assert.equal(cp?.offset, statSync(h.eve).size);
  assert.equal(cp?.ino, statSync(h.eve).ino);
});

test('reads a file from its start when the checkpoint offset is not a line start in it (inode number reused)', async (t) => {
  const h = harness({ startAt: { kind: 'end' } });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, linesText(0, 4));
  const st = statSync(h.eve);
  await h.store.save({ version: 1, path: h.eve, dev: st.dev, ino: st.ino, offset: 5, savedAt: new Date().toISOString() });
  await h.follower.start();
  await until('4 lines', () => h.got.length === 4);
  assert.deepEqual(texts(h.got), expected(0, 4));
});

test('keeps reading the renamed file while the new file at the path is still empty after a create rotation, then follows the new file', async (t) => {
  const h = harness();
  t.after(() => h.follower.stop());
  const fd = openSync(h.eve, 'a'); // the writer's descriptor
  t.after(() => closeSync(fd));
  writeSync(fd, linesText(0, 10));
  await h.follower.start();
  await until('10 lines', () => h.got.length === 10);
  const oldIno = statSync(h.eve).ino;
  // logrotate `create`: rename, then an empty file at the path; the writer reopens only later.
  renameSync(h.eve, `${h.eve}.1`);
  writeFileSync(h.eve, '');
  await settle();
  assert.equal(h.follower.stats().ino, oldIno, 'still on the renamed file');
  writeSync(fd, linesText(10, 20)); // written before the writer reopens
  await until('20 lines', () => h.got.length === 20, 5_000);
  appendFileSync(h.eve, linesText(20, 30)); // the writer has reopened
  await until('30 lines', () => h.got.length === 30, 5_000);
  await settle();
  assert.deepEqual(texts(h.got), expected(0, 30));
  assert.ok(h.got.slice(0, 20).every((l) => l.file === h.eve));
  assert.ok(h.got.slice(20).every((l) => l.file === h.eve && l.offset === Buffer.byteLength(linesText(20, Number(JSON.parse(l.text).n)))));
  assert.equal(h.follower.stats().ino, statSync(h.eve).ino);
  assert.equal(h.follower.stats().rotations, 1);
});

test('keeps reading the open file when it was rotated more than once between two looks and every later file is still empty', async (t) => {
  const { root, logDir, first, second } = swappableLogDir();
  const h = harness({ dir: root, eveDir: logDir });
  t.after(() => h.follower.stop());
  const fd = openSync(join(first, 'eve.json'), 'a');
  t.after(() => closeSync(fd));
  writeSync(fd, linesText(0, 10));
  await h.follower.start();
  await until('10 lines', () => h.got.length === 10);

  // Invisible to the follower until the link moves: A rotated to .2, an empty B (created by
  // logrotate, never written: the writer had not reopened yet) rotated to .1, an empty C at the path.
  renameSync(join(first, 'eve.json'), join(second, 'eve.json.2'));
  writeFileSync(join(second, 'eve.json.1'), '');
  writeFileSync(join(second, 'eve.json'), '');
  pointLink(logDir, second);
  await settle();
  writeSync(fd, linesText(10, 20)); // the writer is still on A
  await until('20 lines', () => h.got.length === 20, 5_000);
  appendFileSync(join(second, 'eve.json'), linesText(20, 30)); // the writer reopened: C
  await until('30 lines', () => h.got.length === 30, 5_000);
  await settle();
  assert.deepEqual(texts(h.got), expected(0, 30));
  assert.ok(h.got.slice(20).every((l) => l.file === h.eve));
  await h.follower.flushCheckpoint();
  const cp = await h.store.load();
  assert.equal(cp?.ino, statSync(h.eve).ino);
  assert.equal(cp?.offset, statSync(h.eve).size);
});

test('a new follower reads every file rotated after the checkpointed one, oldest first, before the current file', async () => {
  const dir = tempDir();
  const a = harness({ dir, autoAck: false });
  writeFileSync(a.eve, linesText(0, 10));
  await a.follower.start();
  await until('10 lines', () => a.got.length === 10);
  for (const l of a.got.slice(0, 4)) a.follower.ack(l.seq);
  await a.follower.stop();

  // While stopped, two rotations: A → .1 → .2, B → .1, C at the path; .3 is an older rotation.
  writeFileSync(`${a.eve}.3`, linesText(900, 910));
  const old = (Date.now() - 3_600_000) / 1000;
  utimesSync(`${a.eve}.3`, old, old);
  renameSync(a.eve, `${a.eve}.1`);
  writeFileSync(a.eve, linesText(10, 20));
  renameSync(`${a.eve}.1`, `${a.eve}.2`);
  renameSync(a.eve, `${a.eve}.1`);
  writeFileSync(a.eve, linesText(20, 25));

  const b = harness({ dir, startAt: { kind: 'end' } });
  await b.follower.start();
  await until('21 lines', () => b.got.length >= 21, 5_000);
  await settle();
  await b.follower.stop();
  assert.deepEqual(texts(b.got), expected(4, 25));
  assert.ok(b.got.slice(0, 6).every((l) => l.file === `${a.eve}.2`));
  assert.ok(b.got.slice(6, 16).every((l) => l.file === `${a.eve}.1`));
  assert.ok(b.got.slice(16).every((l) => l.file === a.eve));
  const cp = await b.store.load();
  assert.equal(cp?.ino, statSync(a.eve).ino);
  assert.equal(cp?.offset, statSync(a.eve).size);
});

test('a new follower whose checkpointed file is gone reads the rotated files written since the checkpoint before the current file', async () => {
  const dir = tempDir();
  const a = harness({ dir });
  writeFileSync(a.eve, linesText(0, 10));
  await a.follower.start();
  await until('10 lines', () => a.got.length === 10);
  await a.follower.stop();

  // While stopped (delaycompress): A compressed to .2.gz and removed, B at .1, C at the path;
  // .3 is an older rotation. New files are made before A goes, so none reuses its inode number.
  writeFileSync(`${a.eve}.3`, linesText(900, 910));
  const old = (Date.now() - 3_600_000) / 1000;
  utimesSync(`${a.eve}.3`, old, old);
  writeFileSync(`${a.eve}.2.gz`, Buffer.from([0x1f, 0x8b, 8, 0, 10, 0x7b, 0x7d, 10]));
  writeFileSync(`${a.eve}.1`, linesText(10, 20));
  writeFileSync(join(dir, 'next'), linesText(20, 25));
  renameSync(join(dir, 'next'), a.eve);

  const b = harness({ dir, startAt: { kind: 'end' } });
  await b.follower.start();
  await until('15 lines', () => b.got.length >= 15, 5_000);
  await settle();
  await b.follower.stop();
  assert.deepEqual(texts(b.got), expected(10, 25));
  assert.ok(b.got.slice(0, 10).every((l) => l.file === `${a.eve}.1`));
  assert.ok(b.got.slice(10).every((l) => l.file === a.eve));
  const cp = await b.store.load();
  assert.equal(cp?.ino, statSync(a.eve).ino);
  assert.equal(cp?.offset, statSync(a.eve).size);
});

test('startAt end starts at the start of a line still being written, so the first line handed out is whole', async (t) => {
  const h = harness({ startAt: { kind: 'end' } });
  t.after(() => h.follower.stop());
  const partial = line(5);
  writeFileSync(h.eve, linesText(0, 5) + partial.slice(0, 10));
  await h.follower.start();
  assert.equal(h.follower.stats().offset, Buffer.byteLength(linesText(0, 5)));
  appendFileSync(h.eve, `${partial.slice(10)}\n${linesText(6, 8)}`);
  await until('3 lines', () => h.got.length >= 3, 5_000);
  await settle();
  assert.deepEqual(texts(h.got), expected(5, 8));
});

test('startAt end starts at 0 when the file holds only a line still being written', async (t) => {
  const h = harness({ startAt: { kind: 'end' } });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, line(0).slice(0, 7));
  await h.follower.start();
  assert.equal(h.follower.stats().offset, 0);
  appendFileSync(h.eve, `${line(0).slice(7)}\n`);
  await until('1 line', () => h.got.length >= 1, 5_000);
  assert.deepEqual(texts(h.got), expected(0, 1));
});

test('pauses reading while the read gate is closed and resumes at the next poll once it opens', async (t) => {
  let open = false;
  const h = harness({ readGate: () => open });
  t.after(() => h.follower.stop());
  writeFileSync(h.eve, linesText(0, 50));
  await h.follower.start();
  await settle();
  assert.equal(h.got.length, 0, 'nothing is read while the gate is closed');
  assert.equal(h.follower.stats().state, 'paused');
  open = true;
  await until('50 lines after the gate opened', () => h.got.length === 50);
  assert.deepEqual(texts(h.got), expected(0, 50));
});
