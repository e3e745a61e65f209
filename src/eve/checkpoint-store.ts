import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError, errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';

/** Where the follower stands: the end of the last line whose every predecessor was acknowledged. */
export interface Checkpoint {
  readonly version: 1;
  /** The file the bytes were read from (informative; dev + ino identify it). */
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  /** Byte offset of the next line to read in that file. */
  readonly offset: number;
  /** ISO 8601 time of the write. */
  readonly savedAt: string;
}

export const CHECKPOINT_FILE = 'checkpoint.json';

/**
 * Reads and writes `<stateDir>/checkpoint.json`. A write never touches the live file:
 * temp file → fsync → rename → fsync of the directory, so a crash leaves either the old
 * or the new checkpoint, never a torn one.
 */
export class CheckpointStore {
  readonly file: string;
  private tmpCounter = 0;
  private dirReady = false;

  constructor(
    private readonly stateDir: string,
    private readonly log: Logger,
  ) {
    this.file = join(stateDir, CHECKPOINT_FILE);
  }

  /**
   * The stored checkpoint, or null when there is none. A corrupt file is moved aside to
   * `checkpoint.json.corrupt-<ms>` and reported by throwing ERR_CHECKPOINT_INVALID (naming
   * the file and where it went); the caller logs it and carries on as if there were none.
   */
  async load(): Promise<Checkpoint | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return null;
      throw err;
    }
    let problem: string | null;
    let value: unknown = null;
    try {
      value = JSON.parse(text);
      problem = checkpointProblem(value);
    } catch (err) {
      problem = `not JSON (${errorMessage(err)})`;
    }
    if (problem === null) return value as Checkpoint;

    const movedTo = `${this.file}.corrupt-${Date.now()}`;
    let moved = true;
    try {
      await rename(this.file, movedTo);
    } catch (err) {
      moved = false;
      this.log.warn('Could not move the invalid checkpoint file aside.', { file: this.file, error: errorMessage(err) });
    }
    throw new AgentError(
      'ERR_CHECKPOINT_INVALID',
      `Checkpoint file ${this.file} is invalid: ${problem}${moved ? `; moved aside to ${movedTo}` : ''}.`,
      { file: this.file, movedTo: moved ? movedTo : null, problem },
    );
  }

  async save(cp: Checkpoint): Promise<void> {
    const problem = checkpointProblem(cp);
    if (problem !== null) {
      throw new AgentError('ERR_CHECKPOINT_INVALID', `Refusing to write checkpoint ${this.file}: ${problem}.`, { file: this.file, problem });
    }
    if (!this.dirReady) {
      await mkdir(this.stateDir, { recursive: true });
      this.dirReady = true;
    }
    const tmp = `${this.file}.tmp-${process.pid}-${++this.tmpCounter}`;
    const body = `${JSON.stringify({ version: 1, path: cp.path, dev: cp.dev, ino: cp.ino, offset: cp.offset, savedAt: cp.savedAt })}\n`;
    const fh = await open(tmp, 'w', 0o644).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      await mkdir(this.stateDir, { recursive: true }); // the state dir was removed while running
      return open(tmp, 'w', 0o644);
    });
    try {
      await fh.writeFile(body, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    await syncDir(this.stateDir);
  }
}

async function syncDir(dir: string): Promise<void> {
  let dh;
  try {
    dh = await open(dir, 'r');
    await dh.sync();
  } catch (err) {
    // Some file systems refuse fsync on a directory (EINVAL/EISDIR); the rename is still atomic.
    const code = errorCode(err);
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await dh?.close();
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** What is wrong with a parsed checkpoint, or null when it is valid. */
export function checkpointProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (o['version'] !== 1) return `unsupported version ${JSON.stringify(o['version'])} (expected 1)`;
  if (typeof o['path'] !== 'string' || o['path'] === '') return 'path must be a non-empty string';
  for (const k of ['dev', 'ino', 'offset'] as const) {
    if (!isCount(o[k])) return `${k} must be a non-negative integer, got ${JSON.stringify(o[k])}`;
  }
  if (typeof o['savedAt'] !== 'string') return 'savedAt must be a string';
  return null;
}
