import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { nextCronRun, RulesScheduler } from '../../src/rules/rules-scheduler.js';

describe('RulesScheduler', () => {
  it('computes the next run of the cron expression', () => {
    const next = nextCronRun('0 3 * * *', new Date('2026-12-03T10:00:00Z'));
    assert.ok(next);
    assert.equal(next.getHours(), 3);
    assert.equal(next.getMinutes(), 0);
    assert.ok(next.getTime() > Date.parse('2026-12-03T10:00:00Z'));
    assert.ok(next.getTime() - Date.parse('2026-12-03T10:00:00Z') <= 86_400_000);
  });

  it('refuses an invalid cron expression naming the variable', () => {
    assert.throws(
      () => new RulesScheduler({ update: async () => undefined }, { schedule: '99 99 * * *', spreadS: 0 }, silentLogger()),
      (err: unknown) => isAgentError(err, 'ERR_CONFIG_INVALID') && err.message.includes('ETPRO_RULES_SCHEDULE'),
    );
  });

  it('updates once at start, plans the next run spread by the random delay, and stops idempotently', async () => {
    let calls = 0;
    const now = Date.parse('2026-12-03T10:00:00Z');
    const s = new RulesScheduler({ update: async () => void calls++ }, { schedule: '0 3 * * *', spreadS: 3600 }, silentLogger(), { random: () => 0.5, now: () => now });
    s.start();
    s.start();
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1, 'one update at start, even when start() is called twice');
    const cron = nextCronRun('0 3 * * *', new Date(now))!;
    assert.equal(s.nextRunAt?.getTime(), cron.getTime() + 1_800_000);
    await s.stop();
    await s.stop();
    assert.equal(s.nextRunAt, null);
  });

  it('keeps the schedule going after a failed update and does not start a second run while one is in progress', async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = new RulesScheduler(
      {
        update: async () => {
          calls++;
          await gate;
          throw new Error('download failed');
        },
      },
      { schedule: '* * * * * *', spreadS: 0 },
      silentLogger(),
    );
    s.start();
    // The every-second schedule fires while the start run is still blocked.
    await new Promise((r) => setTimeout(r, 1_300));
    assert.equal(calls, 1);
    release();
    await new Promise((r) => setTimeout(r, 1_100));
    assert.ok(calls >= 2, `scheduled runs continue after a failure (calls=${calls})`);
    await s.stop();
  });
});
