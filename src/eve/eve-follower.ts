import { watch, type FSWatcher, type Stats } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { StartAt } from '../config.js';
import { errorCode, errorMessage, isAgentError } from '../errors.js';
import { RateLimitedLog, type Logger } from '../logger.js';
import { AckWindow } from './ack-window.js';
import type { Checkpoint, CheckpointStore } from './checkpoint-store.js';
import { LineSplitter, type LineSink } from './line-splitter.js';
import { findLookbackOffset } from './lookback-search.js';

export interface FilePosition {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  readonly offset: number;
}

export interface EveLine {
  /** Consecutive from 1 for the life of the follower; pass it back to `ack()`. */
  readonly seq: number;
  /** The line as UTF-8 text, without its `\n` (and without a trailing `\r`). */
  readonly text: string;
  /** Path of the file it was read from, as it was named when opened. */
  readonly file: string;
  /** Byte offset of the line start in that file. */
  readonly offset: number;
}

export interface EveFollowerOptions {
  path: string;
  startAt: StartAt;
  maxLineBytes: number;
  pollIntervalMs: number;
  maxPendingLines: number;
  /**
   * Optional pre-filter on a line's raw bytes `[start, end)`: `false` means the consumer has no
   * use for the line, which is then neither decoded nor handed out and counts as acknowledged.
   * Most eve lines are not alerts; this keeps them from ever becoming strings.
   */
  lineFilter?: (bytes: Buffer, start: number, end: number) => boolean;
  /**
   * Optional second bound: while it answers false, reading pauses (re-asked at every poll), e.g.
   * while the consumer holds too many bytes of unsent lines.
   */
  readGate?: () => boolean;
}

export type FollowerState = 'waiting-for-file' | 'following' | 'paused' | 'stopped';

export interface FollowerStats {
  path: string;
  state: FollowerState;
  dev: number | null;
  ino: number | null;
  /** Read position in the current file (start of the first line not handed out). */
  offset: number;
  fileSize: number;
  lagBytes: number;
  linesRead: number;
  linesTooLong: number;
  pendingLines: number;
  rotations: number;
  truncations: number;
  /** The last checkpoint written (or loaded at start). */
  checkpoint: FilePosition | null;
  lastCheckpointAt: number | null;
}

/** One opened file; lines keep a reference to it so the checkpoint names the right inode. */
interface FileRef {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

interface OpenFile extends FileRef {
  readonly fh: FileHandle;
}

const READ_CHUNK_BYTES = 256 * 1024;
/**
 * Least time between two checkpoint writes while acknowledgements stream in. Each write costs an
 * fsync of the file and of the directory; back to back they took a quarter of the agent's CPU at
 * 15,000 alerts/s. After a kill -9, at most this much acknowledged work is sent again.
 */
const CHECKPOINT_MIN_GAP_MS = 100;
/**
 * A rotated sibling counts as written after a look at the path when its mtime is at most this
 * much before the look: file times come from a coarser clock than Date.now(), and some file
 * systems keep whole seconds only.
 */
const SIBLING_MTIME_SLACK_MS = 1_000;
/** At most this many rotated files missed between two looks are read; more means something else is going on. */
const MAX_MISSED_FILES = 16;
/** How many recently read inodes are remembered, so a rotated file already read is not read again. */
const READ_FILES_REMEMBERED = 64;
/** Compressed rotations (logrotate `compress`) are not eve lines. */
const COMPRESSED_NAME = /\.(gz|bz2|xz|zst|lz4|lzma|z|zip)$/i;

const fileKey = (f: { dev: number; ino: number }): string => `${f.dev}:${f.ino}`;

/** Oldest first: by mtime, then ctime (logrotate renames the oldest first), then name. */
const oldestFirst = (a: { path: string; st: Stats }, b: { path: string; st: Stats }): number =>
  a.st.mtimeMs - b.st.mtimeMs || a.st.ctimeMs - b.st.ctimeMs || (a.path < b.path ? -1 : 1);

/** True when `offset` is 0 or the byte before it is a newline, i.e. `offset` is a line start. */
async function followsNewline(fh: FileHandle, offset: number): Promise<boolean> {
  if (offset === 0) return true;
  const b = Buffer.alloc(1);
  const { bytesRead } = await fh.read(b, 0, 1, offset - 1);
  return bytesRead === 1 && b[0] === 10;
}

const TAIL_SCAN_BYTES = 64 * 1024;

/**
 * The start of the line holding byte `size` (just after the last newline before `size`), or
 * `size` itself when the byte before it is a newline: the file may end in a line still being
 * written. Scans backwards from `size`, one window at a time, and gives 0 when there is no newline.
 */
async function lastLineStart(fh: FileHandle, size: number): Promise<number> {
  const buf = Buffer.allocUnsafe(TAIL_SCAN_BYTES);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - TAIL_SCAN_BYTES);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}

