import { AgentError, errorMessage } from '../errors.js';
import { RateLimitedLog, type Logger } from '../logger.js';
import { retryDelayMs } from './retry-policy.js';
import type { SendResult, TelemetryClient } from './telemetry-client.js';

/** What became of a submitted event. `rejected` = deliberately skipped (another 4xx): the position may advance past it. */
export type Outcome = 'acked' | 'rejected';

export interface ShipperStats {
  state: 'idle' | 'sending' | 'retrying' | 'auth-paused' | 'stopped';
  /** Waiting to be sent (including events put back after a failure). */
  queued: number;
  inFlight: number;
  /** Requests started, retries included. */
  sent: number;
  acked: number;
  rejected: number;
  /** Events put back after a retryable failure. */
  retries: number;
  /** Answers 401/403. */
  authFailures: number;
  lastAckAt: number | null;
  lastErrorAt: number | null;
  /** e.g. 'HTTP 503', 'ECONNREFUSED', 'timeout' — never a token. */
  lastError: string | null;
  lastAuthFailureStatus: 401 | 403 | null;
  /** Start of the current failure episode (retrying or auth-paused), null while healthy. */
  failingSince: number | null;
}

export interface ShipperOptions {
  /** Concurrent requests while healthy. */
  readonly maxInFlight: number;
  /** Events waiting beyond the in-flight window; hasCapacity() is false at this bound. */
  readonly maxQueued: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Wait before trying again after 401/403. */
  readonly authRetryMs: number;
}

export type TimerHandle = { unref?(): unknown };

export interface ShipperClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: ShipperClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Item {
  readonly id: number;
  readonly body: string;
}

/**
 * Modes of the send loop:
 * - `running`: up to maxInFlight requests at once;
 * - `waiting`: a failure episode is on; nothing is sent until the timer fires (backoff or the slow auth timer);
 * - `probe-due`: the timer fired; the next pump sends exactly one event as a probe;
 * - `probing`: the probe is in flight, nothing else is sent. Its success ends the episode.
 */
type Mode = 'running' | 'waiting' | 'probe-due' | 'probing';

/**
 * Ships anonymized alerts to the collector, at least once, never dropping one (design.md §2, §5).
 *
 * The caller (the follower) checks hasCapacity() before each submit() and resumes on onCapacity().
 * Memory is bounded by maxQueued + maxInFlight events.
 *
 * Per answer: ok → onDone(id, 'acked'). Another 4xx → onDone(id, 'rejected'), counted and logged
 * (rate-limited) with the code and a body excerpt. Retryable (408, 429, 5xx, network) → the event goes
 * back to the front of the queue and the whole shipper pauses for a backoff (Retry-After honoured),
 * then sends one probe at a time until one gets through: a down collector is not hammered by
 * maxInFlight parallel retry loops. 401/403 → the same, but on the slow authRetryMs timer, logged
 * once per episode at error level; events are never skipped for it.
 */
export class EventShipper {
  private readonly clock: ShipperClock;
  private readonly random: () => number;
  /** Fresh events, FIFO: an array with a moving head (O(1) removal). */
  private fresh: Item[] = [];
  private freshHead = 0;
  /** Events put back after a failure, sorted by id; sent before fresh ones. */
  private readonly again: Item[] = [];
  private inFlight = 0;
  private mode: Mode = 'running';
  private pauseKind: 'retry' | 'auth' | null = null;
  private attempt = 0;
  private timer: TimerHandle | null = null;
  private timerDueAt = 0;
  private started = false;
  private stopped = false;
  /** After stop() resolved: late answers are ignored (their events stay un-acknowledged). */
  private closed = false;
  private pumping = false;
  private capacityWanted = false;
  private capacityNotifyQueued = false;
  private readonly capacityListeners: (() => void)[] = [];
  private drained: (() => void) | null = null;
  private stopPromise: Promise<void> | null = null;
  private readonly rejectedLog: RateLimitedLog;
  private readonly counters = { sent: 0, acked: 0, rejected: 0, retries: 0, authFailures: 0 };
  private lastAckAt: number | null = null;
  private lastErrorAt: number | null = null;
  private lastError: string | null = null;
  private lastAuthFailureStatus: 401 | 403 | null = null;
  private failingSince: number | null = null;

  constructor(
    private readonly opts: ShipperOptions,
    private readonly client: TelemetryClient,
    private readonly log: Logger,
    private readonly onDone: (id: number, outcome: Outcome) => void,
    clock: ShipperClock = systemClock,
    random: () => number = Math.random,
  ) {
    for (const [name, min] of [['maxInFlight', 1], ['maxQueued', 1], ['retryBaseMs', 1], ['retryMaxMs', 1], ['authRetryMs', 1]] as const) {
      const v = opts[name];
      if (!Number.isFinite(v) || v < min) throw new AgentError('ERR_CONFIG_INVALID', `EventShipper option ${name} must be a number >= ${min}, got ${v}`);
    }
    this.clock = clock;
    this.random = random;
    this.rejectedLog = new RateLimitedLog(log, 'warn', 10_000, () => this.clock.now());
  }

