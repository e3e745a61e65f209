import { gzipSync } from 'node:zlib';
import { Header, type HeaderData } from 'tar';

/** One member of a test archive. Paths are written exactly as given (hostile ones too). */
export interface ArchiveMember {
  readonly path: string;
  readonly content?: string | Buffer;
  readonly type?: HeaderData['type'];
  readonly linkpath?: string;
  /** Size written in the header when it should lie about the content (default: the content's length). */
  readonly size?: number;
}

/** Builds a tar (ustar headers via tar's own Header), gzip'd unless `gzip: false`. */
export function buildArchive(members: readonly ArchiveMember[], opts: { gzip?: boolean } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const body = m.content === undefined ? Buffer.alloc(0) : Buffer.isBuffer(m.content) ? m.content : Buffer.from(m.content);
    const type = m.type ?? 'File';
    const size = type === 'File' ? (m.size ?? body.length) : 0;
    const header = Buffer.alloc(512);
    new Header({ path: m.path, type, size, mode: type === 'Directory' ? 0o755 : 0o644, mtime: new Date(0), linkpath: m.linkpath ?? '', uid: 0, gid: 0 }).encode(header, 0);
    blocks.push(header);
    if (type === 'File' && size > 0) {
      const padded = Buffer.alloc(Math.ceil(size / 512) * 512);
      body.copy(padded, 0, 0, Math.min(body.length, size));
      blocks.push(padded);
    }
  }
  blocks.push(Buffer.alloc(1024));
  const tar = Buffer.concat(blocks);
  return opts.gzip === false ? tar : gzipSync(tar);
}

/** A rules archive in ET's layout: every member under `rules/`. */
export function rulesArchive(files: Record<string, string>): Buffer {
  return buildArchive(Object.entries(files).map(([name, content]) => ({ path: `rules/${name}`, content })));
}