const samePosition = (a: FilePosition | null, b: FilePosition | null): boolean =>
  a === b || (a !== null && b !== null && a.dev === b.dev && a.ino === b.ino && a.offset === b.offset && a.path === b.path);

/**
 * Follows eve.json by (dev, inode, byte offset): survives rename rotation (the old file is
 * read to its end first), copytruncate (size below the offset → 0), deletion of the open
 * file, a partial last line (held until its newline arrives), and restarts (the checkpoint,
 * even when it points into a rotated sibling such as eve.json.1).
 *
 * The open file is left only once a later file (the one at the path, or a rotated one not read
 * yet) holds data: after a logrotate `create` rotation the new file stays empty until the writer
 * reopens, lazily, and until then it appends to the renamed file. The writer writes one file at
 * a time, so once a later file has a record the open one is complete; it is read to its end, then
 * left.
 *
 * Rotations faster than a poll are not lost: whenever the path is found holding a file not seen
 * there before (a rotation, or the file appearing while waited for), rotated siblings
 * (`<name>*` in the same directory, not compressed) that were written since the last look that
 * found the path unchanged, and were neither read nor present at start, are read first, oldest
 * first by mtime, then the file at the path from 0. At a restart that resumes in a rotated file,
 * the siblings written no earlier than it are read next, oldest first, then the current file;
 * when the checkpointed file is gone, the siblings written since the checkpoint are.
 *
 * Lines go to `onLines` in batches with consecutive seqs; the consumer calls `ack(seq)` for
 * every one once handled. The checkpoint only moves over a contiguous run of acknowledged lines;
 * reading pauses while `maxPendingLines` are unacknowledged, so the file on disk is the buffer.
 */
export class EveFollower {
  private readonly splitter: LineSplitter;
  private readonly window: AckWindow<FileRef>;
  private readonly buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  private readonly dir: string;
  private readonly base: string;
  private readonly tooLongLog: RateLimitedLog;
  private readonly errorLog: RateLimitedLog;
  private readonly saveErrorLog: RateLimitedLog;

  private state: FollowerState = 'waiting-for-file';
  private file: OpenFile | null = null;
  private fileSize = 0;
  /** The path was seen holding another inode: finish the open file, then switch. */
  private switchArmed = false;
  /** Files to read after the open one, in order; the last one is what the path held when they were found. */
  private queue: { file: OpenFile; size: number }[] = [];
  /**
   * Wall-clock time (file mtimes are wall-clock) just before the last look that found the path
   * holding the open file, or empty when waiting began. A file rotated out later was written later.
   */
  private pathSeenAt = Date.now();
  /** Siblings present at start: older rotations, not read unless the checkpoint points into one. */
  private readonly startSiblings = new Set<string>();
  /** Recently read inodes (dev:ino), oldest first. */
  private readonly readFiles: string[] = [];
  private waitLogged = false;

  private linesRead = 0;
  private linesTooLong = 0;
  private rotations = 0;
  private truncations = 0;

