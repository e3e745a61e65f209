import { createHash } from 'node:crypto';
import type { ReadEntry } from 'tar';
import { AgentError } from '../errors.js';

/**
 * Reads a (gzip'd) rules tar into memory, refusing anything that is not a plain file or directory
 * with a safe relative path, and capping the unpacked size. Nothing touches the disk: a hostile or
 * broken archive changes nothing, and the error says exactly what was wrong (`details.reason`).
 */

export type UnsafeReason = 'absolute-path' | 'parent-dir' | 'link' | 'device' | 'entry-type' | 'too-large' | 'corrupt' | 'empty' | 'checksum';

export interface ExtractLimits {
  /** Largest total of unpacked member sizes. */
  readonly maxUnpackedBytes: number;
}

/** Member path → content, for regular files only, paths normalized (no leading `./`). */
export type ArchiveFiles = Map<string, Buffer>;

function refuse(reason: UnsafeReason, message: string, details: Record<string, unknown> = {}): AgentError {
  return new AgentError('ERR_RULES_ARCHIVE', message, { reason, ...details });
}

/** Checks a member path; returns the normalized path or throws naming the member. */
export function checkMemberPath(raw: string): string {
  if (raw.includes('\0')) throw refuse('corrupt', `Archive member ${JSON.stringify(raw)} has a NUL byte in its name.`, { member: raw });
  if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw) || raw.startsWith('\\')) {
    throw refuse('absolute-path', `Archive member ${JSON.stringify(raw)} has an absolute path.`, { member: raw });
  }
  const parts = raw.split(/[\\/]+/);
  if (parts.includes('..')) throw refuse('parent-dir', `Archive member ${JSON.stringify(raw)} climbs out of the archive with "..".`, { member: raw });
  return parts.filter((p) => p !== '' && p !== '.').join('/');
}

export function md5Hex(buf: Buffer): string {
  return createHash('md5').update(buf).digest('hex');
}

/** Parses the content of an `.md5` file: `hash` or `hash  filename`, surrounding white space allowed. */
export function parseMd5File(text: string): string | null {
  const m = /^\s*([0-9a-fA-F]{32})(\s|$)/.exec(text);
  return m ? m[1]!.toLowerCase() : null;
}

/** Throws ERR_RULES_CHECKSUM when `expected` is given and differs from the archive's MD5. */
export function verifyMd5(archive: Buffer, expected: string | null, what: string): void {
  if (expected === null) return;
  const actual = md5Hex(archive);
  if (actual !== expected.toLowerCase()) {
    throw new AgentError('ERR_RULES_CHECKSUM', `${what}: MD5 ${actual} does not match the published ${expected}.`, { reason: 'checksum', expected, actual });
  }
}

export async function extractArchive(archive: Buffer, limits: ExtractLimits): Promise<ArchiveFiles> {
  // Loaded when an archive actually arrives (at most daily; most checks find the set unchanged).
  const { Parser } = await import('tar');
  return new Promise((resolve, reject) => {
    const files: ArchiveFiles = new Map();
    let total = 0;
    let failed: Error | null = null;
    let entries = 0;
    const parser = new Parser({
      strict: true,
      // The default ratio guard is meant for streaming to disk; our own running cap is exact.
      maxDecompressionRatio: Number.MAX_SAFE_INTEGER,
    });
    let settled = false;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = err;
      settled = true;
      reject(err);
      parser.abort(err);
    };
    parser.on('entry', (entry: ReadEntry) => {
      entries++;
      if (failed) return entry.resume();
      try {
        const path = checkMemberPath(entry.path);
        const type = entry.type;
        if (type === 'SymbolicLink' || type === 'Link') {
          throw refuse('link', `Archive member ${JSON.stringify(entry.path)} is a ${type === 'Link' ? 'hard' : 'symbolic'} link (to ${JSON.stringify(entry.linkpath ?? '')}).`, { member: entry.path });
        }
        if (type === 'CharacterDevice' || type === 'BlockDevice' || type === 'FIFO') {
          throw refuse('device', `Archive member ${JSON.stringify(entry.path)} is a ${type}.`, { member: entry.path });
        }
        if (type === 'Directory') return entry.resume();
        if (type !== 'File' && type !== 'OldFile' && type !== 'ContiguousFile') {
          throw refuse('entry-type', `Archive member ${JSON.stringify(entry.path)} has unsupported type ${type}.`, { member: entry.path });
        }
        total += entry.size;
        if (total > limits.maxUnpackedBytes) {
          throw refuse('too-large', `Archive unpacks to more than ${limits.maxUnpackedBytes} bytes (member ${JSON.stringify(entry.path)} is ${entry.size} bytes).`, {
            member: entry.path,
            limit: limits.maxUnpackedBytes,
          });
        }
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => {
          if (path !== '') files.set(path, Buffer.concat(chunks));
        });
      } catch (err) {
        entry.resume();
        fail(err as Error);
      }
    });
    // After abort() tar emits 'abort' and 'error' but no 'close': every failure settles here at once.
    parser.on('error', (err: Error) => {
      fail(err instanceof AgentError ? err : refuse('corrupt', `Archive is not a valid gzip'd tar: ${err.message}.`, { cause: (err as NodeJS.ErrnoException).code }));
    });
    parser.on('close', () => {
      if (settled) return;
      settled = true;
      if (entries === 0 || files.size === 0) return reject(refuse('empty', 'Archive holds no files (empty, or not a tar).'));
      resolve(files);
    });
    try {
      parser.end(archive);
    } catch (err) {
      fail(err as Error);
    }
  });
}
