import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { AgentError, errorCode } from '../errors.js';

/**
 * One rules update at a time: an in-process mutex plus a lock file in the state dir created with
 * O_EXCL, so the running agent and a CLI `rules update` cannot update at once. A lock file whose
 * PID no longer runs (or is this very process, which does not hold it: PID 1 again after a
 * container restart) is stale and taken over.
 */
/** Lock files held by this process (across RulesLock instances). */
const heldHere = new Set<string>();

export class RulesLock {
  private tail: Promise<void> = Promise.resolve();
  readonly path: string;

  constructor(stateDir: string, private readonly pidAlive: (pid: number) => boolean = processAlive) {
    this.path = join(stateDir, 'rules-update.lock');
  }

  /** Runs `fn` holding both locks. Waits for an update of this process; refuses (ERR_RULES_LOCKED) one of another process. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      await this.acquireFile();
      heldHere.add(this.path);
      try {
        return await fn();
      } finally {
        heldHere.delete(this.path);
        await fs.rm(this.path, { force: true });
      }
    } finally {
      release();
    }
  }

  private async acquireFile(): Promise<void> {
    await fs.mkdir(join(this.path, '..'), { recursive: true });
    const body = JSON.stringify({ pid: process.pid, nonce: randomBytes(6).toString('hex'), at: new Date().toISOString() });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await fs.open(this.path, 'wx', 0o644);
        try {
          await fh.writeFile(body);
        } finally {
          await fh.close();
        }
        return;
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
      }
      const owner = await this.readOwner();
      // An unreadable lock may be one being written right now: stale only once it is old.
      const stale = owner === null ? await this.olderThan(10_000) : !this.pidAlive(owner) || (owner === process.pid && !heldHere.has(this.path));
      if (!stale) {
        throw new AgentError('ERR_RULES_LOCKED', `Another rules update is running (process ${owner}, lock ${this.path}).`, { pid: owner, lock: this.path });
      }
      await fs.rm(this.path, { force: true });
    }
    throw new AgentError('ERR_RULES_LOCKED', `Could not take the rules update lock ${this.path}.`, { lock: this.path });
  }

  private async olderThan(ms: number): Promise<boolean> {
    try {
      return Date.now() - (await fs.stat(this.path)).mtimeMs > ms;
    } catch {
      return true;
    }
  }

  private async readOwner(): Promise<number | null> {
    try {
      const pid = (JSON.parse(await fs.readFile(this.path, 'utf8')) as { pid?: unknown }).pid;
      return typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      // Unreadable or half-written: the writer died between open and write.
      return null;
    }
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}
