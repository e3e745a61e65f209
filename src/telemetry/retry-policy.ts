/**
 * When to try again after a retryable failure (408, 429, 5xx, timeout, connection error).
 * Pure functions: the caller passes the attempt number, the clock reading and the random source.
 */

/** The longest a server's Retry-After is obeyed; a larger value is cut to this (a broken header must not stall the stream for days). */
export const MAX_RETRY_AFTER_MS = 3_600_000;

export interface BackoffOptions {
  /** Delay scale of the first retry. */
  readonly baseMs: number;
  /** Cap of the exponential part. */
  readonly maxMs: number;
}

/**
 * The delay before retry number `attempt` (1 = the first retry after the first failure).
 *
 * Capped exponential backoff with "full jitter": a uniform pick in [base/2, min(max, base * 2^(attempt-1))].
 * The lower bound of base/2 keeps a broken collector from being hit again almost at once, while the
 * spread keeps many agents from retrying in step.
 *
 * A server's Retry-After is a floor: the result is never sooner than it (capped at {@link MAX_RETRY_AFTER_MS}),
 * even when that exceeds `maxMs` — the server asked for it.
 */
export function retryDelayMs(attempt: number, opts: BackoffOptions, retryAfterMs: number | undefined, random: () => number): number {
  const base = Math.max(1, opts.baseMs);
  const max = Math.max(base, opts.maxMs);
  const n = Number.isNaN(attempt) ? 1 : Math.max(1, Math.floor(Math.min(attempt, 1_000_000)));
  // 2^(n-1) overflows to Infinity for large n; min() with max keeps it finite.
  const ceiling = Math.min(max, base * 2 ** Math.min(n - 1, 52));
  const floor = Math.min(base / 2, ceiling);
  const r = Math.min(Math.max(random(), 0), 1);
  const backoff = Math.round(floor + r * (ceiling - floor));
  if (retryAfterMs === undefined || !Number.isFinite(retryAfterMs) || retryAfterMs <= 0) return backoff;
  return Math.max(backoff, Math.min(Math.ceil(retryAfterMs), MAX_RETRY_AFTER_MS));
}

/**
 * Reads a Retry-After header (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date.
 * Returns the wait in milliseconds from `nowMs` (0 for a date in the past), or undefined when the
 * header is absent or cannot be read.
 */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1_000, Number.MAX_SAFE_INTEGER);
  // Only date forms: a bare number with a sign or a fraction is not valid Retry-After.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