  /** Begins sending what was submitted (events submitted before start() wait). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.pump();
  }

  hasCapacity(): boolean {
    const ok = !this.stopped && this.queued() < this.opts.maxQueued;
    if (!ok && !this.stopped) this.capacityWanted = true;
    return ok;
  }

  /** `fn` runs (asynchronously) each time room frees up after hasCapacity() was false. */
  onCapacity(fn: () => void): void {
    this.capacityListeners.push(fn);
  }

  /** Queues one event (its anonymized JSON). Throws ERR_SHIPPER_FULL / ERR_SHIPPER_STOPPED: the caller must check hasCapacity(). */
  submit(id: number, body: string): void {
    if (this.stopped) throw new AgentError('ERR_SHIPPER_STOPPED', `EventShipper is stopped; event ${id} was not taken`);
    if (this.queued() >= this.opts.maxQueued) {
      this.capacityWanted = true;
      throw new AgentError('ERR_SHIPPER_FULL', `EventShipper queue is full (${this.opts.maxQueued}); event ${id} was not taken`);
    }
    this.fresh.push({ id, body });
    if (this.queued() >= this.opts.maxQueued) this.capacityWanted = true;
    this.pump();
  }

  /**
   * Stops taking work and waits up to `graceMs` for the requests in flight. Events still queued or
   * in flight afterwards stay un-acknowledged (they are read again after a restart). Idempotent.
   */
  stop(graceMs: number): Promise<void> {
    if (this.stopPromise !== null) return this.stopPromise;
    this.stopped = true;
    this.clearTimer();
    this.stopPromise = new Promise<void>((resolve) => {
      let grace: TimerHandle | null = null;
      const finish = (): void => {
        if (this.closed) return;
        this.closed = true;
        this.drained = null;
        if (grace !== null) this.clock.clearTimeout(grace);
        const abandoned = this.inFlight + this.queued();
        this.log.info('Event shipper stopped.', { acked: this.counters.acked, rejected: this.counters.rejected, inFlightAbandoned: this.inFlight, queuedAbandoned: this.queued(), ...(abandoned > 0 ? { note: 'un-acknowledged events are sent again after restart' } : {}) });
        resolve();
      };
      if (this.inFlight === 0) return finish();
      this.drained = finish;
      grace = this.clock.setTimeout(finish, Math.max(0, graceMs));
      grace.unref?.();
    });
    return this.stopPromise;
  }

  stats(): ShipperStats {
    return {
      state: this.state(),
      queued: this.queued(),
      inFlight: this.inFlight,
      ...this.counters,
      lastAckAt: this.lastAckAt,
      lastErrorAt: this.lastErrorAt,
      lastError: this.lastError,
      lastAuthFailureStatus: this.lastAuthFailureStatus,
      failingSince: this.failingSince,
    };
  }

  private state(): ShipperStats['state'] {
    if (this.stopped) return 'stopped';
    if (this.pauseKind === 'auth') return 'auth-paused';
    if (this.pauseKind === 'retry') return 'retrying';
    return this.queued() + this.inFlight > 0 ? 'sending' : 'idle';
  }

  private queued(): number {
    return this.again.length + this.fresh.length - this.freshHead;
  }

  private next(): Item | undefined {
    if (this.again.length > 0) return this.again.shift();
    if (this.freshHead >= this.fresh.length) return undefined;
    const item = this.fresh[this.freshHead]!;
    this.fresh[this.freshHead++] = undefined as unknown as Item;
    if (this.freshHead > 1_024 && this.freshHead * 2 > this.fresh.length) {
      this.fresh = this.fresh.slice(this.freshHead);
      this.freshHead = 0;
    }
    return item;
  }

