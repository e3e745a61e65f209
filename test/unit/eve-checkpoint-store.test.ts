import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointStore, type Checkpoint } from '../../src/eve/checkpoint-store.js';
import { isAgentError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';

const cp: Checkpoint = { version: 1, path: '/var/log/suricata/eve.json', dev: 2049, ino: 131_075, offset: 98_765, savedAt: '2026-12-03T16:20:22.000Z' };

test('creates the state directory and reads back what it saved', async () => {
  const stateDir = join(mkdtempSync(join(tmpdir(), 'eve-cp-')), 'nested', 'state');
  const store = new CheckpointStore(stateDir, silentLogger());
  assert.equal(await store.load(), null);
  await store.save(cp);
  assert.deepEqual(await store.load(), cp);
  await store.save({ ...cp, offset: 99_000 });
  assert.equal((await store.load())?.offset, 99_000);
  assert.deepEqual(readdirSync(stateDir), ['checkpoint.json'], 'no temp files are left behind');
  assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(stateDir, 'checkpoint.json'), 'utf8'))), ['version', 'path', 'dev', 'ino', 'offset', 'savedAt']);
});

test('moves a corrupt checkpoint aside and reports it with ERR_CHECKPOINT_INVALID naming the file', async () => {
  const bad = ['{"version":1,"path":"/x","dev":', '[]', '{"version":2,"path":"/x","dev":1,"ino":2,"offset":3,"savedAt":"t"}', '{"version":1,"path":"/x","dev":1,"ino":2,"offset":-3,"savedAt":"t"}', ''];
  for (const text of bad) {
    const stateDir = mkdtempSync(join(tmpdir(), 'eve-cp-'));
    const file = join(stateDir, 'checkpoint.json');
    writeFileSync(file, text);
    const store = new CheckpointStore(stateDir, silentLogger());
    const err = await store.load().then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isAgentError(err, 'ERR_CHECKPOINT_INVALID'), `rejected: ${JSON.stringify(text)}`);
    assert.ok(err.message.includes(file));
    const moved = readdirSync(stateDir).filter((n) => n.startsWith('checkpoint.json.corrupt-'));
    assert.equal(moved.length, 1);
    assert.equal(readFileSync(join(stateDir, moved[0]!), 'utf8'), text, 'the bad content is kept for inspection');
    assert.equal(await store.load(), null, 'then it is absent');
  }
});

test('refuses to save a checkpoint with an invalid offset', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'eve-cp-'));
  mkdirSync(stateDir, { recursive: true });
  const store = new CheckpointStore(stateDir, silentLogger());
  await assert.rejects(store.save({ ...cp, offset: Number.NaN }), (e: unknown) => isAgentError(e, 'ERR_CHECKPOINT_INVALID'));
  assert.equal(await store.load(), null);
});
