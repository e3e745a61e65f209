import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError, errorCode } from '../errors.js';
import type { Logger } from '../logger.js';

export const SENSOR_ID_FILE = 'sensor_id';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The sensor's identity: a random UUID made once and kept in `<stateDir>/sensor_id`, so it
 * survives restarts and changes only when the state is wiped. Written atomically
 * (temp file, fsync, rename). A file that holds no UUID is replaced, with a warning naming it.
 */
export class SensorIdStore {
  private cached: string | null = null;

  constructor(
    private readonly stateDir: string,
    private readonly log: Logger,
  ) {}

  get path(): string {
    return join(this.stateDir, SENSOR_ID_FILE);
  }

  async get(): Promise<string> {
    if (this.cached !== null) return this.cached;
    let existing: string | null = null;
    try {
      existing = (await readFile(this.path, 'utf8')).trim();
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') {
        throw new AgentError('ERR_STATE_INVALID', `Sensor id file ${this.path} cannot be read (${errorCode(err) ?? 'error'}).`, { file: this.path }, { cause: err });
      }
    }
    if (existing !== null && UUID.test(existing)) {
      this.cached = existing.toLowerCase();
      return this.cached;
    }
    if (existing !== null) this.log.warn('Sensor id file holds no UUID; a new sensor id is made.', { file: this.path });
    const id = randomUUID();
    await this.write(id);
    this.log.info('New sensor id created.', { sensorId: id, file: this.path });
    this.cached = id;
    return id;
  }

  private async write(id: string): Promise<void> {
    try {
      await mkdir(this.stateDir, { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      const fh = await open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(`${id}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      throw new AgentError('ERR_STATE_INVALID', `Sensor id cannot be saved in ${this.stateDir} (${errorCode(err) ?? 'error'}).`, { dir: this.stateDir }, { cause: err });
    }
  }
}
