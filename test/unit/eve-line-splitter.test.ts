import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, type LineSink } from '../../src/eve/line-splitter.js';

interface Seen {
  lines: { text: string; start: number; end: number }[];
  tooLong: { start: number; end: number }[];
  blank: number[];
  sink: LineSink;
}

function recorder(): Seen {
  const s: Seen = { lines: [], tooLong: [], blank: [], sink: undefined as unknown as LineSink };
  s.sink = {
    line: (text, start, end) => s.lines.push({ text, start, end }),
    tooLong: (start, end) => s.tooLong.push({ start, end }),
    blank: (start) => s.blank.push(start),
  };
  return s;
}

const feed = (sp: LineSplitter, s: Seen, text: string | Buffer, limit = Infinity): number => sp.push(Buffer.isBuffer(text) ? text : Buffer.from(text), limit, s.sink);

test('keeps a partial line until its newline arrives, with byte offsets across chunks', () => {
  const sp = new LineSplitter(1024);
  const s = recorder();
  feed(sp, s, '{"a":1}\n{"b"');
  assert.deepEqual(s.lines, [{ text: '{"a":1}', start: 0, end: 8 }]);
  assert.equal(sp.partialBytes, 4);
  feed(sp, s, ':2}');
  assert.equal(s.lines.length, 1);
  feed(sp, s, '\n');
  assert.deepEqual(s.lines[1], { text: '{"b":2}', start: 8, end: 16 });
  assert.equal(sp.pos, 16);
  assert.equal(sp.partialBytes, 0);
});

test('decodes a multi-byte UTF-8 character split between two chunks', () => {
  const sp = new LineSplitter(1024);
  const s = recorder();
  const bytes = Buffer.from('{"u":"€"}\n');
  feed(sp, s, bytes.subarray(0, 8)); // cuts inside the 3-byte euro sign
  feed(sp, s, bytes.subarray(8));
  assert.deepEqual(s.lines.map((l) => l.text), ['{"u":"€"}']);
  assert.equal(s.lines[0]!.end, bytes.length);
});

test('drops a trailing carriage return, also when it ended the previous chunk', () => {
  const sp = new LineSplitter(1024);
  const s = recorder();
  feed(sp, s, '{"a":1}\r\n{"b":2}\r');
  feed(sp, s, '\n');
  assert.deepEqual(s.lines.map((l) => l.text), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(s.lines.map((l) => l.end), [9, 18]);
});

test('reports a too-long line without holding it, and hands out the next line intact', () => {
  const sp = new LineSplitter(10);
  const s = recorder();
  feed(sp, s, 'ok\n0123456789A');
  assert.equal(sp.partialBytes, 11);
  feed(sp, s, 'BCDEFGHIJ'.repeat(100));
  feed(sp, s, 'end\nnext\n');
  assert.deepEqual(s.lines.map((l) => l.text), ['ok', 'next']);
  assert.deepEqual(s.tooLong, [{ start: 3, end: 3 + 11 + 900 + 4 }]);
  assert.equal(s.lines[1]!.start, 3 + 11 + 900 + 4);
});

test('a line of exactly maxLineBytes is handed out; one byte more is too long', () => {
  const sp = new LineSplitter(5);
  const s = recorder();
  feed(sp, s, '12345\n123456\n');
  assert.deepEqual(s.lines.map((l) => l.text), ['12345']);
  assert.equal(s.tooLong.length, 1);
});

test('reports empty lines as blank instead of handing them out', () => {
  const sp = new LineSplitter(100);
  const s = recorder();
  feed(sp, s, '\n\r\n{"a":1}\n');
  assert.deepEqual(s.blank, [0, 1]);
  assert.deepEqual(s.lines.map((l) => l.text), ['{"a":1}']);
});

test('stops at the line limit and moves pos back to the first line not handed out', () => {
  const sp = new LineSplitter(100);
  const s = recorder();
  assert.equal(feed(sp, s, 'a\nbb\nccc\ndddd\n', 2), 2);
  assert.deepEqual(s.lines.map((l) => l.text), ['a', 'bb']);
  assert.equal(sp.pos, 5);
  assert.equal(sp.lineStart, 5);
  assert.equal(feed(sp, s, 'ccc\ndddd\n'), 2);
  assert.deepEqual(s.lines.map((l) => [l.text, l.start]), [['a', 0], ['bb', 2], ['ccc', 5], ['dddd', 9]]);
});

test('reset starts over at a given offset with no leftover partial line', () => {
  const sp = new LineSplitter(100);
  const s = recorder();
  feed(sp, s, 'partial');
  sp.reset(0);
  feed(sp, s, 'x\n');
  assert.deepEqual(s.lines, [{ text: 'x', start: 0, end: 2 }]);
});
