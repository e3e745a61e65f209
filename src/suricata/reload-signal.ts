import { promises as fs } from 'node:fs';
import { AgentError, errorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SuricataControl } from './suricata-control.js';
import { confirmSignalledReload, failedResult, realClock, tryReadReloadTime, type Clock, type ReloadExpectation, type ReloadResult, type Reloader } from './reload-verify.js';

export interface SignalReloaderOptions {
  readonly pidfile: string;
  readonly reloadTimeoutMs: number;
  readonly maxFailed: number;
  /** Without a socket: how long Suricata must stay up after SIGUSR2 to count as reloaded. */
  readonly settleMs?: number;
}

/** Reads a pidfile; throws ERR_RELOAD_UNAVAILABLE naming the file when it is missing or not a PID. */
export async function readPidfile(path: string): Promise<number> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    throw new AgentError('ERR_RELOAD_UNAVAILABLE', `Suricata's pidfile ${path} cannot be read (${errorCode(err) ?? 'error'}): is Suricata running with --pidfile on a shared volume?`, { pidfile: path });
  }
  const t = text.trim();
  if (!/^\d+$/.test(t) || Number(t) <= 1) throw new AgentError('ERR_RELOAD_UNAVAILABLE', `Suricata's pidfile ${path} does not hold a usable PID (${JSON.stringify(t.slice(0, 20))}).`, { pidfile: path });
  return Number(t);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}

/**
 * SIGUSR2 to the PID in Suricata's pidfile (a pod with shareProcessNamespace: true). Verified through
 * the socket when it answers, else by Suricata still running after `settleMs`.
 */
export class SignalReloader implements Reloader {
  readonly method = 'signal' as const;

  constructor(
    private readonly opts: SignalReloaderOptions,
    private readonly control: SuricataControl | null,
    private readonly log: Logger,
    private readonly clock: Clock = realClock,
  ) {}

  async reload(expect: ReloadExpectation): Promise<ReloadResult> {
    const startedAt = this.clock.now();
    const before = await tryReadReloadTime(this.control);
    let pid: number;
    try {
      pid = await readPidfile(this.opts.pidfile);
      process.kill(pid, 'SIGUSR2');
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ESRCH') return failedResult('signal', startedAt, this.clock, new AgentError('ERR_RELOAD_UNAVAILABLE', `No process with the PID in ${this.opts.pidfile}: the pidfile is stale (Suricata not running).`));
      if (code === 'EPERM') {
        return failedResult('signal', startedAt, this.clock, new AgentError('ERR_RELOAD_FAILED', `Not allowed to signal Suricata (PID from ${this.opts.pidfile}): run the agent with Suricata's UID or with CAP_KILL.`));
      }
      return failedResult('signal', startedAt, this.clock, err);
    }
    this.log.debug('Sent SIGUSR2 to Suricata.', { pid, pidfile: this.opts.pidfile });
    return confirmSignalledReload({
      method: 'signal',
      control: this.control,
      before,
      expect,
      maxFailed: this.opts.maxFailed,
      waitMs: this.opts.reloadTimeoutMs,
      startedAt,
      clock: this.clock,
      settleMs: this.opts.settleMs ?? 3_000,
      stillRunning: () => alive(pid),
      exitedMessage: `Suricata (PID ${pid}) exited after SIGUSR2.`,
      unverifiedNote: 'SIGUSR2 sent and Suricata still running; rule counts not verified (no control socket).',
    });
  }
}
