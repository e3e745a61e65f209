import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AckWindow } from '../../src/eve/ack-window.js';

test('acked moves only over a contiguous run of acknowledged seqs', () => {
  const w = new AckWindow<string>(8);
  const seqs = [10, 20, 30, 40, 50].map((end) => w.add('f', end));
  assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
  assert.equal(w.ack(3), false);
  assert.equal(w.ack(2), false);
  assert.equal(w.acked, 0);
  assert.equal(w.ack(1), true);
  assert.equal(w.acked, 3);
  assert.deepEqual(w.ackedPosition, { file: 'f', end: 30 });
  assert.equal(w.pending, 2);
  assert.equal(w.ack(5), false);
  assert.equal(w.ack(4), true);
  assert.deepEqual(w.ackedPosition, { file: 'f', end: 50 });
  assert.equal(w.pending, 0);
});

test('ignores repeated, unknown and already-passed seqs', () => {
  const w = new AckWindow<string>(4);
  w.add('f', 1);
  w.add('f', 2);
  assert.equal(w.ack(0), false);
  assert.equal(w.ack(3), false);
  assert.equal(w.ack(1.5), false);
  assert.equal(w.ack(1), true);
  assert.equal(w.ack(1), false);
  assert.equal(w.acked, 1);
  assert.equal(w.isPending(2), true);
  assert.equal(w.isPending(1), false);
});

test('reuses its slots for far more lines than its capacity, and refuses to overfill', () => {
  const w = new AckWindow<number>(3);
  for (let i = 1; i <= 1000; i++) {
    const seq = w.add(i % 2, i * 10);
    assert.equal(seq, i);
    if (i % 3 === 0) {
      assert.throws(() => w.add(0, 0), RangeError);
      w.ack(i);
      w.ack(i - 2);
      assert.equal(w.acked, i - 2);
      w.ack(i - 1);
      assert.equal(w.acked, i);
      assert.deepEqual(w.ackedPosition, { file: i % 2, end: i * 10 });
    }
  }
});
