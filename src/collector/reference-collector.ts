import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { RateLimitedLog, type Logger } from '../logger.js';
import { NdjsonAppender } from './ndjson-appender.js';
import { RulesArchiveCache, type RulesArchive } from './rules-archive.js';
import type { SensorStatus } from './tokens-file.js';

export type { SensorStatus } from './tokens-file.js';
export { readTokensFile, parseTokens } from './tokens-file.js';

/**
 * A reference implementation of the ET Pro telemetry API (design.md §2), for the demo, the tests
 * and users who want to see what their sensor would send:
 *
 * - `POST /api/v1/event`, `POST /api/v1/telemetry`: bearer token checked (401), body must be one JSON
 *   object (400), kept in memory and appended to `<dataDir>/events.ndjson` / `heartbeats.ndjson`; 201.
 * - `GET /api/v1/sensorinfo`: the token's status and the times of its last event, heartbeat and rule download.
 * - `GET /api/v1/ruleset/version`, `GET /api/v1/ruleset/engine/suricata/:n` (also `GET /api/v1/ruleset`):
 *   the rules directory as `{"version"}` and as a gzip'd tar (`rules/*.rules`, `rules/telemetry_sids.txt`),
 *   with ETag / Last-Modified and conditional requests.
 * - `GET /open/suricata-:version/emerging.rules.tar.gz` and `.md5`: the same archive without a token, posing as ET Open.
 *
 * Status of a token: set explicitly (tokens file, {@link ReferenceCollector.setStatus}), or else derived as
 * ET does: ACTIVE while events or heartbeats arrive (and for `dormantAfterMs` after the token is first
 * seen), DORMANT when nothing arrived for `dormantAfterMs` (7 days). A DISABLED token may ask
 * sensorinfo, but events, heartbeats and ET Pro rule downloads answer 403.
 *
 * Stored NDJSON is written in batches after the answer (this is a reference, not a durable store).
 */
export interface ReferenceCollectorOptions {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string | null;
  readonly rulesDir: string | null;
  /** Known tokens and their status; null = accept any non-empty bearer token (status derived). */
  readonly tokens: ReadonlyMap<string, SensorStatus> | null;
  /** Without events or heartbeats for this long a token turns DORMANT. Default 7 days. */
  readonly dormantAfterMs?: number;
  /** Records kept in memory for events()/heartbeats()/requests(); older ones are dropped. Default 100,000. */
  readonly maxInMemory?: number;
  /** Largest accepted POST body; larger ones answer 413. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  readonly now?: () => number;
  /** Told about every stored event and when it arrived (epoch ms): for benchmarks and tests. */
  readonly onEvent?: (event: Record<string, unknown>, receivedAt: number) => void;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** True when the request carried a token the collector accepted. */
  readonly auth: boolean;
}

export interface CollectorCounts {
  readonly events: number;
  readonly heartbeats: number;
  readonly rejected: number;
  readonly requests: number;
}

interface TokenState {
  firstSeen: number;
  lastEvent: number | null;
  lastHeartbeat: number | null;
  lastRuleDownload: number | null;
  sensorId: string | null;
  events: number;
}

interface Fault {
  remaining: number;
  readonly status: number;
  readonly retryAfterS?: number;
  readonly path?: string;
}

type Auth = { ok: true; token: string; state: TokenState; status: SensorStatus } | { ok: false };

const DAY_MS = 86_400_000;
const MAX_TOKEN_STATES = 10_000;
const RULESET_ENGINE_PATH = /^\/api\/v1\/ruleset\/engine\/suricata\/\d+$/;
const ET_OPEN_PATH = /^\/open\/suricata-[0-9A-Za-z._-]+\/emerging\.rules\.tar\.gz(\.md5)?$/;

/** Keeps the newest `max` items; trims in bulk so pushes stay O(1) amortized. */
class BoundedList<T> {
  private items: T[] = [];
  constructor(private readonly max: number) {}
  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.max * 2) this.items = this.items.slice(-this.max);
  }
  list(): T[] {
    return this.items.slice(-this.max);
  }
}

