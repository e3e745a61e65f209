import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it, type TestContext } from 'node:test';
import { ReferenceCollector } from '../../src/collector/reference-collector.js';
import { isAgentError } from '../../src/errors.js';
import { createLogger, silentLogger, type Logger } from '../../src/logger.js';
import { EventShipper, type Outcome, type ShipperClock, type ShipperOptions, type TimerHandle } from '../../src/telemetry/event-shipper.js';
import { createTelemetryClient, type SendResult, type TelemetryClient } from '../../src/telemetry/telemetry-client.js';
import { commandWorks, requireOrSkip } from '../helpers/requirements.js';

// ---------- helpers ----------

/** A clock that moves only when the test says so. */
class ManualClock implements ShipperClock {
  private t = 1_000_000;
  private seq = 0;
  private timers: { id: number; at: number; fn: () => void }[] = [];
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.push({ id, at: this.t + ms, fn });
    return { id } as TimerHandle;
  }
  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((x) => x.id !== (handle as { id: number }).id);
  }
  /** Delays (from now) of the timers still pending. */
  pending(): number[] {
    return this.timers.map((x) => x.at - this.t);
  }
  advance(ms: number): void {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) return;
      this.timers = this.timers.filter((x) => x !== due);
      due.fn();
    }
  }
}

/** Wraps a real client to observe how many requests run at once. */
function observed(client: TelemetryClient): TelemetryClient & { peak: number; calls: number } {
  let current = 0;
  const o = {
    peak: 0,
    calls: 0,
    async postEvent(body: string): Promise<SendResult> {
      current++;
      o.calls++;
      o.peak = Math.max(o.peak, current);
      try {
        return await client.postEvent(body);
      } finally {
        current--;
      }
    },
    postTelemetry: (body: string) => client.postTelemetry(body),
    close: () => client.close(),
  };
  return o;
}

