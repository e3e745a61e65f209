import schedule from 'node-schedule';
import { AgentError, errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';

export interface RulesSchedulerOptions {
  /** Cron expression (ETPRO_RULES_SCHEDULE). */
  readonly schedule: string;
  /** Each scheduled run waits a random 0..spreadS seconds (ETPRO_RULES_SPREAD_S). */
  readonly spreadS: number;
  /** Run once at start (default true). The start run is not spread. */
  readonly runAtStart?: boolean;
}

export interface RulesSchedulerDeps {
  readonly random?: () => number;
  readonly now?: () => number;
}

const MAX_TIMER_MS = 2_147_483_647;

/** The next time `cron` fires after `after`, or null when it is not a valid expression. */
export function nextCronRun(cron: string, after: Date): Date | null {
  const job = new schedule.Job(() => undefined);
  try {
    if (!job.schedule({ start: after, rule: cron })) return null;
    return job.nextInvocation() ?? null;
  } finally {
    job.cancel();
  }
}

/**
 * Runs the rules update at start and then on the cron schedule, each scheduled run spread by a
 * random delay. node-schedule computes the next time; the wait itself is an unref'd timer, so the
 * scheduler never keeps the process alive. A failed run is logged by the updater; the schedule goes on.
 */
export class RulesScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private started = false;
  private readonly random: () => number;
  private readonly now: () => number;
  /** When the next run is due (after the spread), for /status. */
  nextRunAt: Date | null = null;

  constructor(
    private readonly updater: { update(opts?: { force?: boolean }): Promise<unknown> },
    private readonly opts: RulesSchedulerOptions,
    private readonly log: Logger,
    deps: RulesSchedulerDeps = {},
  ) {
    this.random = deps.random ?? Math.random;
    this.now = deps.now ?? Date.now;
    if (nextCronRun(opts.schedule, new Date(this.now())) === null) {
      throw new AgentError('ERR_CONFIG_INVALID', `ETPRO_RULES_SCHEDULE=${JSON.stringify(opts.schedule)} is not a cron expression node-schedule accepts.`);
    }
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.opts.runAtStart ?? true) this.run('start');
    this.planNext();
  }

  /** Stops scheduling and waits for a run in progress (the update lock keeps files consistent either way). */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextRunAt = null;
    await this.running?.catch(() => undefined);
  }

  private planNext(): void {
    if (!this.started) return;
    const cronAt = nextCronRun(this.opts.schedule, new Date(this.now()));
    if (cronAt === null) return;
    const spreadMs = Math.floor(this.random() * this.opts.spreadS * 1_000);
    const due = cronAt.getTime() + spreadMs;
    this.nextRunAt = new Date(due);
    this.wait(due);
  }

  private wait(due: number): void {
    const ms = Math.max(0, due - this.now());
    this.timer = setTimeout(() => {
      if (!this.started) return;
      if (this.now() < due) return this.wait(due);
      this.run('schedule');
      this.planNext();
    }, Math.min(ms, MAX_TIMER_MS));
    this.timer.unref();
  }

  private run(trigger: 'start' | 'schedule'): void {
    if (this.running) {
      this.log.warn('Previous rules update still running; skipping this one.', { trigger });
      return;
    }
    this.log.debug('Rules update starting.', { trigger });
    const p = this.updater
      .update()
      .catch((err: unknown) => {
        // The updater logs and records its own failures; this only keeps the schedule alive.
        this.log.debug('Scheduled rules update ended with an error.', { trigger, code: errorCode(err), error: errorMessage(err) });
      })
      .finally(() => {
        if (this.running === p) this.running = null;
      });
    this.running = p;
  }
}
