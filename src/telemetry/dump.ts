import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Config } from '../config.js';
import { AgentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { eveLineTimestamp } from '../eve/eve-timestamp.js';
import { loadLocalNetworks } from './local-networks-loader.js';
import { TelemetrySids } from './telemetry-sids.js';
import { looksLikeAlert, parseEveLine } from './eve-record.js';
import { isTelemetryAlert } from './alert-filter.js';
import { anonymize, serializeEvent } from './anonymizer.js';

export interface DumpOptions {
  readonly config: Config;
  readonly evePath: string;
  /** Only records newer than now − sinceMs; null = every record. */
  readonly sinceMs: number | null;
  readonly limit: number | null;
  /** Print the records before anonymization. */
  readonly raw: boolean;
  readonly now?: () => number;
}

export interface DumpResult {
  linesRead: number;
  alerts: number;
  filtered: number;
  malformed: number;
  printed: number;
}

/**
 * `etpro-sidecar dump`: reads eve.json and prints each alert exactly as the shipper would send it
 * (the same filter, anonymizer and serializer), or the raw record with `raw`. Reads files only.
 */
export async function dumpEvents(opts: DumpOptions, print: (line: string) => void, log: Logger): Promise<DumpResult> {
  const { config } = opts;
  const { networks, homeNetInvalid } = await loadLocalNetworks(config.privacy, log);
  if (homeNetInvalid !== null && !opts.raw) {
    // `run` holds alerts in this state; printing them masked without HOME_NET would show
    // something that is never sent.
    throw new AgentError('ERR_HOME_NET_INVALID', `Nothing to show: the agent holds alerts while HOME_NET is unusable (${homeNetInvalid}).`);
  }
  const sids = new TelemetrySids(config.rules.dir, log);
  await sids.refresh();
  const notBefore = opts.sinceMs === null ? null : (opts.now ?? Date.now)() - opts.sinceMs;
  const result: DumpResult = { linesRead: 0, alerts: 0, filtered: 0, malformed: 0, printed: 0 };
  const input = createReadStream(opts.evePath, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  await opened.catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${opts.evePath} (${err.code ?? err.message})`);
  });
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    if (opts.limit !== null && result.printed >= opts.limit) break;
    result.linesRead++;
    if (!looksLikeAlert(line)) continue;
    if (Buffer.byteLength(line) > config.eve.maxLineBytes) {
      result.malformed++; // `run` skips it as too long
      continue;
    }
    if (notBefore !== null) {
      const ts = eveLineTimestamp(line);
      if (ts !== null && ts < notBefore) continue;
    }
    const parsed = parseEveLine(line);
    if (!parsed.ok) {
      result.malformed++;
      continue;
    }
    result.alerts++;
    if (!isTelemetryAlert(parsed.record, sids.current())) {
      result.filtered++;
      continue;
    }
    print(opts.raw ? line : serializeEvent(anonymize(parsed.record, networks)));
    result.printed++;
  }
  lines.close();
  input.destroy();
  return result;
}
