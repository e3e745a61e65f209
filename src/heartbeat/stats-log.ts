import { open } from 'node:fs/promises';

/** The eight counters the heartbeat reports, in the plugin's order. */
export const LOG_STAT_NAMES = [
  'capture.kernel_packets',
  'decoder.pkts',
  'decoder.bytes',
  'decoder.ipv4',
  'decoder.ipv6',
  'flow.tcp',
  'flow.udp',
  'detect.alert',
] as const;

export type LogStatName = (typeof LOG_STAT_NAMES)[number];
export type LogStats = Record<LogStatName, number | null>;

/** One block of stats.log: its `Date:` line as written (local time, no zone) and its `Total` rows. */
export interface StatsBlock {
  readonly date: string;
  readonly uptimeS: number | null;
  readonly counters: ReadonlyMap<string, number>;
}

const DATE_LINE = /^Date: (\d{1,2}\/\d{1,2}\/\d{4} -- \d{2}:\d{2}:\d{2}) \(uptime: (\d+)d, (\d+)h (\d+)m (\d+)s\)\s*$/;
const ROW = /^(\S+)\s+\|\s+(\S+)\s+\|\s+(\d+)\s*$/;

/**
 * The last complete block of stats.log text. A block starts at its `Date:` line; only complete
 * lines are read (a trailing line without `\n` is still being written). Per-thread rows
 * (`threads: yes`) are ignored, only `Total` rows count. Null when the text holds no block.
 */
export function parseLastStatsBlock(text: string): StatsBlock | null {
  const end = text.lastIndexOf('\n');
  const complete = end < 0 ? '' : text.slice(0, end + 1);
  const start = complete.lastIndexOf('\nDate: ');
  const from = start >= 0 ? start + 1 : complete.startsWith('Date: ') ? 0 : -1;
  if (from < 0) return null;
  const lines = complete.slice(from).split('\n');
  const m = DATE_LINE.exec(lines[0]!);
  if (!m) return null;
  const uptimeS = Number(m[2]) * 86_400 + Number(m[3]) * 3_600 + Number(m[4]) * 60 + Number(m[5]);
  const counters = new Map<string, number>();
  for (const line of lines.slice(1)) {
    const r = ROW.exec(line);
    if (r && r[2] === 'Total') counters.set(r[1]!, Number(r[3]));
  }
  return { date: m[1]!, uptimeS, counters };
}

/**
 * The heartbeat counters from a stats.log block. stats.log omits zero counters
 * (`null-values: no`, the default), so inside a present block a missing `decoder.*`, `flow.*`
 * or `detect.alert` row means 0. `capture.kernel_packets` is the exception: it does not exist
 * at all when Suricata reads a pcap file, so its absence stays null ("not applicable") rather
 * than a made-up 0.
 */
export function logStatsFromBlock(block: StatsBlock): LogStats {
  const out = {} as LogStats;
  for (const name of LOG_STAT_NAMES) {
    const v = block.counters.get(name);
    out[name] = v !== undefined ? v : name === 'capture.kernel_packets' ? null : 0;
  }
  return out;
}

/**
 * The heartbeat counters from an eve `stats` record (`{event_type:"stats", stats:{…}}` or the
 * bare `stats` object). eve includes zeros, so an absent counter is null (not applicable).
 */
export function logStatsFromEve(record: unknown): LogStats | null {
  if (record === null || typeof record !== 'object') return null;
  const r = record as Record<string, unknown>;
  const stats = r['event_type'] === 'stats' ? r['stats'] : r['stats'] ?? (('decoder' in r || 'uptime' in r) ? r : undefined);
  if (stats === null || typeof stats !== 'object') return null;
  const out = {} as LogStats;
  for (const name of LOG_STAT_NAMES) {
    let node: unknown = stats;
    for (const part of name.split('.')) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined;
    out[name] = typeof node === 'number' && Number.isFinite(node) ? node : null;
  }
  return out;
}

const TAIL_BYTES = 256 * 1_024;
const MAX_TAIL_BYTES = 8 * 1_048_576;

/**
 * Reads the last block of a stats.log without reading the whole (ever-growing) file: the tail is
 * read, and doubled until it holds a `Date:` line or reaches 8 MiB. Returns the block and the
 * file's mtime; rejects with the fs error (ENOENT when Suricata writes no stats.log).
 */
export async function readLastStatsBlock(path: string): Promise<{ block: StatsBlock | null; mtimeMs: number }> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    let want = Math.min(TAIL_BYTES, st.size);
    for (;;) {
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, st.size - want);
      const text = buf.subarray(0, bytesRead).toString('utf8');
      const block = parseLastStatsBlock(want === st.size ? text : text.slice(text.indexOf('\n') + 1));
      if (block || want >= st.size || want >= MAX_TAIL_BYTES) return { block, mtimeMs: st.mtimeMs };
      want = Math.min(want * 2, st.size, MAX_TAIL_BYTES);
    }
  } finally {
    await fh.close();
  }
}