/** A logger whose JSON lines the test can read. */
function capturingLogger(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return { log: createLogger('debug', 'json', stream), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Submits ids 1..n, respecting hasCapacity()/onCapacity() like the follower does. */
function feed(shipper: EventShipper, n: number, body: (id: number) => string): Promise<void> {
  let next = 1;
  return new Promise((resolve) => {
    const fill = (): void => {
      while (next <= n && shipper.hasCapacity()) {
        shipper.submit(next, body(next));
        next++;
      }
      if (next > n) resolve();
    };
    shipper.onCapacity(fill);
    fill();
  });
}

const eventBody = (id: number): string => JSON.stringify({ timestamp: '2026-05-01T12:00:00.000000+0000', event_type: 'alert', n: id, alert: { signature_id: 2099001 } });

const baseOpts: ShipperOptions = { maxInFlight: 8, maxQueued: 16, retryBaseMs: 5, retryMaxMs: 40, authRetryMs: 50 };

interface Rig {
  collector: ReferenceCollector;
  client: TelemetryClient & { peak: number; calls: number };
  shipper: EventShipper;
  outcomes: Map<number, Outcome[]>;
  done: () => number;
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function rig(opts: {
  shipper?: Partial<ShipperOptions>;
  tokens?: ReadonlyMap<string, 'ACTIVE' | 'DORMANT' | 'DISABLED'> | null;
  token?: string;
  clock?: ShipperClock;
  log?: Logger;
}): Promise<Rig> {
  const collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens: opts.tokens ?? null }, silentLogger());
  await collector.start();
  const client = observed(createTelemetryClient({ baseUrl: collector.url, token: opts.token ?? 'sensor-token', timeoutMs: 5_000, caFile: null, maxConnections: 16 }));
  const outcomes = new Map<number, Outcome[]>();
  const shipper = new EventShipper(
    { ...baseOpts, ...opts.shipper },
    client,
    opts.log ?? silentLogger(),
    (id, outcome) => outcomes.set(id, [...(outcomes.get(id) ?? []), outcome]),
    opts.clock,
  );
  cleanups.push(async () => {
    await shipper.stop(0);
    await client.close();
    await collector.stop();
  });
  return { collector, client, shipper, outcomes, done: () => outcomes.size };
}

const eventNumbers = (c: ReferenceCollector): number[] => c.events().map((e) => (e as { n: number }).n).sort((a, b) => a - b);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

// ---------- shipper ----------

describe('EventShipper against the reference collector', () => {
  it('acknowledges every event when the collector answers 201, with several requests in flight at once', async () => {
    const r = await rig({});
    r.shipper.start();
    await feed(r.shipper, 500, eventBody);
    await waitFor('all acks', () => r.done() === 500);
    assert.deepEqual(eventNumbers(r.collector), range(500));
    assert.ok([...r.outcomes.values()].every((o) => o.length === 1 && o[0] === 'acked'));
    assert.ok(r.client.peak > 1, `peak concurrency ${r.client.peak}`);
    assert.ok(r.client.peak <= baseOpts.maxInFlight, `peak concurrency ${r.client.peak} above the window`);
    const s = r.shipper.stats();
    assert.equal(s.acked, 500);
    assert.equal(s.sent, 500);
    assert.equal(s.retries, 0);
    assert.equal(s.state, 'idle');
    assert.notEqual(s.lastAckAt, null);
  });

  it('refuses a submit beyond the queue bound and calls onCapacity once room frees up', async () => {
    const r = await rig({ shipper: { maxQueued: 3 } });
    for (const id of [1, 2, 3]) r.shipper.submit(id, eventBody(id));
    assert.equal(r.shipper.hasCapacity(), false);
    assert.throws(() => r.shipper.submit(4, eventBody(4)), (err: unknown) => isAgentError(err, 'ERR_SHIPPER_FULL'));
    let called = 0;
    r.shipper.onCapacity(() => called++);
    r.shipper.start();
    await waitFor('acks', () => r.done() === 3);
    assert.ok(called >= 1);
    assert.equal(r.shipper.hasCapacity(), true);
  });

  it('retries through a run of 503 answers without losing or duplicating an event, counting the retries', async () => {
    const r = await rig({});
    r.collector.failNext(5, 503);
    r.shipper.start();
    await feed(r.shipper, 60, eventBody);
    await waitFor('all acks', () => r.done() === 60);
    assert.deepEqual(eventNumbers(r.collector), range(60));
    assert.ok([...r.outcomes.values()].every((o) => o.length === 1 && o[0] === 'acked'));
    const s = r.shipper.stats();
    assert.equal(s.retries, 5);
    assert.equal(s.lastError, 'HTTP 503');
    assert.equal(s.failingSince, null);
    assert.equal(r.collector.requests().filter((q) => q.status === 503).length, 5);
  });

  it('pauses all sending during the backoff, honours Retry-After, and probes with one request at a time', async () => {
    const clock = new ManualClock();
    const r = await rig({ clock, shipper: { retryMaxMs: 1_000 } });
    r.collector.failNext(9, 503, { retryAfterS: 30 });
    for (const id of range(16)) r.shipper.submit(id, eventBody(id));
    r.shipper.start();
    await waitFor('first wave answered', () => r.collector.requests().length === 8 && r.shipper.stats().inFlight === 0);
    assert.equal(r.shipper.stats().state, 'retrying');
    assert.ok(clock.pending().some((d) => d >= 30_000), `pending timers ${clock.pending()}`);
    await sleep(50);
    assert.equal(r.collector.requests().length, 8, 'nothing is sent during the backoff');

    clock.advance(29_000);
    await sleep(30);
    assert.equal(r.collector.requests().length, 8, 'not sooner than Retry-After');

    clock.advance(1_000);
    await waitFor('probe answered', () => r.collector.requests().length === 9 && r.shipper.stats().inFlight === 0);
    await sleep(30);
    assert.equal(r.collector.requests().length, 9, 'a failing probe is alone');
    assert.equal(r.client.peak, 8);

    clock.advance(30_000);
    await waitFor('all acks', () => r.done() === 16);
    assert.deepEqual(eventNumbers(r.collector), range(16));
    const s = r.shipper.stats();
    assert.equal(s.retries, 9);
    assert.equal(s.state, 'idle');
    assert.equal(s.failingSince, null);
  });

  it('pauses on 401, logs the code once with the token hint, skips nothing, and resumes when the token is accepted', async () => {
    const clock = new ManualClock();
    const cap = capturingLogger();
    const r = await rig({ clock, log: cap.log, tokens: new Map([['good-token', 'ACTIVE']]), token: 'wrong-token-abc', shipper: { authRetryMs: 300_000 } });
    for (const id of range(10)) r.shipper.submit(id, eventBody(id));
    r.shipper.start();
    await waitFor('first wave refused', () => r.shipper.stats().authFailures >= 1 && r.shipper.stats().inFlight === 0);
    let s = r.shipper.stats();
    assert.equal(s.state, 'auth-paused');
    assert.equal(s.lastAuthFailureStatus, 401);
    assert.equal(s.lastError, 'HTTP 401');
    assert.equal(s.acked + s.rejected, 0);
    assert.deepEqual(clock.pending(), [300_000]);

    const refusedBefore = r.collector.requests().length;
    clock.advance(300_000);
    await waitFor('probe refused', () => r.collector.requests().length === refusedBefore + 1 && r.shipper.stats().inFlight === 0);
    assert.equal(r.shipper.stats().state, 'auth-paused');

    r.collector.setStatus('wrong-token-abc', 'ACTIVE');
    clock.advance(300_000);
    await waitFor('all acks', () => r.done() === 10);
    assert.deepEqual(eventNumbers(r.collector), range(10));
    s = r.shipper.stats();
    assert.equal(s.state, 'idle');
    assert.equal(s.rejected, 0);
    assert.equal(s.lastAuthFailureStatus, null);

    const errors = cap.lines().filter((l) => l['level'] === 'error');
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0]!['httpCode'], 401);
    assert.match(String(errors[0]!['message']), /401.*token is likely wrong or revoked/);
    assert.ok(!JSON.stringify(cap.lines()).includes('wrong-token-abc'), 'the token never appears in the log');
    assert.ok(cap.lines().some((l) => l['level'] === 'info' && /accepting events again/.test(String(l['message']))));
  });

  it('treats 403 (a disabled sensor) like 401: paused, nothing skipped', async () => {
    const clock = new ManualClock();
    const r = await rig({ clock });
    r.collector.setStatus('sensor-token', 'DISABLED');
    for (const id of range(4)) r.shipper.submit(id, eventBody(id));
    r.shipper.start();
    await waitFor('refused', () => r.shipper.stats().authFailures >= 1 && r.shipper.stats().inFlight === 0);
    assert.equal(r.shipper.stats().state, 'auth-paused');
    assert.equal(r.shipper.stats().lastAuthFailureStatus, 403);
    assert.equal(r.done(), 0);
    r.collector.setStatus('sensor-token', 'ACTIVE');
    clock.advance(baseOpts.authRetryMs);
    await waitFor('all acks', () => r.done() === 4);
    assert.deepEqual(eventNumbers(r.collector), range(4));
  });

  it('skips only the event the collector rejects with 400 and logs its code', async () => {
    const cap = capturingLogger();
    const r = await rig({ log: cap.log });
    r.collector.rejectWhen((e: { n?: number }) => e.n === 7, 400);
    r.shipper.start();
    await feed(r.shipper, 20, eventBody);
    await waitFor('all outcomes', () => r.done() === 20);
    assert.deepEqual(r.outcomes.get(7), ['rejected']);
    assert.deepEqual(eventNumbers(r.collector), range(20).filter((n) => n !== 7));
    for (const id of range(20).filter((n) => n !== 7)) assert.deepEqual(r.outcomes.get(id), ['acked']);
    const s = r.shipper.stats();
    assert.equal(s.rejected, 1);
    assert.equal(s.retries, 0);
    assert.equal(s.state, 'idle');
    const warn = cap.lines().filter((l) => l['level'] === 'warn');
    assert.equal(warn.length, 1);
    assert.equal(warn[0]!['httpCode'], 400);
    assert.match(String(warn[0]!['body']), /event rejected/);
  });

  it('rate-limits the log line of repeated rejections and counts each one', async () => {
    const cap = capturingLogger();
    const r = await rig({ log: cap.log });
    r.collector.rejectWhen((e: { n?: number }) => e.n! % 2 === 0, 422);
    r.shipper.start();
    await feed(r.shipper, 40, eventBody);
    await waitFor('all outcomes', () => r.done() === 40);
    assert.equal(r.shipper.stats().rejected, 20);
    assert.equal(cap.lines().filter((l) => l['level'] === 'warn').length, 1);
  });

  it('treats a refused connection as retryable and delivers everything once the collector comes up', async () => {
    const probe = createServer();
    await new Promise<void>((res) => probe.listen(0, '127.0.0.1', res));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((res) => probe.close(() => res()));

    const client = createTelemetryClient({ baseUrl: `http://127.0.0.1:${port}`, token: 't', timeoutMs: 2_000, caFile: null, maxConnections: 4 });
    const acked: number[] = [];
    const shipper = new EventShipper({ ...baseOpts, retryBaseMs: 10, retryMaxMs: 20 }, client, silentLogger(), (id, o) => o === 'acked' && acked.push(id));
    for (const id of range(12)) shipper.submit(id, eventBody(id));
    shipper.start();
    await waitFor('a failure', () => shipper.stats().retries >= 1);
    assert.equal(shipper.stats().state, 'retrying');
    assert.equal(shipper.stats().lastError, 'ECONNREFUSED');
    assert.equal(acked.length, 0);

    const collector = new ReferenceCollector({ port, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens: null }, silentLogger());
    await collector.start();
    try {
      await waitFor('all acks', () => acked.length === 12);
      assert.deepEqual(eventNumbers(collector), range(12));
      assert.equal(shipper.stats().state, 'idle');
    } finally {
      await shipper.stop(0);
      await client.close();
      await collector.stop();
    }
  });
});

