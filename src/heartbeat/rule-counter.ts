import { readFile, stat } from 'node:fs/promises';

/**
 * SIDs of the enabled rules in a rule file, as Suricata loads it: lines starting with `#`,
 * a space, a tab or CR are skipped (Suricata treats them as comments), a trailing `\` continues
 * a rule on the next line. A rule without `sid:` is not counted.
 */
export function enabledSids(text: string): Set<number> {
  const sids = new Set<number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line === '' || line[0] === '#' || line[0] === ' ' || line[0] === '\t' || line[0] === '\r') continue;
    while (/\\\r?$/.test(line) && i + 1 < lines.length) line = line.replace(/\\\r?$/, '') + lines[++i]!;
    const m = /[(;]\s*sid\s*:\s*"?(\d+)"?\s*;/.exec(line);
    if (m) sids.add(Number(m[1]));
  }
  return sids;
}

/** `telemetry_sids.txt`: one SID a line; blank lines and `#` comments ignored. */
export function parseSidList(text: string): Set<number> {
  const out = new Set<number>();
  for (const raw of text.split('\n')) {
    const t = raw.trim();
    if (/^\d+$/.test(t)) out.add(Number(t));
  }
  return out;
}

interface Cached<T> {
  readonly mtimeMs: number;
  readonly size: number;
  readonly value: T;
}

/**
 * Reads a file through a parser and keeps the result until the file's mtime or size changes,
 * so the hourly heartbeat does not re-parse an unchanged ruleset. Bounded: entries for files no
 * longer asked for are dropped by `retain`.
 */
export class MtimeCache<T> {
  private readonly entries = new Map<string, Cached<T>>();
  /** How many times a file was actually read and parsed (for tests and debug logs). */
  parses = 0;

  constructor(private readonly parse: (text: string) => T) {}

  async get(path: string): Promise<T> {
    const st = await stat(path);
    const hit = this.entries.get(path);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.value;
    const value = this.parse(await readFile(path, 'utf8'));
    this.parses++;
    this.entries.set(path, { mtimeMs: st.mtimeMs, size: st.size, value });
    return value;
  }

  retain(paths: Iterable<string>): void {
    const keep = new Set(paths);
    for (const p of this.entries.keys()) if (!keep.has(p)) this.entries.delete(p);
  }
}

/** Counts enabled rules (distinct SIDs) across the rule files Suricata loads. */
export class RuleCounter {
  private readonly rules = new MtimeCache(enabledSids);
  private readonly telemetry = new MtimeCache(parseSidList);

  get parses(): number {
    return this.rules.parses + this.telemetry.parses;
  }

  /** Distinct enabled SIDs over all `files`. Rejects with the fs error of the first unreadable file. */
  async enabledSids(files: readonly string[]): Promise<Set<number>> {
    this.rules.retain(files);
    const all = new Set<number>();
    for (const f of files) for (const sid of await this.rules.get(f)) all.add(sid);
    return all;
  }

  /** SIDs listed in telemetry_sids.txt. Rejects with the fs error (ENOENT when absent). */
  telemetrySids(path: string): Promise<Set<number>> {
    return this.telemetry.get(path);
  }
}
