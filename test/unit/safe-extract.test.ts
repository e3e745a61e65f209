import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentError } from '../../src/errors.js';
import { checkMemberPath, extractArchive, md5Hex, parseMd5File, verifyMd5 } from '../../src/rules/safe-extract.js';
import { buildArchive, type ArchiveMember } from '../helpers/rules-archive.js';

const LIMIT = { maxUnpackedBytes: 64 * 1024 };
const GOOD: ArchiveMember = { path: 'rules/emerging-test.rules', content: 'alert tcp any any -> any any (msg:"x"; sid:1; rev:1;)\n' };

async function refusedWith(archive: Buffer, reason: string, messagePart: RegExp, limits = LIMIT): Promise<void> {
  await assert.rejects(extractArchive(archive, limits), (err: unknown) => {
    assert.ok(isAgentError(err, 'ERR_RULES_ARCHIVE'), `expected ERR_RULES_ARCHIVE, got ${String(err)}`);
    assert.equal(err.details['reason'], reason);
    assert.match(err.message, messagePart);
    return true;
  });
}

describe('extractArchive', () => {
  it('reads regular files and directories of a gzip tar into memory with normalized paths', async () => {
    const files = await extractArchive(buildArchive([{ path: 'rules/', type: 'Directory' }, GOOD, { path: './rules/telemetry_sids.txt', content: '1\n' }]), LIMIT);
    assert.deepEqual([...files.keys()].sort(), ['rules/emerging-test.rules', 'rules/telemetry_sids.txt']);
    assert.equal(files.get('rules/telemetry_sids.txt')?.toString(), '1\n');
  });

  it('refuses a member that climbs out with ../', async () => {
    await refusedWith(buildArchive([GOOD, { path: 'rules/../../x.rules', content: 'x' }]), 'parent-dir', /"rules\/\.\.\/\.\.\/x\.rules" climbs out/);
  });

  it('refuses a member with an absolute path', async () => {
    await refusedWith(buildArchive([{ path: '/etc/cron.d/evil', content: 'x' }]), 'absolute-path', /"\/etc\/cron\.d\/evil" has an absolute path/);
  });

  it('refuses symbolic and hard links', async () => {
    await refusedWith(buildArchive([{ path: 'rules/link.rules', type: 'SymbolicLink', linkpath: '/etc/passwd' }]), 'link', /symbolic link \(to "\/etc\/passwd"\)/);
    await refusedWith(buildArchive([GOOD, { path: 'rules/hard.rules', type: 'Link', linkpath: 'rules/emerging-test.rules' }]), 'link', /hard link/);
  });

  it('refuses device and FIFO members', async () => {
    await refusedWith(buildArchive([{ path: 'rules/dev', type: 'CharacterDevice' }]), 'device', /"rules\/dev" is a CharacterDevice/);
    await refusedWith(buildArchive([{ path: 'rules/fifo', type: 'FIFO' }]), 'device', /FIFO/);
  });

  it('refuses an oversized member and an archive whose total unpacked size exceeds the cap', async () => {
    await refusedWith(buildArchive([{ path: 'rules/big.rules', content: 'x'.repeat(70 * 1024) }]), 'too-large', /more than 65536 bytes \(member "rules\/big\.rules"/);
    const many = Array.from({ length: 5 }, (_, i) => ({ path: `rules/p${i}.rules`, content: 'y'.repeat(20 * 1024) }));
    await refusedWith(buildArchive(many), 'too-large', /member "rules\/p3\.rules"/);
  });

  it('refuses a corrupt gzip, a truncated archive and bytes that are not an archive', async () => {
    const good = buildArchive([GOOD]);
    const flipped = Buffer.from(good);
    flipped[20] = flipped[20]! ^ 0xff;
    await refusedWith(flipped, 'corrupt', /not a valid gzip'd tar/);
    await refusedWith(good.subarray(0, good.length - 20), 'corrupt', /not a valid gzip'd tar/);
    await refusedWith(Buffer.from('<html>not found</html>'), 'corrupt', /not a valid gzip'd tar/);
  });

  it('refuses an archive with no files', async () => {
    await refusedWith(buildArchive([{ path: 'rules/', type: 'Directory' }]), 'empty', /holds no files/);
  });

  it('checks member paths without touching the disk', () => {
    assert.equal(checkMemberPath('./rules//a.rules'), 'rules/a.rules');
    assert.throws(() => checkMemberPath('C:\\x'), /absolute path/);
  });
});

describe('md5 verification', () => {
  it('parses both "hash" and "hash  filename" forms with surrounding white space', () => {
    const h = '3ed507977921535c79d7d322803cdd34';
    assert.equal(parseMd5File(`${h}\n`), h);
    assert.equal(parseMd5File(`  ${h.toUpperCase()}  emerging.rules.tar.gz\n`), h);
    assert.equal(parseMd5File('<html>'), null);
  });

  it('refuses an archive whose md5 differs from the published one, naming both', () => {
    const archive = buildArchive([GOOD]);
    verifyMd5(archive, md5Hex(archive), 'test');
    verifyMd5(archive, null, 'test');
    assert.throws(
      () => verifyMd5(archive, '0'.repeat(32), 'ET Open archive'),
      (err: unknown) => isAgentError(err, 'ERR_RULES_CHECKSUM') && err.message.includes(md5Hex(archive)) && err.message.includes('0'.repeat(32)),
    );
  });
});
