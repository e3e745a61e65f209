import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { AgentError, errorCode } from '../errors.js';

/**
 * The rules volume and the last-known-good copy in the state dir. Every file is written aside
 * (temp file in the same directory, fsync) and renamed into place, so Suricata never reads a
 * half-written file; `telemetry_version.json` goes last, so it always describes a complete set.
 */

export const RULES_FILE = 'suricata.rules';
export const SIDS_FILE = 'telemetry_sids.txt';
export const VERSION_FILE = 'telemetry_version.json';
export const CLASSIFICATION_FILE = 'classification.config';
/** Every file this agent manages in the rules dir, in write order. */
export const MANAGED_FILES = [CLASSIFICATION_FILE, SIDS_FILE, RULES_FILE, VERSION_FILE] as const;
export type ManagedFile = (typeof MANAGED_FILES)[number];

const LKG_DIR = 'rules-last-known-good';
const HTTP_CACHE = 'rules-http-cache.json';

/** What `telemetry_version.json` says about the installed set. */
export interface InstalledVersion {
  readonly version: string;
  readonly source: 'etpro' | 'etopen';
  /** MD5 of the archive the set came from. */
  readonly md5: string;
  /** Fingerprint of the selection settings (categories, lists) the set was built with. */
  readonly selection: string;
  readonly installedAt: string;
  readonly ruleCount: number;
  readonly telemetrySidCount: number;
}

export type RuleSetFiles = Partial<Record<ManagedFile, string | Buffer>>;

/** Writes `content` to a temp file beside `name` and syncs it; on any failure the temp file is removed. */
async function writeTemp(dir: string, name: string, content: string | Buffer): Promise<string> {
  const tmp = join(dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fh = await fs.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  } catch (err) {
    await fs.rm(tmp, { force: true }); // e.g. ENOSPC half way: leave nothing behind
    throw err;
  }
}

export async function writeFileAtomic(dir: string, name: string, content: string | Buffer): Promise<void> {
  const tmp = await writeTemp(dir, name, content);
  try {
    await fs.rename(tmp, join(dir, name));
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some volumes cannot fsync a directory; the renames are still atomic.
  }
}

async function readOrNull(path: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null;
    throw err;
  }
}

export class RulesStore {
  constructor(
    readonly rulesDir: string,
    readonly stateDir: string,
  ) {}

  async readInstalled(): Promise<InstalledVersion | null> {
    const buf = await readOrNull(join(this.rulesDir, VERSION_FILE));
    if (buf === null) return null;
    try {
      const v = JSON.parse(buf.toString('utf8')) as Partial<InstalledVersion>;
      if (typeof v.version !== 'string' && typeof v.version !== 'number') return null;
      return {
        version: String(v.version),
        source: v.source === 'etopen' ? 'etopen' : 'etpro',
        md5: typeof v.md5 === 'string' ? v.md5 : '',
        selection: typeof v.selection === 'string' ? v.selection : '',
        installedAt: typeof v.installedAt === 'string' ? v.installedAt : '',
        ruleCount: typeof v.ruleCount === 'number' ? v.ruleCount : 0,
        telemetrySidCount: typeof v.telemetrySidCount === 'number' ? v.telemetrySidCount : 0,
      };
    } catch {
      return null;
    }
  }

