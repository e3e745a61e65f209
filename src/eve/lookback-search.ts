import type { FileHandle } from 'node:fs/promises';
import { eveLineTimestamp } from './eve-timestamp.js';

/** Bytes of a line read to find its timestamp: the key comes first in eve records. */
const PREFIX_BYTES = 512;
const SCAN_BYTES = 64 * 1024;

/**
 * The byte offset of the first line (a line start) whose `"timestamp"` is at or after
 * `notBeforeMs`, found by binary search over byte offsets of the first `size` bytes.
 * eve.json is only roughly time-ordered, so the answer is approximate by design. A line whose
 * timestamp cannot be read counts as "recent" (the search leans towards reading more, not less).
 * Returns `size` when every line is older.
 */
export async function findLookbackOffset(fh: FileHandle, size: number, notBeforeMs: number): Promise<number> {
  const buf = Buffer.allocUnsafe(Math.max(PREFIX_BYTES, SCAN_BYTES));
  let lo = 0;
  let hi = size;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const ls = await lineStartAtOrAfter(fh, buf, mid, size);
    if (ls >= hi) {
      hi = mid;
      continue;
    }
    const ts = await timestampAt(fh, buf, ls, size);
    if (ts !== null && ts < notBeforeMs) lo = Math.min(ls + 1, hi);
    else hi = mid;
  }
  return lineStartAtOrAfter(fh, buf, lo, size);
}

/** The first line start at or after `offset` (0 is always one), or `size` when there is none. */
async function lineStartAtOrAfter(fh: FileHandle, buf: Buffer, offset: number, size: number): Promise<number> {
  if (offset <= 0) return 0;
  let pos = offset - 1; // the byte before `offset` may be the newline ending the previous line
  while (pos < size) {
    const want = Math.min(SCAN_BYTES, size - pos);
    const { bytesRead } = await fh.read(buf, 0, want, pos);
    if (bytesRead === 0) break;
    const nl = buf.subarray(0, bytesRead).indexOf(10);
    if (nl >= 0) return Math.min(pos + nl + 1, size);
    pos += bytesRead;
  }
  return size;
}

async function timestampAt(fh: FileHandle, buf: Buffer, offset: number, size: number): Promise<number | null> {
  const { bytesRead } = await fh.read(buf, 0, Math.min(PREFIX_BYTES, size - offset), offset);
  let text = buf.toString('utf8', 0, bytesRead);
  const nl = text.indexOf('\n');
  if (nl >= 0) text = text.slice(0, nl);
  return eveLineTimestamp(text);
}