  private ackedPos: FilePosition | null = null;
  private savedPos: FilePosition | null = null;
  private lastCheckpointAt: number | null = null;
  private saving: Promise<void> | null = null;
  private saveGapTimer: NodeJS.Timeout | null = null;

  private started = false;
  private stopped = false;
  private stopPromise: Promise<void> | null = null;
  private pumping: Promise<void> | null = null;
  private wakeAgain = false;
  private timer: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;

  private readonly sink: LineSink;
  private batch: EveLine[] = [];

  constructor(
    private readonly opts: EveFollowerOptions,
    private readonly checkpoints: CheckpointStore,
    private readonly log: Logger,
    private readonly onLines: (lines: EveLine[]) => void,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isSafeInteger(opts.maxPendingLines) || opts.maxPendingLines < 1) throw new RangeError(`maxPendingLines must be a positive integer, got ${opts.maxPendingLines}`);
    if (!Number.isSafeInteger(opts.maxLineBytes) || opts.maxLineBytes < 1) throw new RangeError(`maxLineBytes must be a positive integer, got ${opts.maxLineBytes}`);
    if (!(opts.pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be positive, got ${opts.pollIntervalMs}`);
    this.splitter = new LineSplitter(opts.maxLineBytes);
    this.window = new AckWindow<FileRef>(opts.maxPendingLines);
    this.dir = dirname(opts.path);
    this.base = basename(opts.path);
    this.tooLongLog = new RateLimitedLog(log, 'warn', 10_000, now);
    this.errorLog = new RateLimitedLog(log, 'error', 10_000, now);
    this.saveErrorLog = new RateLimitedLog(log, 'error', 10_000, now);
    this.sink = {
      line: (text, start, end) => {
        const file = this.file!;
        const seq = this.window.add(file, end);
        this.batch.push({ seq, text, file: file.path, offset: start });
      },
      tooLong: (start, end) => {
        this.linesTooLong++;
        this.tooLongLog.write('Skipped an eve line longer than the limit.', {
          code: 'ERR_EVE_LINE_TOO_LONG',
          file: this.file?.path,
          offset: start,
          bytes: end - start - 1,
          maxLineBytes: this.opts.maxLineBytes,
        });
      },
      blank: () => {},
      ...(opts.lineFilter ? { wants: opts.lineFilter } : {}),
    };
  }

  /** Loads the checkpoint (or applies startAt) and begins following. A missing file is waited for. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    let cp: Checkpoint | null = null;
    try {
      cp = await this.checkpoints.load();
    } catch (err) {
      if (!isAgentError(err, 'ERR_CHECKPOINT_INVALID')) throw err;
      this.log.error('Checkpoint file is invalid; starting as if there were none.', { code: err.code, ...err.details });
    }
    if (this.stopped) return;
    this.pathSeenAt = Date.now();
    for (const s of await this.siblings()) this.startSiblings.add(fileKey(s.st));
    await this.openInitial(cp);
    if (this.stopped) {
      await this.file?.fh.close().catch(() => {});
      this.file = null;
      return;
    }
    this.startWatcher();
    this.arm();
    this.wake();
  }

  /** Stops reading, writes the final checkpoint, closes the file. Idempotent. */
  stop(): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    this.stopped = true;
    this.stopPromise = (async () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      if (this.saveGapTimer) clearTimeout(this.saveGapTimer);
      this.saveGapTimer = null;
      this.watcher?.close();
      this.watcher = null;
      while (this.pumping) await this.pumping;
      try {
        await this.flushCheckpoint();
      } catch (err) {
        this.log.error('Could not write the final checkpoint.', { file: this.checkpoints.file, error: errorMessage(err) });
      }
      const f = this.file;
      this.file = null;
      await f?.fh.close().catch(() => {});
      const queued = this.queue;
      this.queue = [];
      for (const q of queued) await q.file.fh.close().catch(() => {});
      this.state = 'stopped';
    })();
    return this.stopPromise;
  }

  /** The consumer is done with line `seq` (delivered, skipped, or not an alert). Any order. */
  ack(seq: number): void {
    if (!this.window.ack(seq)) return;
    this.updateAckedPosition();
    this.scheduleSave();
    if (this.state === 'paused' && this.window.pending < this.opts.maxPendingLines) this.wake();
  }

  /** Writes the acknowledged position now (waiting for a write in flight first). */
  async flushCheckpoint(): Promise<void> {
    while (this.saving) await this.saving;
    const target = this.ackedPos;
    if (target !== null && !samePosition(target, this.savedPos)) await this.save(target, true);
  }

  stats(): FollowerStats {
    const f = this.file;
    const offset = f ? this.splitter.lineStart : 0;
    const fileSize = f ? Math.max(this.fileSize, this.splitter.pos) : 0;
    return {
      path: this.opts.path,
      state: this.state,
      dev: f?.dev ?? null,
      ino: f?.ino ?? null,
      offset,
      fileSize,
      lagBytes: Math.max(0, fileSize - offset),
      linesRead: this.linesRead,
      linesTooLong: this.linesTooLong,
      pendingLines: this.window.pending,
      rotations: this.rotations,
      truncations: this.truncations,
      checkpoint: this.savedPos,
      lastCheckpointAt: this.lastCheckpointAt,
    };
  }

  // ---- start-up -------------------------------------------------------------------------

  private async openInitial(cp: Checkpoint | null): Promise<void> {
    if (cp !== null && !this.isOwnFile(cp.path)) {
      this.log.warn('Checkpoint belongs to another eve file; ignoring it.', { checkpointPath: cp.path, path: this.opts.path });
      cp = null;
    }
    const current = await this.openPath();
    if (cp === null) {
      if (!current) return this.waitForFile(); // a file that appears later is new: read from 0
      const offset = await this.startOffset(current.file.fh, current.st.size);
      this.useFile(current.file, offset, current.st.size);
      this.log.info('Following eve file.', { path: this.opts.path, startAt: this.opts.startAt.kind, offset, size: current.st.size });
      // Remember the start right away: a restart before the first ack must not apply startAt again.
      this.ackedPos = this.positionOf(current.file, offset);
      this.scheduleSave();
      return;
    }

    const cpPos: FilePosition = { path: cp.path, dev: cp.dev, ino: cp.ino, offset: cp.offset };
    this.savedPos = cpPos;
    this.ackedPos = cpPos;
    if (current && current.file.dev === cp.dev && current.file.ino === cp.ino) {
      let offset = cp.offset;
      if (current.st.size < offset) {
        this.log.warn('Eve file is shorter than the checkpoint (truncated); reading it from the start.', { path: this.opts.path, offset, size: current.st.size });
        this.truncations++;
        offset = 0;
      } else if (!(await followsNewline(current.file.fh, offset))) {
        // A checkpoint is always a line start. If it is not one here, the inode number was
        // reused by a new file (deleted, then recreated): this file is new, read all of it.
        this.log.warn('Checkpoint offset is not a line start in the eve file (inode reused by a new file); reading it from the start.', { path: this.opts.path, offset });
        offset = 0;
      }
      this.useFile(current.file, offset, current.st.size);
      this.log.info('Resuming eve file from the checkpoint.', { path: this.opts.path, offset });
      return;
    }

    const sibling = await this.findSibling(cp.dev, cp.ino);
    if (sibling) {
      let offset = cp.offset;
      if (sibling.st.size < offset || !(await followsNewline(sibling.file.fh, offset))) offset = 0;
      // Files rotated after it (written no earlier than its last write) come next, then the current file.
      const later = await this.openSiblings(await this.siblingsWrittenSince(sibling.st.mtimeMs, [sibling.file, current?.file ?? null]));
      this.queue = [...later, ...(current ? [{ file: current.file, size: current.st.size }] : [])];
      this.useFile(sibling.file, offset, sibling.st.size);
      this.log.info('Resuming in the rotated eve file from the checkpoint, then the files rotated after it, then the current one from its start.', {
        rotatedPath: sibling.file.path,
        offset,
        laterRotatedPaths: later.map((l) => l.file.path),
        path: this.opts.path,
      });
      return;
    }
    // Rotated files written since the checkpoint came after the gone file (one file is written
    // at a time): read them before the current file. The slack admits a file whose coarse mtime
    // falls just before the save; at worst an older rotation is read again, which loses nothing.
    const savedAt = Date.parse(cp.savedAt);
    const since = Number.isFinite(savedAt) ? await this.siblingsWrittenSince(savedAt - SIBLING_MTIME_SLACK_MS, [current?.file ?? null]) : [];
    const later = await this.openSiblings(since);
    this.log.warn(
      later.length > 0
        ? 'The checkpointed eve file is gone; reading the rotated files written since the checkpoint, then the current file from its start.'
        : 'The checkpointed eve file is gone; reading the current file from its start.',
      { checkpointPath: cp.path, ino: cp.ino, path: this.opts.path, rotatedPaths: later.map((l) => l.file.path) },
    );
    const [first, ...rest] = later;
    if (first) {
      this.queue = [...rest, ...(current ? [{ file: current.file, size: current.st.size }] : [])];
      this.useFile(first.file, 0, first.size);
      return;
    }
    if (!current) return this.waitForFile();
    this.useFile(current.file, 0, current.st.size);
  }

  private isOwnFile(path: string): boolean {
    return path === this.opts.path || (dirname(path) === this.dir && basename(path).startsWith(this.base));
  }

  private async startOffset(fh: FileHandle, size: number): Promise<number> {
    const s = this.opts.startAt;
    switch (s.kind) {
      case 'beginning':
        return 0;
      case 'end':
        return lastLineStart(fh, size);
      case 'lookback':
        return findLookbackOffset(fh, size, this.now() - s.ms);
    }
  }

  /** Rotated siblings: regular files in the same directory whose name starts with the eve file's name. */
  private async siblings(): Promise<{ path: string; st: Stats }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const found: { path: string; st: Stats }[] = [];
    for (const name of names.sort()) {
      if (name === this.base || !name.startsWith(this.base)) continue;
      const p = join(this.dir, name);
      try {
        const st = await stat(p);
        if (st.isFile()) found.push({ path: p, st });
      } catch {
        // Gone meanwhile.
      }
    }
    return found;
  }

  /** A rotated sibling with that inode. */
  private async findSibling(dev: number, ino: number): Promise<{ file: OpenFile; st: Stats } | null> {
    for (const s of await this.siblings()) {
      if (s.st.dev !== dev || s.st.ino !== ino) continue;
      const opened = await this.openFile(s.path);
      if (opened && opened.file.dev === dev && opened.file.ino === ino) return opened;
      await opened?.file.fh.close();
    }
    return null;
  }

  /**
   * Rotated siblings the follower has not read that were written at or after `since` (the last
   * look that found the path unchanged) and are not `current`: files rotated out between two
   * looks, oldest first.
   */
  private async unreadSiblings(since: number, current: FileRef | null): Promise<{ path: string; st: Stats }[]> {
    const all = await this.siblings();
    // A start-time sibling that is gone frees its inode number for a new file.
    const present = new Set(all.map((s) => fileKey(s.st)));
    for (const k of this.startSiblings) if (!present.has(k)) this.startSiblings.delete(k);
    const skip = new Set([...(current ? [fileKey(current)] : []), ...this.readFiles, ...this.startSiblings]);
    return all
      .filter((s) => !COMPRESSED_NAME.test(s.path) && !skip.has(fileKey(s.st)) && s.st.mtimeMs >= since - SIBLING_MTIME_SLACK_MS)
      .sort(oldestFirst);
  }

  /**
   * Uncompressed rotated siblings last written at or after `sinceMs` (a file mtime or wall-clock
   * time), other than `exclude`, oldest first. Used at start, when every sibling is a start sibling.
   */
  private async siblingsWrittenSince(sinceMs: number, exclude: (FileRef | null)[]): Promise<{ path: string; st: Stats }[]> {
    const skip = new Set(exclude.filter((f): f is FileRef => f !== null).map(fileKey));
    return (await this.siblings())
      .filter((s) => !COMPRESSED_NAME.test(s.path) && !skip.has(fileKey(s.st)) && s.st.mtimeMs >= sinceMs)
      .sort(oldestFirst);
  }

  /** Opens the given siblings (at most MAX_MISSED_FILES, the newest), skipping any replaced meanwhile. */
  private async openSiblings(found: { path: string; st: Stats }[]): Promise<{ file: OpenFile; size: number }[]> {
    if (found.length > MAX_MISSED_FILES) {
      this.log.warn('More rotated eve files are unread than are read; reading the newest.', { path: this.opts.path, found: found.length, read: MAX_MISSED_FILES });
      found = found.slice(-MAX_MISSED_FILES);
    }
    const opened: { file: OpenFile; size: number }[] = [];
    for (const s of found) {
      const o = await this.openFile(s.path);
      if (o && o.file.dev === s.st.dev && o.file.ino === s.st.ino) opened.push({ file: o.file, size: o.st.size });
      else await o?.file.fh.close();
    }
    return opened;
  }

  // ---- files ----------------------------------------------------------------------------

  private openPath(): Promise<{ file: OpenFile; st: Stats } | null> {
    return this.openFile(this.opts.path);
  }

  private async openFile(path: string): Promise<{ file: OpenFile; st: Stats } | null> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') this.errorLog.write('Cannot open eve file.', { path, error: errorMessage(err), errno: errorCode(err) });
      return null;
    }
    try {
      const st = await fh.stat();
      return { file: { fh, path, dev: st.dev, ino: st.ino }, st };
    } catch (err) {
      await fh.close().catch(() => {});
      this.errorLog.write('Cannot stat eve file.', { path, error: errorMessage(err) });
      return null;
    }
  }

  private useFile(file: OpenFile, offset: number, size: number): void {
    this.file = file;
    const key = fileKey(file);
    if (!this.readFiles.includes(key)) {
      this.readFiles.push(key);
      if (this.readFiles.length > READ_FILES_REMEMBERED) this.readFiles.shift();
    }
    this.fileSize = size;
    this.switchArmed = false;
    this.waitLogged = false;
    this.splitter.reset(offset);
    this.state = 'following';
  }

  private waitForFile(): void {
    this.state = 'waiting-for-file';
    if (!this.waitLogged) {
      this.waitLogged = true;
      this.log.info('Waiting for the eve file to appear.', { path: this.opts.path });
    }
  }

  /** The open file is read to its end and the path names another file: move to it, from 0. */
  private async switchToPath(): Promise<void> {
    const old = this.file!;
    if (this.splitter.partialBytes > 0) {
      this.log.warn('Rotated eve file ended in a partial line; it was dropped.', { path: old.path, offset: this.splitter.lineStart, bytes: this.splitter.partialBytes });
    }
    this.file = null;
    await old.fh.close().catch(() => {});
    this.rotations++;
    const queued = this.queue.shift();
    if (queued) {
      this.useFile(queued.file, 0, queued.size);
      if (this.queue.length > 0) this.log.info('Reading an eve file rotated out between two looks.', { rotatedPath: queued.file.path, ino: queued.file.ino });
      else this.log.info('Following the current eve file.', { path: this.opts.path, ino: queued.file.ino });
    } else if (!(await this.openCurrent('rotated'))) {
      return;
    }
    this.updateAckedPosition();
    this.scheduleSave();
  }

  /**
   * Opens the file at the path, which holds a file not seen there before, from 0 — after any
   * rotated siblings missed since the last look. False when there is no file (now waiting).
   */
  private async openCurrent(why: 'rotated' | 'appeared'): Promise<boolean> {
    const since = this.pathSeenAt;
    const seenAt = Date.now();
    const next = await this.openPath();
    if (!next) {
      this.waitForFile();
      return false;
    }
    if (this.stopped) {
      await next.file.fh.close();
      return false;
    }
    this.pathSeenAt = seenAt;
    const missed = await this.openSiblings(await this.unreadSiblings(since, next.file));
    if (this.stopped) {
      for (const f of [next.file, ...missed.map((m) => m.file)]) await f.fh.close().catch(() => {});
      return false;
    }
    if (missed.length === 0) {
      this.useFile(next.file, 0, next.st.size);
      this.log.info(why === 'rotated' ? 'Eve file rotated; following the new file.' : 'Eve file appeared; following it from the start.', { path: this.opts.path, ino: next.file.ino });
      return true;
    }
    const [first, ...rest] = missed;
    this.queue = [...rest, { file: next.file, size: next.st.size }];
    this.useFile(first!.file, 0, first!.size);
    this.log.info(
      why === 'rotated'
        ? 'Eve file rotated more than once between two looks; reading the rotated files first, then the new file from its start.'
        : 'Eve file appeared and was already rotated; reading the rotated files first, then the new file from its start.',
      { path: this.opts.path, rotatedPaths: missed.map((m) => m.file.path) },
    );
    return true;
  }

  // ---- the read loop --------------------------------------------------------------------

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wake();
      this.scheduleSave();
      this.arm();
    }, this.opts.pollIntervalMs);
    this.timer.unref();
  }

  private startWatcher(): void {
    try {
      this.watcher = watch(this.dir, { persistent: false }, (_event, name) => {
        if (name === null || String(name).startsWith(this.base)) this.wake();
      });
      this.watcher.on('error', () => {
        // Polling alone is enough; the watcher is only a hint.
        this.watcher?.close();
        this.watcher = null;
      });
    } catch {
      this.watcher = null;
    }
  }

  private wake(): void {
    if (this.stopped || !this.started) return;
    if (this.pumping) {
      this.wakeAgain = true;
      return;
    }
    this.pumping = (async () => {
      try {
        do {
          this.wakeAgain = false;
          await this.pump();
        } while (this.wakeAgain && !this.stopped);
      } catch (err) {
        this.errorLog.write('Reading the eve file failed; retrying on the next poll.', { path: this.file?.path ?? this.opts.path, error: errorMessage(err), errno: errorCode(err) });
      } finally {
        this.pumping = null;
      }
    })();
  }

  private async pump(): Promise<void> {
    if (!this.file) {
      if (!(await this.openCurrent('appeared'))) return;
      this.updateAckedPosition();
      this.scheduleSave();
    }
    while (!this.stopped && this.file) {
      if (this.window.pending >= this.opts.maxPendingLines || (this.opts.readGate !== undefined && !this.opts.readGate())) {
        this.state = 'paused';
        return;
      }
      this.state = 'following';
      if ((await this.readChunk()) > 0) continue;
      // At the end of the open file.
      if (this.switchArmed) {
        await this.switchToPath();
        continue;
      }
      const file = this.file;
      let current: Stats | null = null;
      const lookedAt = Date.now();
      try {
        current = await stat(this.opts.path);
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
      }
      const pathMoved = current !== null && (current.dev !== file.dev || current.ino !== file.ino);
      if (pathMoved || this.queue.length > 0) {
        if (await this.laterFileHasData(current)) {
          // Read the old file to its end once more: the writer may have added to it before reopening.
          this.switchArmed = true;
          continue;
        }
        // Every later file is still empty: after a `create` rotation the writer appends to the
        // open file until it reopens (lazily, on its next write after SIGHUP). Keep reading it.
      } else if (current) {
        this.pathSeenAt = lookedAt;
      }
      const own = await file.fh.stat();
      this.fileSize = own.size;
      if (own.size < this.splitter.pos) {
        this.truncations++;
        this.log.warn('Eve file was truncated; reading it from the start.', { path: file.path, offset: this.splitter.pos, size: own.size });
        this.splitter.reset(0);
        this.updateAckedPosition();
        this.scheduleSave();
        continue;
      }
      return;
    }
  }

  /**
   * True when a file that comes after the open one holds data: the file at the path (`current`),
   * a queued file, or a rotated sibling not read yet. The writer writes one file at a time, so
   * once a later file has a record the open one is complete.
   */
  private async laterFileHasData(current: Stats | null): Promise<boolean> {
    const file = this.file!;
    if (current !== null && (current.dev !== file.dev || current.ino !== file.ino) && current.size > 0) return true;
    for (const q of this.queue) if ((await q.file.fh.stat()).size > 0) return true;
    if (this.queue.length > 0) return false;
    const pathFile = current !== null ? { path: this.opts.path, dev: current.dev, ino: current.ino } : null;
    return (await this.unreadSiblings(this.pathSeenAt, pathFile)).some((s) => s.st.size > 0 && fileKey(s.st) !== fileKey(file));
  }

  /** Reads one chunk at the current position and hands out its complete lines. Returns bytes read. */
  private async readChunk(): Promise<number> {
    const file = this.file!;
    const { bytesRead } = await file.fh.read(this.buf, 0, this.buf.length, this.splitter.pos);
    if (bytesRead === 0 || this.file !== file) return 0;
    const room = this.opts.maxPendingLines - this.window.pending;
    this.batch = [];
    this.splitter.push(this.buf.subarray(0, bytesRead), room, this.sink);
    if (this.splitter.pos > this.fileSize) this.fileSize = this.splitter.pos;
    const lines = this.batch;
    this.batch = [];
    if (lines.length > 0) {
      this.linesRead += lines.length;
      try {
        this.onLines(lines);
      } catch (err) {
        this.errorLog.write('The eve line consumer threw.', { error: errorMessage(err) });
      }
    }
    if (this.window.pending === 0) {
      this.updateAckedPosition();
      this.scheduleSave();
    }
    return bytesRead;
  }

  // ---- checkpoint -----------------------------------------------------------------------

  private positionOf(file: FileRef, offset: number): FilePosition {
    return { path: file.path, dev: file.dev, ino: file.ino, offset };
  }

  /**
   * The acknowledged position: the end of the highest contiguously acknowledged line, or,
   * when nothing is pending, where reading stands (covering skipped lines and file switches).
   */
  private updateAckedPosition(): void {
    if (this.window.pending === 0) {
      if (this.file) this.ackedPos = this.positionOf(this.file, this.splitter.lineStart);
      return;
    }
    const { file, end } = this.window.ackedPosition;
    if (file !== undefined) this.ackedPos = this.positionOf(file, end);
  }

  /** At most one write in flight; when it completes and the position moved meanwhile, write again. */
  private scheduleSave(): void {
    if (this.saving || this.saveGapTimer || this.ackedPos === null || samePosition(this.ackedPos, this.savedPos)) return;
    void this.save(this.ackedPos, false);
  }

  private save(target: FilePosition, rethrow: boolean): Promise<void> {
    const attempt = (async (): Promise<unknown> => {
      try {
        await this.checkpoints.save({ version: 1, ...target, savedAt: new Date(this.now()).toISOString() });
        this.savedPos = target;
        this.lastCheckpointAt = this.now();
        return null;
      } catch (err) {
        return err ?? new Error('checkpoint write failed');
      }
    })().then((failure) => {
      this.saving = null;
      if (failure === null) {
        this.saveGapTimer = setTimeout(() => {
          this.saveGapTimer = null;
          this.scheduleSave();
        }, CHECKPOINT_MIN_GAP_MS);
        this.saveGapTimer.unref();
      }
      else if (!rethrow) this.saveErrorLog.write('Could not write the checkpoint; retrying on the next poll.', { file: this.checkpoints.file, error: errorMessage(failure), errno: errorCode(failure) });
      return failure;
    });
    this.saving = attempt.then(() => undefined);
    return attempt.then((failure) => {
      if (failure !== null && rethrow) throw failure;
    });
  }
}