  /** Copies the live set (whatever is there now) to the last-known-good dir, replacing the previous copy. */
  async snapshotLastKnownGood(): Promise<string[]> {
    await fs.mkdir(this.stateDir, { recursive: true });
    const tmp = join(this.stateDir, `.${LKG_DIR}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    await fs.mkdir(tmp);
    const present: string[] = [];
    for (const name of MANAGED_FILES) {
      const buf = await readOrNull(join(this.rulesDir, name));
      if (buf === null) continue;
      await writeFileAtomic(tmp, name, buf);
      present.push(name);
    }
    await writeFileAtomic(tmp, 'manifest.json', JSON.stringify({ files: present, savedAt: new Date().toISOString() }));
    const dest = join(this.stateDir, LKG_DIR);
    const old = `${dest}.old-${process.pid}`;
    await fs.rm(old, { recursive: true, force: true });
    try {
      await fs.rename(dest, old);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
    await fs.rename(tmp, dest);
    await fs.rm(old, { recursive: true, force: true });
    await syncDir(this.stateDir);
    return present;
  }

  /**
   * Writes a set into the rules dir; managed files the set lacks are removed after the rest is in
   * place (a missing classification.config is left alone unless `exact`).
   */
  async install(files: RuleSetFiles, exact = false): Promise<void> {
    await fs.mkdir(this.rulesDir, { recursive: true });
    // Every file is written aside first: a failure there (a full volume) changes nothing in the
    // rules dir. Only then are they renamed in, which cannot run out of space.
    const staged: [tmp: string, name: ManagedFile][] = [];
    try {
      for (const name of MANAGED_FILES) {
        const content = files[name];
        if (content !== undefined) staged.push([await writeTemp(this.rulesDir, name, content), name]);
      }
    } catch (err) {
      await Promise.all(staged.map(([tmp]) => fs.rm(tmp, { force: true })));
      throw err;
    }
    for (const [tmp, name] of staged) await fs.rename(tmp, join(this.rulesDir, name));
    for (const name of MANAGED_FILES) {
      if (files[name] === undefined && (exact || name !== CLASSIFICATION_FILE)) await fs.rm(join(this.rulesDir, name), { force: true });
    }
    await syncDir(this.rulesDir);
  }

  /** The files of the last-known-good copy, or null when there is no copy. */
  private async lastKnownGoodFiles(): Promise<string[] | null> {
    const manifest = await readOrNull(join(this.stateDir, LKG_DIR, 'manifest.json'));
    if (manifest === null) return null;
    try {
      const files = (JSON.parse(manifest.toString('utf8')) as { files?: unknown }).files;
      return Array.isArray(files) ? files.filter((f): f is string => typeof f === 'string') : null;
    } catch {
      return null;
    }
  }

  /**
   * True when a last-known-good set exists: a copy holding `suricata.rules`. The copy taken before
   * the first install of an empty rules dir holds nothing and does not count.
   */
  async hasLastKnownGood(): Promise<boolean> {
    return (await this.lastKnownGoodFiles())?.includes(RULES_FILE) === true;
  }

  /**
   * Puts the last-known-good set back. Throws ERR_RULES_ARCHIVE (reason `no-last-known-good`) and
   * touches nothing when there is no copy or the copy has no `suricata.rules`: restoring it would
   * empty the rules dir.
   */
  async restoreLastKnownGood(): Promise<string[]> {
    const dir = join(this.stateDir, LKG_DIR);
    const present = await this.lastKnownGoodFiles();
    if (present === null || !present.includes(RULES_FILE)) {
      throw new AgentError('ERR_RULES_ARCHIVE', `No last-known-good rules in ${dir} to roll back to.`, { reason: 'no-last-known-good' });
    }
    const files: RuleSetFiles = {};
    for (const name of MANAGED_FILES) {
      if (present.includes(name)) files[name] = await fs.readFile(join(dir, name));
    }
    await this.install(files, true);
    return present;
  }

  async readHttpValidators(url: string): Promise<{ etag: string | null; lastModified: string | null } | null> {
    const buf = await readOrNull(join(this.stateDir, HTTP_CACHE));
    if (buf === null) return null;
    try {
      const all = JSON.parse(buf.toString('utf8')) as Record<string, { etag: string | null; lastModified: string | null }>;
      return all[url] ?? null;
    } catch {
      return null;
    }
  }

  async saveHttpValidators(url: string, v: { etag: string | null; lastModified: string | null }): Promise<void> {
    await fs.mkdir(this.stateDir, { recursive: true });
    const buf = await readOrNull(join(this.stateDir, HTTP_CACHE));
    let all: Record<string, unknown> = {};
    try {
      if (buf) all = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
    } catch {
      all = {};
    }
    all[url] = v;
    await writeFileAtomic(this.stateDir, HTTP_CACHE, JSON.stringify(all));
  }
}
