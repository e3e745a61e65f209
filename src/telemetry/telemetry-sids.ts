import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logger.js';
import { errorCode, errorMessage } from '../errors.js';

export const TELEMETRY_SIDS_FILE = 'telemetry_sids.txt';

/** A SID line: digits, optionally followed by a `#` comment. */
const SID_LINE = /^(\d{1,10})\s*(?:#.*)?$/;
const MAX_BAD_EXAMPLES = 3;

export interface TelemetrySidsInfo {
  readonly path: string;
  /** Number of SIDs in force; 0 when the file is missing or empty (every alert is sent). */
  readonly count: number;
  readonly badLines: number;
  /** When the file was last (re)read, epoch ms; null before the first read of an existing file. */
  readonly loadedAt: number | null;
  readonly present: boolean;
}

/**
 * The SIDs of telemetry_sids.txt in the rules directory (one SID a line, `#` comments and
 * blank lines ignored). `refresh()` stats the file and re-reads it only when its inode, size or
 * mtime changed; bad lines are counted and logged once per read. A missing or empty file gives
 * `current() === null`: all alerts are telemetry (design §3 rule 6).
 */
export class TelemetrySids {
  readonly path: string;
  private sids: ReadonlySet<number> | null = null;
  private signature: string | null = null;
  private badLines = 0;
  private loadedAt: number | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(
    rulesDir: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.path = join(rulesDir, TELEMETRY_SIDS_FILE);
  }

  current(): ReadonlySet<number> | null {
    return this.sids;
  }

  info(): TelemetrySidsInfo {
    return { path: this.path, count: this.sids?.size ?? 0, badLines: this.badLines, loadedAt: this.loadedAt, present: this.signature !== null };
  }

  /** Concurrent calls share one read. Never throws: a read error keeps the previous list and is logged. */
  refresh(): Promise<void> {
    if (this.inFlight === null) {
      this.inFlight = this.doRefresh().finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  private async doRefresh(): Promise<void> {
    let sig: string;
    try {
      const st = await stat(this.path);
      sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') {
        if (this.signature !== null || this.loadedAt === null) {
          if (this.signature !== null) this.log.info('telemetry_sids.txt is gone: every alert is telemetry now.', { path: this.path });
          this.sids = null;
          this.signature = null;
          this.badLines = 0;
          this.loadedAt = this.now();
        }
        return;
      }
      this.log.warn('Cannot read telemetry_sids.txt; keeping the previous SID list.', { path: this.path, code: errorCode(err), error: errorMessage(err) });
      return;
    }
    if (sig === this.signature) return;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      this.log.warn('Cannot read telemetry_sids.txt; keeping the previous SID list.', { path: this.path, code: errorCode(err), error: errorMessage(err) });
      return;
    }
    const sids = new Set<number>();
    let bad = 0;
    const examples: string[] = [];
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const m = SID_LINE.exec(line);
      if (m === null) {
        bad++;
        if (examples.length < MAX_BAD_EXAMPLES) examples.push(line.slice(0, 80));
        continue;
      }
      sids.add(Number(m[1]));
    }
    this.sids = sids.size > 0 ? sids : null;
    this.signature = sig;
    this.badLines = bad;
    this.loadedAt = this.now();
    if (bad > 0) this.log.warn('telemetry_sids.txt has lines that are not SIDs; they were skipped.', { path: this.path, badLines: bad, examples });
    this.log.info(sids.size > 0 ? 'Telemetry SIDs loaded.' : 'telemetry_sids.txt lists no SIDs: every alert is telemetry.', {
      path: this.path,
      sids: sids.size,
    });
  }
}
