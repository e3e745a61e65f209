import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/logger.js';
import { SensorIdStore } from '../../src/heartbeat/sensor-id.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('sensor id', () => {
  it('keeps the same random UUID across two instances on the same state dir', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'sensor-id-')), 'state');
    const first = await new SensorIdStore(dir, silentLogger()).get();
    assert.match(first, UUID);
    assert.equal(readFileSync(join(dir, 'sensor_id'), 'utf8'), `${first}\n`);
    const second = await new SensorIdStore(dir, silentLogger()).get();
    assert.equal(second, first);
  });

  it('makes a new id only when the state is wiped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sensor-id-'));
    const first = await new SensorIdStore(dir, silentLogger()).get();
    rmSync(join(dir, 'sensor_id'));
    const second = await new SensorIdStore(dir, silentLogger()).get();
    assert.match(second, UUID);
    assert.notEqual(second, first);
  });

  it('gives two state dirs two different ids', async () => {
    const a = await new SensorIdStore(mkdtempSync(join(tmpdir(), 'sensor-id-')), silentLogger()).get();
    const b = await new SensorIdStore(mkdtempSync(join(tmpdir(), 'sensor-id-')), silentLogger()).get();
    assert.notEqual(a, b);
  });

  it('replaces a file that holds no UUID', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sensor-id-'));
    writeFileSync(join(dir, 'sensor_id'), 'not-a-uuid\n');
    const id = await new SensorIdStore(dir, silentLogger()).get();
    assert.match(id, UUID);
    assert.equal(readFileSync(join(dir, 'sensor_id'), 'utf8').trim(), id);
  });

  it('fails with ERR_STATE_INVALID when the state dir cannot be created', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sensor-id-')), 'a-file');
    writeFileSync(file, '');
    await assert.rejects(new SensorIdStore(join(file, 'state'), silentLogger()).get(), { code: 'ERR_STATE_INVALID' });
  });
});
