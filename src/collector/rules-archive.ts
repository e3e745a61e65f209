import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';

/**
 * A rules directory packed the way the ET endpoints serve it: a gzip'd tar holding `rules/*.rules`
 * and `rules/telemetry_sids.txt`, with a version derived from the content.
 */
export interface RulesArchive {
  /** Content hash of the rule files (16 hex digits): changes exactly when a served file changes. */
  readonly version: string;
  readonly archive: Buffer;
  readonly md5: string;
  /** Strong ETag (quoted) of the archive. */
  readonly etag: string;
  /** Newest modification time of the served files, whole seconds (HTTP dates have no fractions). */
  readonly lastModified: Date;
  /** Names of the archive's members, e.g. `rules/emerging-malware.rules`. */
  readonly members: readonly string[];
  /** Number of SIDs in `telemetry_sids.txt`. */
  readonly telemetrySidCount: number;
}

const TELEMETRY_SIDS = 'telemetry_sids.txt';
/** `sid:123;` in a rule line, enabled or commented out (`# alert ...`): enable.conf may turn those on. */
const RULE_LINE = /^\s*#?\s*(?:alert|drop|reject|rejectsrc|rejectdst|rejectboth|pass)\s/;
const SID = /[(;\s]sid\s*:\s*(\d+)\s*;/;

/** The SIDs of every rule line in `text`, in order of appearance, without duplicates. */
export function sidsInRules(text: string): number[] {
  const seen = new Set<number>();
  for (const line of text.split('\n')) {
    if (!RULE_LINE.test(line)) continue;
    const m = SID.exec(line);
    if (m) seen.add(Number(m[1]));
  }
  return [...seen];
}

interface ServedFile {
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** The files of `dir` that are served, sorted; empty when the directory does not exist. */
async function servedFiles(dir: string): Promise<ServedFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: ServedFile[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.rules') && name !== TELEMETRY_SIDS) continue;
    const st = await stat(join(dir, name)).catch(() => null);
    if (st === null || !st.isFile()) continue;
    out.push({ name, size: st.size, mtimeMs: st.mtimeMs });
  }
  return out;
}

/**
 * Builds the archive of `dir` and caches it; a new build happens only when a file is added,
 * removed, resized or touched (the stat signature changes). Concurrent callers share one build.
 */
export class RulesArchiveCache {
  private cached: { key: string; value: RulesArchive | null } | null = null;
  private building: { key: string; promise: Promise<RulesArchive | null> } | null = null;

  constructor(private readonly dir: string) {}

  /** The current archive, or null when the directory holds no `.rules` file. */
  async get(): Promise<RulesArchive | null> {
    const files = await servedFiles(this.dir);
    const key = files.map((f) => `${f.name}\0${f.size}\0${f.mtimeMs}`).join('\n');
    if (this.cached?.key === key) return this.cached.value;
    if (this.building?.key === key) return this.building.promise;
    const promise = buildArchive(this.dir, files).finally(() => {
      if (this.building?.promise === promise) this.building = null;
    });
    this.building = { key, promise };
    const value = await promise;
    this.cached = { key, value };
    return value;
  }
}

async function buildArchive(dir: string, files: readonly ServedFile[]): Promise<RulesArchive | null> {
  const ruleFiles = files.filter((f) => f.name.endsWith('.rules'));
  if (ruleFiles.length === 0) return null;

  const hash = createHash('sha256');
  const sids: number[] = [];
  const contents = new Map<string, Buffer>();
  for (const f of files) {
    const data = await readFile(join(dir, f.name));
    contents.set(f.name, data);
    hash.update(f.name).update('\0').update(String(data.length)).update('\0').update(data);
    if (f.name.endsWith('.rules')) sids.push(...sidsInRules(data.toString('utf8')));
  }
  const version = hash.digest('hex').slice(0, 16);
  const newest = Math.max(...files.map((f) => f.mtimeMs));
  const lastModified = new Date(Math.floor(newest / 1_000) * 1_000);

  const staging = await mkdtemp(join(tmpdir(), 'etpro-collector-rules-'));
  try {
    await mkdir(join(staging, 'rules'));
    const members: string[] = [];
    for (const f of ruleFiles) {
      await copyFile(join(dir, f.name), join(staging, 'rules', f.name));
      members.push(`rules/${f.name}`);
    }
    const given = contents.get(TELEMETRY_SIDS);
    const sidsText = given !== undefined ? given.toString('utf8') : [...new Set(sids)].map((s) => `${s}\n`).join('');
    await writeFile(join(staging, 'rules', TELEMETRY_SIDS), sidsText);
    members.push(`rules/${TELEMETRY_SIDS}`);
    const telemetrySidCount = sidsText.split('\n').filter((l) => /^\s*\d+\s*$/.test(l)).length;

    const chunks: Buffer[] = [];
    const stream = tar.c({ gzip: true, cwd: staging, portable: true, mtime: lastModified }, members);
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    const archive = Buffer.concat(chunks);
    const md5 = createHash('md5').update(archive).digest('hex');
    return { version, archive, md5, etag: `"${version}-${md5.slice(0, 8)}"`, lastModified, members, telemetrySidCount };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
