import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_RETRY_AFTER_MS, parseRetryAfter, retryDelayMs } from '../../src/telemetry/retry-policy.js';

const opts = { baseMs: 500, maxMs: 60_000 };
const low = (): number => 0;
const high = (): number => 1;

describe('retryDelayMs', () => {
  it('grows exponentially with the attempt number at the top of the jitter range', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((a) => retryDelayMs(a, opts, undefined, high)),
      [500, 1_000, 2_000, 4_000, 8_000],
    );
  });

  it('never waits less than half the base delay, even with the lowest random pick', () => {
    for (const attempt of [1, 2, 5, 20]) assert.equal(retryDelayMs(attempt, opts, undefined, low), 250);
  });

  it('spreads delays over the jitter range so agents do not retry in step', () => {
    const picks = [0.1, 0.35, 0.6, 0.85].map((r) => retryDelayMs(4, opts, undefined, () => r));
    assert.equal(new Set(picks).size, 4);
    for (const d of picks) assert.ok(d >= 250 && d <= 4_000, `delay ${d} out of range`);
    assert.deepEqual(picks, [...picks].sort((a, b) => a - b));
  });

  it('caps the exponential part at maxMs for large and absurd attempt numbers', () => {
    assert.equal(retryDelayMs(30, opts, undefined, high), 60_000);
    assert.equal(retryDelayMs(10_000, opts, undefined, high), 60_000);
    assert.equal(retryDelayMs(Number.POSITIVE_INFINITY, opts, undefined, high), 60_000);
    assert.equal(retryDelayMs(Number.NaN, opts, undefined, high), 500);
  });

  it('treats attempt 0 or negative as the first retry', () => {
    assert.equal(retryDelayMs(0, opts, undefined, high), 500);
    assert.equal(retryDelayMs(-3, opts, undefined, high), 500);
  });

  it('never retries sooner than Retry-After says, even above maxMs', () => {
    assert.equal(retryDelayMs(1, opts, 30_000, low), 30_000);
    assert.equal(retryDelayMs(1, { baseMs: 500, maxMs: 1_000 }, 120_000, high), 120_000);
  });

  it('keeps the backoff when it is longer than Retry-After', () => {
    assert.equal(retryDelayMs(5, opts, 1_000, high), 8_000);
  });

  it('cuts an absurd Retry-After to one hour', () => {
    assert.equal(retryDelayMs(1, opts, 30 * 86_400_000, low), MAX_RETRY_AFTER_MS);
    assert.equal(MAX_RETRY_AFTER_MS, 3_600_000);
  });

  it('ignores a zero, negative or non-finite Retry-After', () => {
    for (const ra of [0, -5, Number.NaN]) assert.equal(retryDelayMs(2, opts, ra, high), 1_000);
  });

  it('stays inside the range when the random source misbehaves', () => {
    assert.equal(retryDelayMs(3, opts, undefined, () => 7), 2_000);
    assert.equal(retryDelayMs(3, opts, undefined, () => -1), 250);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-05-01T12:00:00Z');

  it('reads delay-seconds', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
  });

  it('reads an HTTP-date relative to now', () => {
    assert.equal(parseRetryAfter('Fri, 01 May 2026 12:00:30 GMT', now), 30_000);
  });

  it('reads a date in the past as no wait', () => {
    assert.equal(parseRetryAfter('Fri, 01 May 2026 11:00:00 GMT', now), 0);
  });

  it('returns undefined for an absent, empty or unreadable header', () => {
    for (const h of [undefined, '', '   ', 'soon', '-5', '1.5', 'Fri, 99 Foo 2026']) assert.equal(parseRetryAfter(h, now), undefined, String(h));
  });
});