// ---------- stop() ----------

/** A loopback server that holds every request until released. */
async function holdingServer(): Promise<{ url: string; held: ServerResponse[]; received: () => number; release: () => void; close: () => Promise<void> }> {
  const held: ServerResponse[] = [];
  let received = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    received++;
    req.resume();
    held.push(res);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    held,
    received: () => received,
    release: () => {
      for (const res of held.splice(0)) res.writeHead(201, { 'content-type': 'application/json' }).end('{"status":"created"}');
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

describe('EventShipper.stop', () => {
  it('waits for requests in flight within the grace period and acknowledges them, leaving queued events unsent', async () => {
    const srv = await holdingServer();
    const client = createTelemetryClient({ baseUrl: srv.url, token: 't', timeoutMs: 5_000, caFile: null, maxConnections: 4 });
    const acked: number[] = [];
    const shipper = new EventShipper({ ...baseOpts, maxInFlight: 4 }, client, silentLogger(), (id) => acked.push(id));
    for (const id of range(10)) shipper.submit(id, eventBody(id));
    shipper.start();
    await waitFor('4 requests held', () => srv.held.length === 4);
    const stopped = shipper.stop(5_000);
    assert.equal(shipper.stats().state, 'stopped');
    assert.equal(shipper.hasCapacity(), false);
    assert.throws(() => shipper.submit(99, eventBody(99)), (err: unknown) => isAgentError(err, 'ERR_SHIPPER_STOPPED'));
    setTimeout(() => srv.release(), 50);
    const t0 = Date.now();
    await stopped;
    assert.ok(Date.now() - t0 < 2_000);
    assert.deepEqual(acked.sort((a, b) => a - b), [1, 2, 3, 4]);
    await sleep(30);
    assert.equal(srv.received(), 4, 'queued events are not sent after stop');
    assert.equal(shipper.stats().queued, 6);
    assert.equal(shipper.stop(5_000), stopped, 'stop is idempotent');
    await client.close();
    await srv.close();
  });

  it('gives up on requests still in flight when the grace period ends, without acknowledging them later', async () => {
    const srv = await holdingServer();
    const client = createTelemetryClient({ baseUrl: srv.url, token: 't', timeoutMs: 5_000, caFile: null, maxConnections: 4 });
    const acked: number[] = [];
    const shipper = new EventShipper({ ...baseOpts, maxInFlight: 3 }, client, silentLogger(), (id) => acked.push(id));
    for (const id of range(3)) shipper.submit(id, eventBody(id));
    shipper.start();
    await waitFor('3 requests held', () => srv.held.length === 3);
    const t0 = Date.now();
    await shipper.stop(100);
    const took = Date.now() - t0;
    assert.ok(took >= 90 && took < 1_500, `stop took ${took} ms`);
    srv.release();
    await sleep(50);
    assert.deepEqual(acked, [], 'answers after the grace period do not acknowledge');
    await client.close();
    await srv.close();
  });
});

// ---------- client ----------

describe('TelemetryClient', () => {
  it('sends the bearer token and JSON content type, and classifies answers by status', async () => {
    const seen: { auth?: string; type?: string; path?: string }[] = [];
    const statuses = [201, 200, 429, 500, 408, 302, 401, 403, 404];
    let i = 0;
    const server = createServer((req, res) => {
      seen.push({ auth: req.headers.authorization, type: req.headers['content-type'], path: req.url });
      req.resume();
      const status = statuses[i++]!;
      res.writeHead(status, status === 429 ? { 'retry-after': '7' } : {}).end(status === 404 ? 'x'.repeat(2_000) : '{}');
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix/`;
    const client = createTelemetryClient({ baseUrl: url, token: 'tok', timeoutMs: 2_000, caFile: null, maxConnections: 2 });
    const results: SendResult[] = [];
    for (let n = 0; n < statuses.length; n++) results.push(n === 1 ? await client.postTelemetry('{}') : await client.postEvent('{}'));
    await client.close();
    server.close();
    assert.deepEqual(results.slice(0, 8), [
      { kind: 'ok', status: 201 },
      { kind: 'ok', status: 200 },
      { kind: 'retryable', status: 429, reason: 'HTTP 429', retryAfterMs: 7_000 },
      { kind: 'retryable', status: 500, reason: 'HTTP 500' },
      { kind: 'retryable', status: 408, reason: 'HTTP 408' },
      { kind: 'retryable', status: 302, reason: 'HTTP 302 (redirect not followed; check the base URL)' },
      { kind: 'auth', status: 401 },
      { kind: 'auth', status: 403 },
    ]);
    const rejected = results[8]!;
    assert.equal(rejected.kind, 'rejected');
    assert.equal(rejected.kind === 'rejected' && rejected.status, 404);
    assert.ok(rejected.kind === 'rejected' && rejected.body.length <= 513 && rejected.body.endsWith('…'));
    assert.deepEqual(seen[0], { auth: 'Bearer tok', type: 'application/json', path: '/prefix/api/v1/event' });
    assert.equal(seen[1]!.path, '/prefix/api/v1/telemetry');
  });

  it('reports a response that takes longer than the timeout as retryable "timeout"', async () => {
    const srv = await holdingServer();
    const client = createTelemetryClient({ baseUrl: srv.url, token: 't', timeoutMs: 150, caFile: null, maxConnections: 1 });
    const t0 = Date.now();
    const result = await client.postEvent('{}');
    assert.deepEqual(result, { kind: 'retryable', status: null, reason: 'timeout' });
    assert.ok(Date.now() - t0 < 3_000);
    await client.close();
    await srv.close();
  });

  it('verifies TLS: a self-signed collector is refused, and trusted once its CA is given in caFile', async (t: TestContext) => {
    if (!requireOrSkip(t, commandWorks('openssl', ['version']), 'openssl is needed to make a test certificate')) return;
    const dir = mkdtempSync(join(tmpdir(), 'etpro-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
        req.resume();
        res.writeHead(201).end('{"status":"created"}');
      });
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        const untrusting = createTelemetryClient({ baseUrl: url, token: 't', timeoutMs: 2_000, caFile: null, maxConnections: 1 });
        const refused = await untrusting.postEvent('{}');
        await untrusting.close();
        assert.equal(refused.kind, 'retryable');
        assert.match(refused.kind === 'retryable' ? refused.reason : '', /^TLS: /);

        const trusting = createTelemetryClient({ baseUrl: url, token: 't', timeoutMs: 2_000, caFile: join(dir, 'cert.pem'), maxConnections: 1 });
        assert.deepEqual(await trusting.postEvent('{}'), { kind: 'ok', status: 201 });
        await trusting.close();
      } finally {
        server.closeAllConnections();
        server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unreadable or non-PEM caFile with ERR_CONFIG_INVALID naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'etpro-ca-'));
    try {
      const notPem = join(dir, 'not.pem');
      writeFileSync(notPem, 'hello');
      for (const caFile of [join(dir, 'missing.pem'), notPem]) {
        assert.throws(
          () => createTelemetryClient({ baseUrl: 'https://127.0.0.1:1', token: 't', timeoutMs: 1_000, caFile, maxConnections: 1 }),
          (err: unknown) => isAgentError(err, 'ERR_CONFIG_INVALID') && err.message.includes(caFile),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
