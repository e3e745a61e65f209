import { AgentError, isAgentError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SuricataControl } from './suricata-control.js';
import { failedResult, readReloadTime, realClock, verifyReload, type Clock, type ReloadExpectation, type ReloadResult, type Reloader } from './reload-verify.js';

export interface SocketReloaderOptions {
  readonly reloadTimeoutMs: number;
  readonly maxFailed: number;
}

export const LIVE_RELOAD_FIX =
  'Start Suricata without -S/-s: list the rules in suricata.yaml (default-rule-path pointing at the shared rules dir, rule-files: [suricata.rules]).';

/**
 * Reload through the unix-command socket: read `ruleset-reload-time`, send the blocking `reload-rules`
 * (which answers "done" even when the reload failed), then verify time, counts and failed rules.
 */
export class SocketReloader implements Reloader {
  readonly method = 'socket' as const;

  constructor(
    private readonly control: SuricataControl,
    private readonly opts: SocketReloaderOptions,
    private readonly log: Logger,
    private readonly clock: Clock = realClock,
  ) {}

  async reload(expect: ReloadExpectation): Promise<ReloadResult> {
    const startedAt = this.clock.now();
    let before: string | null;
    try {
      before = await readReloadTime(this.control);
      this.log.debug('Asking Suricata to reload rules.', { socket: this.control.socketPath, before });
      await this.control.command('reload-rules', undefined, this.opts.reloadTimeoutMs);
    } catch (err) {
      return failedResult('socket', startedAt, this.clock, explain(err));
    }
    // reload-rules blocks until done; the short wait only covers clock granularity.
    return verifyReload({ control: this.control, method: 'socket', before, expect, maxFailed: this.opts.maxFailed, waitMs: 2_000, startedAt, clock: this.clock });
  }
}

/** Adds the fix to Suricata's refusal of live reload (-S/-s). */
export function explain(err: unknown): unknown {
  if (isAgentError(err, 'ERR_SURICATA_NOK')) {
    const said = typeof err.details['message'] === 'string' ? err.details['message'] : err.message;
    if (/-s or -S/i.test(said)) {
      return new AgentError('ERR_SURICATA_NOK', `Suricata refused the rule reload: "${said}" ${LIVE_RELOAD_FIX}`, { ...err.details, fix: LIVE_RELOAD_FIX }, { cause: err });
    }
    return new AgentError('ERR_SURICATA_NOK', `Suricata refused the rule reload: "${said}"`, err.details, { cause: err });
  }
  return err;
}
