import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLookbackOffset } from '../../src/eve/lookback-search.js';

const T0 = Date.UTC(2026, 11, 3, 0, 0, 0);
const ts = (ms: number): string => new Date(ms).toISOString().replace('Z', '000+0000');

async function search(lines: string[], notBefore: number): Promise<{ offset: number; content: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'eve-lookback-')), 'eve.json');
  const content = lines.map((l) => `${l}\n`).join('');
  writeFileSync(file, content);
  const fh = await open(file, 'r');
  try {
    return { offset: await findLookbackOffset(fh, Buffer.byteLength(content), notBefore), content };
  } finally {
    await fh.close();
  }
}

test('lands on the start of the first line at or after the threshold, for every threshold', async () => {
  // Lines of very different lengths, so a byte midpoint is rarely a line start.
  const lines = Array.from({ length: 200 }, (_, i) => `{"timestamp":"${ts(T0 + i * 1000)}","pad":"${'x'.repeat((i * 37) % 300)}"}`);
  for (const k of [0, 1, 2, 57, 100, 198, 199]) {
    const { offset, content } = await search(lines, T0 + k * 1000 - 500);
    assert.equal(offset, Buffer.byteLength(lines.slice(0, k).map((l) => `${l}\n`).join('')), `threshold before line ${k}`);
    assert.ok(content.slice(offset).startsWith(lines[k]!));
  }
});

test('returns the end when every line is older and 0 when none is', async () => {
  const lines = Array.from({ length: 50 }, (_, i) => `{"timestamp":"${ts(T0 + i * 1000)}"}`);
  const all = await search(lines, T0 + 10_000_000);
  assert.equal(all.offset, Buffer.byteLength(all.content));
  assert.equal((await search(lines, T0 - 1)).offset, 0);
});

test('treats a line without a readable timestamp as recent rather than skipping past it', async () => {
  const lines = [`{"timestamp":"${ts(T0)}"}`, '{"no":"timestamp"}', `{"timestamp":"${ts(T0 + 5000)}"}`];
  const { offset, content } = await search(lines, T0 + 1000);
  assert.ok(content.slice(offset).startsWith('{"no"'));
});
