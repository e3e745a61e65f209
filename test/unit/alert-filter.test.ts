import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { isTelemetryAlert } from '../../src/telemetry/alert-filter.js';
import { TelemetrySids } from '../../src/telemetry/telemetry-sids.js';
import { createLogger } from '../../src/logger.js';
import type { EveRecord } from '../../src/telemetry/eve-record.js';

const alert = (sid: unknown): EveRecord => ({ timestamp: 't', event_type: 'alert', alert: { signature_id: sid } });

const rows: [name: string, record: EveRecord, sids: ReadonlySet<number> | null, expected: boolean][] = [
  ['an alert with no SID list', alert(1), null, true],
  ['an alert with an empty SID list', alert(1), new Set(), true],
  ['a listed alert', alert(2099001), new Set([2099001, 5]), true],
  ['an unlisted alert', alert(2099002), new Set([2099001]), false],
  ['an alert whose signature_id is a string', alert('2099001'), new Set([2099001]), false],
  ['an alert without an alert object under a SID list', { timestamp: 't', event_type: 'alert' }, new Set([1]), false],
  ['an http record with no SID list', { timestamp: 't', event_type: 'http' }, null, false],
  ['a stats record with an empty SID list', { timestamp: 't', event_type: 'stats' }, new Set(), false],
  ['a flow record carrying a listed SID', { timestamp: 't', event_type: 'flow', alert: { signature_id: 1 } }, new Set([1]), false],
  ['a record without event_type', { timestamp: 't', alert: { signature_id: 1 } }, null, false],
];
for (const [name, record, sids, expected] of rows) {
  test(`isTelemetryAlert is ${expected} for ${name}`, () => {
    assert.equal(isTelemetryAlert(record, sids), expected);
  });
}

function capturingLogger(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger('debug', 'json', stream);
  return { log, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('TelemetrySids gives null when telemetry_sids.txt is missing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sids-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sids = new TelemetrySids(dir, capturingLogger().log);
  await sids.refresh();
  assert.equal(sids.current(), null);
  assert.equal(sids.info().present, false);
});

test('TelemetrySids reads SIDs, skips comments and blank lines, and counts and logs bad lines', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sids-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'telemetry_sids.txt'), '# ET telemetry\n2099001\n 2099002 \n\n2099003 # trailing comment\n1:2099004\nabc\r\n2099005\r\n');
  const cap = capturingLogger();
  const sids = new TelemetrySids(dir, cap.log, () => 1234);
  await sids.refresh();
  assert.deepEqual([...(sids.current() ?? [])].sort(), [2099001, 2099002, 2099003, 2099005]);
  assert.deepEqual(sids.info(), { path: join(dir, 'telemetry_sids.txt'), count: 4, badLines: 2, loadedAt: 1234, present: true });
  const warn = cap.lines().find((l) => l['level'] === 'warn');
  assert.ok(warn, 'a warning about bad lines');
  assert.equal(warn['badLines'], 2);
  assert.deepEqual(warn['examples'], ['1:2099004', 'abc']);
});

test('TelemetrySids treats an empty telemetry_sids.txt as all alerts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sids-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'telemetry_sids.txt'), '\n# nothing yet\n');
  const sids = new TelemetrySids(dir, capturingLogger().log);
  await sids.refresh();
  assert.equal(sids.current(), null);
  assert.equal(isTelemetryAlert(alert(7), sids.current()), true);
});

test('TelemetrySids re-reads only when the file changed, including an atomic replace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sids-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'telemetry_sids.txt');
  writeFileSync(file, '1\n2\n');
  const cap = capturingLogger();
  const sids = new TelemetrySids(dir, cap.log);
  await sids.refresh();
  const first = sids.current();
  await sids.refresh();
  assert.equal(sids.current(), first, 'unchanged file: the same set object');
  assert.equal(cap.lines().filter((l) => l['message'] === 'Telemetry SIDs loaded.').length, 1);

  // Same size, new content, mtime moved on: a change.
  writeFileSync(file, '3\n4\n');
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  await sids.refresh();
  assert.deepEqual([...(sids.current() ?? [])].sort(), [3, 4]);

  // Replaced by rename (how the rules updater writes it).
  writeFileSync(join(dir, 'tmp'), '5\n');
  await rename(join(dir, 'tmp'), file);
  await sids.refresh();
  assert.deepEqual([...(sids.current() ?? [])], [5]);

  rmSync(file);
  await sids.refresh();
  assert.equal(sids.current(), null);
});

test('TelemetrySids shares one read between concurrent refreshes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sids-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'telemetry_sids.txt'), '1\n');
  const cap = capturingLogger();
  const sids = new TelemetrySids(dir, cap.log);
  const a = sids.refresh();
  const b = sids.refresh();
  assert.equal(a, b);
  await Promise.all([a, b]);
  assert.equal(cap.lines().filter((l) => l['message'] === 'Telemetry SIDs loaded.').length, 1);
});