  /** Puts a failed event back, keeping the retry list in id order. */
  private putBack(item: Item): void {
    let lo = 0;
    let hi = this.again.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.again[mid]!.id < item.id) lo = mid + 1;
      else hi = mid;
    }
    this.again.splice(lo, 0, item);
  }

  private pump(): void {
    if (!this.started || this.stopped || this.pumping) return;
    this.pumping = true;
    try {
      while (this.queued() > 0) {
        if (this.mode === 'running') {
          if (this.inFlight >= this.opts.maxInFlight) break;
          this.dispatch(this.next()!, false);
        } else if (this.mode === 'probe-due') {
          this.mode = 'probing';
          this.dispatch(this.next()!, true);
        } else break;
      }
      if (this.mode === 'probe-due' && this.queued() === 0) this.recovered();
    } finally {
      this.pumping = false;
    }
    this.notifyCapacity();
  }

  private dispatch(item: Item, probe: boolean): void {
    this.inFlight++;
    this.counters.sent++;
    let p: Promise<SendResult>;
    try {
      p = this.client.postEvent(item.body);
    } catch (err) {
      p = Promise.resolve({ kind: 'retryable', status: null, reason: errorMessage(err) });
    }
    p.then(
      (result) => this.settle(item, result, probe),
      (err: unknown) => this.settle(item, { kind: 'retryable', status: null, reason: errorMessage(err) }, probe),
    );
  }

  private settle(item: Item, result: SendResult, probe: boolean): void {
    this.inFlight--;
    if (this.closed) return;
    const now = this.clock.now();
    switch (result.kind) {
      case 'ok':
        this.counters.acked++;
        this.lastAckAt = now;
        this.done(item.id, 'acked');
        if (probe) this.recovered();
        break;
      case 'rejected':
        this.counters.rejected++;
        this.rejectedLog.write('Collector rejected an event; skipping it.', { httpCode: result.status, body: result.body.slice(0, 200), eventId: item.id });
        this.done(item.id, 'rejected');
        if (probe) this.recovered();
        break;
      case 'retryable':
        this.counters.retries++;
        this.putBack(item);
        this.failed(now, result.reason);
        if (!this.stopped) this.onRetryable(result, probe, now);
        break;
      case 'auth':
        this.counters.authFailures++;
        this.putBack(item);
        this.lastAuthFailureStatus = result.status;
        this.failed(now, `HTTP ${result.status}`);
        if (!this.stopped) this.onAuth(result.status, probe);
        break;
    }
    if (this.drained !== null && this.inFlight === 0) this.drained();
    this.pump();
  }

  private failed(now: number, reason: string): void {
    this.lastError = reason;
    this.lastErrorAt = now;
    this.failingSince ??= now;
  }

  private onRetryable(result: Extract<SendResult, { kind: 'retryable' }>, probe: boolean, now: number): void {
    const backoff = { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs };
    if (this.mode === 'running') {
      this.attempt = 1;
      this.pauseKind = 'retry';
      const delay = retryDelayMs(this.attempt, backoff, result.retryAfterMs, this.random);
      this.log.warn('Collector unavailable; pausing and retrying with backoff (nothing is skipped).', { httpCode: result.status, reason: result.reason, retryInMs: delay });
      this.wait(delay);
    } else if (probe) {
      this.attempt++;
      if (this.pauseKind === 'auth') this.log.warn('Collector unavailable while checking the token; retrying with backoff.', { httpCode: result.status, reason: result.reason });
      this.pauseKind = 'retry';
      this.wait(retryDelayMs(this.attempt, backoff, result.retryAfterMs, this.random));
    } else if (this.mode === 'waiting' && this.pauseKind === 'retry' && result.retryAfterMs !== undefined) {
      // A late answer asking for a longer pause than planned: honour it.
      const wanted = now + retryDelayMs(this.attempt, backoff, result.retryAfterMs, this.random);
      if (wanted > this.timerDueAt) this.wait(wanted - now);
    }
  }

  private onAuth(status: 401 | 403, probe: boolean): void {
    if (this.pauseKind !== 'auth') {
      this.log.error(`Collector refused the token (HTTP ${status}): the token is likely wrong or revoked. Sending is paused and retried on a slow timer; no event is skipped.`, {
        httpCode: status,
        retryInMs: this.opts.authRetryMs,
      });
      this.pauseKind = 'auth';
      this.wait(this.opts.authRetryMs);
    } else if (probe) {
      this.log.debug('Collector still refuses the token.', { httpCode: status, retryInMs: this.opts.authRetryMs });
      this.wait(this.opts.authRetryMs);
    }
  }

  private wait(ms: number): void {
    this.clearTimer();
    this.mode = 'waiting';
    this.timerDueAt = this.clock.now() + ms;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (this.stopped || this.mode !== 'waiting') return;
      this.mode = 'probe-due';
      this.pump();
    }, ms);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      this.clock.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private recovered(): void {
    if (this.pauseKind !== null) {
      this.log.info('Collector is accepting events again; sending resumed.', {
        pausedMs: this.failingSince === null ? undefined : this.clock.now() - this.failingSince,
        retries: this.counters.retries,
        authFailures: this.counters.authFailures,
      });
    }
    this.clearTimer();
    this.mode = 'running';
    this.pauseKind = null;
    this.attempt = 0;
    this.failingSince = null;
    this.lastAuthFailureStatus = null;
  }

  private done(id: number, outcome: Outcome): void {
    try {
      this.onDone(id, outcome);
    } catch (err) {
      this.log.error('Acknowledgement handler failed.', { eventId: id, outcome, error: errorMessage(err) });
    }
  }

  private notifyCapacity(): void {
    if (!this.capacityWanted || this.capacityNotifyQueued || this.stopped || this.queued() >= this.opts.maxQueued) return;
    this.capacityWanted = false;
    this.capacityNotifyQueued = true;
    queueMicrotask(() => {
      this.capacityNotifyQueued = false;
      if (this.stopped) return;
      for (const fn of this.capacityListeners) {
        try {
          fn();
        } catch (err) {
          this.log.error('Capacity listener failed.', { error: errorMessage(err) });
        }
      }
    });
  }
}