export class ReferenceCollector {
  private readonly server: Server;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly dormantAfterMs: number;
  private readonly maxBodyBytes: number;
  private readonly storedEvents: BoundedList<unknown>;
  private readonly storedHeartbeats: BoundedList<unknown>;
  private readonly recorded: BoundedList<RecordedRequest>;
  private readonly tokenStates = new Map<string, TokenState>();
  private readonly statuses = new Map<string, SensorStatus>();
  private readonly faults: Fault[] = [];
  private readonly rejections: { predicate: (event: any) => boolean; status: number }[] = [];
  private readonly rules: RulesArchiveCache | null;
  private readonly authFailures: RateLimitedLog;
  private eventsAppender: NdjsonAppender | null = null;
  private heartbeatsAppender: NdjsonAppender | null = null;
  private counts = { events: 0, heartbeats: 0, rejected: 0, requests: 0 };
  private boundPort: number | null = null;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly opts: ReferenceCollectorOptions,
    log: Logger,
  ) {
    this.log = log;
    this.now = opts.now ?? Date.now;
    this.dormantAfterMs = opts.dormantAfterMs ?? 7 * DAY_MS;
    this.maxBodyBytes = opts.maxBodyBytes ?? 1_048_576;
    const keep = opts.maxInMemory ?? 100_000;
    this.storedEvents = new BoundedList(keep);
    this.storedHeartbeats = new BoundedList(keep);
    this.recorded = new BoundedList(keep);
    for (const [token, status] of opts.tokens ?? []) this.statuses.set(token, status);
    this.rules = opts.rulesDir === null ? null : new RulesArchiveCache(opts.rulesDir);
    this.authFailures = new RateLimitedLog(log, 'warn', 10_000, this.now);
    this.server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => this.handle(req, res));
  }

  /** Listens on host:port (0 = any free port) and resolves with the bound port. */
  async start(): Promise<number> {
    if (this.boundPort !== null) return this.boundPort;
    if (this.opts.dataDir !== null) {
      mkdirSync(this.opts.dataDir, { recursive: true });
      const onError = (file: string) => (err: Error) => this.log.error('Reference collector cannot write its data file; records stay in memory only.', { file, error: errorMessage(err) });
      const events = join(this.opts.dataDir, 'events.ndjson');
      const heartbeats = join(this.opts.dataDir, 'heartbeats.ndjson');
      this.eventsAppender = new NdjsonAppender(events, onError(events));
      this.heartbeatsAppender = new NdjsonAppender(heartbeats, onError(heartbeats));
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
    this.log.info('Reference collector listening.', { url: this.url, dataDir: this.opts.dataDir, rulesDir: this.opts.rulesDir, tokens: this.opts.tokens === null ? 'any' : this.opts.tokens.size });
    return this.boundPort;
  }

  /** Closes the server (and its keep-alive connections) and flushes the NDJSON files. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.server.listening) {
        const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
        this.server.closeAllConnections();
        await closed;
      }
      // A write error was logged when it happened; closing must still finish.
      await this.eventsAppender?.close().catch(() => undefined);
      await this.heartbeatsAppender?.close().catch(() => undefined);
      this.log.info('Reference collector stopped.', { ...this.counts });
    })();
    return this.stopping;
  }

  get url(): string {
    if (this.boundPort === null) throw new Error('ReferenceCollector.url is known only after start()');
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host}:${this.boundPort}`;
  }

  events(): unknown[] {
    return this.storedEvents.list();
  }

  heartbeats(): unknown[] {
    return this.storedHeartbeats.list();
  }

  requests(): RecordedRequest[] {
    return this.recorded.list();
  }

  stats(): CollectorCounts {
    return { ...this.counts };
  }

  /**
   * The next `count` requests (to `opts.path` only, when given) answer `status` before anything else is
   * checked, with a Retry-After header when `retryAfterS` is given. Calls queue up in order.
   */
  failNext(count: number, status: number, opts: { retryAfterS?: number; path?: string } = {}): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`failNext count must be a positive whole number, got ${count}`);
    if (!Number.isInteger(status) || status < 100 || status > 599) throw new RangeError(`failNext status must be an HTTP status, got ${status}`);
    this.faults.push({ remaining: count, status, ...opts });
  }

  /** Events for which `predicate` is true answer `status` and are not stored. */
  rejectWhen(predicate: (event: any) => boolean, status: number): void {
    this.rejections.push({ predicate, status });
  }

  /** Sets a token's status; an unknown token becomes known (so a test can "fix" a token). */
  setStatus(token: string, status: SensorStatus): void {
    this.statuses.set(token, status);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const method = req.method ?? 'GET';
    let auth = false;
    this.counts.requests++;
    res.on('finish', () => this.recorded.push({ method, path, status: res.statusCode, auth }));
    const authenticate = (): Auth => {
      const a = this.authenticate(req);
      auth = a.ok;
      return a;
    };
    this.route(req, res, method, path, authenticate).catch((err: unknown) => {
      this.log.error('Reference collector failed to answer.', { path, error: errorMessage(err) });
      if (!res.headersSent) this.json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, method: string, path: string, authenticate: () => Auth): Promise<void> {
    const fault = this.takeFault(path);
    if (fault !== null) {
      req.resume();
      const headers: Record<string, string> = fault.retryAfterS === undefined ? {} : { 'retry-after': String(fault.retryAfterS) };
      return this.json(res, fault.status, { error: `injected failure ${fault.status}` }, headers);
    }

    const get = method === 'GET' || method === 'HEAD';
    if (path === '/api/v1/event' || path === '/api/v1/telemetry') {
      if (method !== 'POST') return this.notAllowed(req, res, 'POST');
      return this.receive(req, res, path === '/api/v1/event' ? 'event' : 'heartbeat', authenticate());
    }
    if (path === '/api/v1/sensorinfo') {
      if (!get) return this.notAllowed(req, res, 'GET');
      const a = authenticate();
      if (!a.ok) return this.unauthorized(req, res, path);
      return this.json(res, 200, this.sensorInfo(a));
    }
    if (path === '/api/v1/ruleset/version') {
      if (!get) return this.notAllowed(req, res, 'GET');
      const a = authenticate();
      if (!a.ok) return this.unauthorized(req, res, path);
      const rules = await this.currentRules();
      if (rules === null) return this.json(res, 404, { error: 'no ruleset available' });
      return this.json(res, 200, { version: rules.version });
    }
    if (path === '/api/v1/ruleset' || RULESET_ENGINE_PATH.test(path)) {
      if (!get) return this.notAllowed(req, res, 'GET');
      const a = authenticate();
      if (!a.ok) return this.unauthorized(req, res, path);
      if (a.status === 'DISABLED') return this.json(res, 403, { error: 'sensor disabled' });
      const rules = await this.currentRules();
      if (rules === null) return this.json(res, 404, { error: 'no ruleset available' });
      a.state.lastRuleDownload = this.now();
      return this.sendArchive(req, res, rules);
    }
    const open = ET_OPEN_PATH.exec(path);
    if (open !== null) {
      if (!get) return this.notAllowed(req, res, 'GET');
      const rules = await this.currentRules();
      if (rules === null) return this.json(res, 404, { error: 'no ruleset available' });
      if (open[1] !== undefined) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': rules.md5.length + 1 });
        res.end(`${rules.md5}\n`);
        return;
      }
      return this.sendArchive(req, res, rules);
    }
    req.resume();
    this.json(res, 404, { error: 'not found' });
  }

  private takeFault(path: string): Fault | null {
    const i = this.faults.findIndex((f) => f.path === undefined || f.path === path);
    if (i < 0) return null;
    const f = this.faults[i]!;
    if (--f.remaining <= 0) this.faults.splice(i, 1);
    return f;
  }

  private authenticate(req: IncomingMessage): Auth {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (m === null) return { ok: false };
    const token = m[1]!;
    const explicit = this.statuses.get(token);
    if (explicit === undefined && this.opts.tokens !== null) return { ok: false };
    const state = this.tokenState(token);
    return { ok: true, token, state, status: explicit ?? this.derivedStatus(state) };
  }

  private tokenState(token: string): TokenState {
    let state = this.tokenStates.get(token);
    if (state === undefined) {
      if (this.tokenStates.size >= MAX_TOKEN_STATES) this.tokenStates.delete(this.tokenStates.keys().next().value!);
      state = { firstSeen: this.now(), lastEvent: null, lastHeartbeat: null, lastRuleDownload: null, sensorId: null, events: 0 };
      this.tokenStates.set(token, state);
    }
    return state;
  }

  private derivedStatus(s: TokenState): SensorStatus {
    const lastSign = Math.max(s.firstSeen, s.lastEvent ?? 0, s.lastHeartbeat ?? 0);
    return this.now() - lastSign > this.dormantAfterMs ? 'DORMANT' : 'ACTIVE';
  }

  private sensorInfo(a: Extract<Auth, { ok: true }>): Record<string, unknown> {
    const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
    // The plugin's dashboard widget reads `sensor_status` and `event_received`; the longer names
    // are kept beside them for clients that use those.
    return {
      sensor_status: a.status,
      status: a.status,
      sensor_id: a.state.sensorId,
      event_received: iso(a.state.lastEvent),
      last_event_received: iso(a.state.lastEvent),
      last_rule_download: iso(a.state.lastRuleDownload),
      last_heartbeat: iso(a.state.lastHeartbeat),
      events_received: a.state.events,
    };
  }

  private async receive(req: IncomingMessage, res: ServerResponse, kind: 'event' | 'heartbeat', a: Auth): Promise<void> {
    if (!a.ok) return this.unauthorized(req, res, req.url ?? '');
    if (a.status === 'DISABLED') {
      req.resume();
      return this.json(res, 403, { error: 'sensor disabled' });
    }
    const body = await this.readBody(req, res);
    if (body === null) return;
    let record: unknown;
    try {
      record = JSON.parse(body);
    } catch {
      return this.json(res, 400, { error: 'body is not JSON' });
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) return this.json(res, 400, { error: 'body must be a JSON object' });

    const now = this.now();
    if (kind === 'event') {
      const rejection = this.rejections.find((r) => r.predicate(record));
      if (rejection !== undefined) {
        this.counts.rejected++;
        return this.json(res, rejection.status, { error: 'event rejected' });
      }
      this.storedEvents.push(record);
      this.eventsAppender?.append(body.includes('\n') ? JSON.stringify(record) : body);
      this.counts.events++;
      this.opts.onEvent?.(record as Record<string, unknown>, now);
      a.state.lastEvent = now;
      a.state.events++;
    } else {
      this.storedHeartbeats.push(record);
      this.heartbeatsAppender?.append(body.includes('\n') ? JSON.stringify(record) : body);
      this.counts.heartbeats++;
      a.state.lastHeartbeat = now;
      const sensorId = (record as Record<string, unknown>)['sensor_id'];
      if (typeof sensorId === 'string') a.state.sensorId = sensorId;
    }
    this.json(res, 201, { status: 'created' });
  }

  /** The request body as text, or null after answering 413 when it is larger than allowed. */
  private readBody(req: IncomingMessage, res: ServerResponse): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      req.on('data', (chunk: Buffer) => {
        if (done) return;
        size += chunk.length;
        if (size > this.maxBodyBytes) {
          done = true;
          this.json(res, 413, { error: `body larger than ${this.maxBodyBytes} bytes` }, { connection: 'close' });
          resolve(null);
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (done) return;
        done = true;
        resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
      });
      req.on('error', (err) => {
        if (!done) reject(err);
      });
    });
  }

  private async currentRules(): Promise<RulesArchive | null> {
    return this.rules === null ? null : this.rules.get();
  }

  private sendArchive(req: IncomingMessage, res: ServerResponse, rules: RulesArchive): void {
    const headers = {
      etag: rules.etag,
      'last-modified': rules.lastModified.toUTCString(),
      'cache-control': 'no-cache',
    };
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    const notModified =
      inm !== undefined ? inm.split(',').some((t) => t.trim() === rules.etag || t.trim() === '*') : ims !== undefined && Date.parse(ims) >= rules.lastModified.getTime();
    if (notModified) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': 'application/gzip', 'content-length': rules.archive.length });
    res.end(rules.archive);
  }

  private unauthorized(req: IncomingMessage, res: ServerResponse, path: string): void {
    req.resume();
    this.authFailures.write('Reference collector refused a request without a valid token.', { path, httpCode: 401 });
    this.json(res, 401, { error: 'invalid or missing token' }, { 'www-authenticate': 'Bearer' });
  }

  private notAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
    req.resume();
    this.json(res, 405, { error: 'method not allowed' }, { allow });
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }
}
