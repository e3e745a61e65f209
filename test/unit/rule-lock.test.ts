import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAgentError } from '../../src/errors.js';
import { RulesLock } from '../../src/rules/rules-lock.js';

const stateDir = (): string => mkdtempSync(join(tmpdir(), 'rules-lock-'));

describe('RulesLock', () => {
  it('runs updates of one process one after the other, never overlapping', async () => {
    const lock = new RulesLock(stateDir());
    const events: string[] = [];
    const job = (name: string) => async () => {
      events.push(`${name}:start`);
      assert.ok(existsSync(lock.path), 'lock file present while running');
      await new Promise((r) => setTimeout(r, 20));
      events.push(`${name}:end`);
      return name;
    };
    const results = await Promise.all([lock.run(job('a')), lock.run(job('b')), lock.run(job('c'))]);
    assert.deepEqual(results, ['a', 'b', 'c']);
    assert.deepEqual(events, ['a:start', 'a:end', 'b:start', 'b:end', 'c:start', 'c:end']);
    assert.ok(!existsSync(lock.path), 'lock file removed afterwards');
  });

  it('refuses to run while another live process holds the lock file', async () => {
    const dir = stateDir();
    const lock = new RulesLock(dir);
    writeFileSync(lock.path, JSON.stringify({ pid: process.ppid }));
    let ran = false;
    await assert.rejects(
      lock.run(async () => {
        ran = true;
      }),
      (err: unknown) => isAgentError(err, 'ERR_RULES_LOCKED') && err.message.includes(String(process.ppid)),
    );
    assert.equal(ran, false);
    assert.equal(JSON.parse(readFileSync(lock.path, 'utf8')).pid, process.ppid, 'the other process keeps its lock');
  });

  it('takes over a stale lock file whose process is gone', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const lock = new RulesLock(stateDir());
    writeFileSync(lock.path, JSON.stringify({ pid: dead }));
    assert.equal(await lock.run(async () => 'ran'), 'ran');
  });

  it('takes over a lock file left with its own PID by an earlier run (PID 1 after a container restart)', async () => {
    const lock = new RulesLock(stateDir());
    writeFileSync(lock.path, JSON.stringify({ pid: process.pid }));
    assert.equal(await lock.run(async () => 'ran'), 'ran');
  });

  it('releases the lock when the update throws', async () => {
    const lock = new RulesLock(stateDir());
    await assert.rejects(lock.run(async () => Promise.reject(new Error('boom'))), /boom/);
    assert.ok(!existsSync(lock.path));
    assert.equal(await lock.run(async () => 'next'), 'next');
  });
});
