import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ReferenceCollector } from '../../src/collector/reference-collector.js';
import { silentLogger } from '../../src/logger.js';
import { SubscriptionPoller, type SubscriptionState } from '../../src/status/sensorinfo-poller.js';
import { createControlPlaneHttp, describeHttpFailure } from '../../src/util/http-client.js';
import { commandWorks, requireOrSkip } from '../helpers/requirements.js';

const TOKEN = 'sensorinfo-token';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A server answering sensorinfo with whatever the test sets, recording each request. */
class ScriptedServer {
  status = 200;
  body = '{}';
  delayMs = 0;
  readonly seen: { auth: string | undefined; path: string | undefined }[] = [];
  private readonly server = http.createServer((req, res) => {
    this.seen.push({ auth: req.headers.authorization, path: req.url });
    setTimeout(() => {
      res.writeHead(this.status, { 'Content-Type': 'application/json' });
      res.end(this.body);
    }, this.delayMs);
  });
  url = '';
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('subscription status from sensorinfo', () => {
  const collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens: new Map([[TOKEN, 'ACTIVE']]) }, silentLogger());
  const scripted = new ScriptedServer();
  before(async () => {
    await collector.start();
    await scripted.start();
  });
  after(async () => {
    await collector.stop();
    await scripted.stop();
  });

  const poller = (baseUrl: string, token: string | null, extra: Partial<ConstructorParameters<typeof SubscriptionPoller>[0]> = {}) =>
    new SubscriptionPoller({ token, pollS: 900, http: createControlPlaneHttp({ baseUrl, token, timeoutMs: 2_000, caFile: null }), ...extra }, silentLogger());

  it('follows the server through ACTIVE, DORMANT and DISABLED and tells listeners each change', async () => {
    const p = poller(collector.url, TOKEN);
    const changes: [string, string][] = [];
    p.onChange((s, prev) => changes.push([prev.status, s.status]));
    for (const status of ['ACTIVE', 'DORMANT', 'DISABLED', 'ACTIVE'] as const) {
      collector.setStatus(TOKEN, status);
      const s = await p.pollNow();
      assert.equal(s.status, status);
      assert.equal(s.httpCode, 200);
      assert.equal(s.reason, null);
      assert.equal(s.lastServerStatus, status);
      assert.equal(p.current(), s);
    }
    assert.deepEqual(changes, [
      ['ERROR', 'ACTIVE'],
      ['ACTIVE', 'DORMANT'],
      ['DORMANT', 'DISABLED'],
      ['DISABLED', 'ACTIVE'],
    ]);
  });

  it('keeps every field the server returned, with the time of the poll', async () => {
    collector.setStatus(TOKEN, 'ACTIVE');
    const p = poller(collector.url, TOKEN, { now: () => Date.parse('2026-12-03T10:00:00.000Z') });
    const s = await p.pollNow();
    assert.equal(s.sensorInfoAt, '2026-12-03T10:00:00.000Z');
    assert.equal(s.checkedAt, '2026-12-03T10:00:00.000Z');
    assert.equal(s.sensorInfo?.['status'], 'ACTIVE');
    for (const key of ['sensor_id', 'last_event_received', 'last_rule_download', 'last_heartbeat', 'events_received']) assert.ok(key in (s.sensorInfo ?? {}), key);
  });

  it('reads the plugin field names and explains DORMANT with the facts it is given', async () => {
    scripted.status = 200;
    scripted.body = JSON.stringify({ sensor_status: 'DORMANT', event_received: '2026-11-20T08:00:00Z', last_rule_download: '2026-12-02T03:10:00Z', last_heartbeat: '2026-11-20T09:00:00Z' });
    const p = poller(scripted.url, TOKEN, {
      explain: () => ({ lastEventAckAt: null, lastHeartbeatAckAt: '2026-12-03T09:00:00.000Z', startedAt: '2026-12-01T00:00:00.000Z', shipperLastError: 'HTTP 401' }),
    });
    const s = await p.pollNow();
    assert.equal(s.status, 'DORMANT');
    assert.equal(scripted.seen.at(-1)?.auth, `Bearer ${TOKEN}`);
    assert.equal(scripted.seen.at(-1)?.path, '/api/v1/sensorinfo');
    const text = s.explanation.join('\n');
    assert.match(text, /DORMANT/);
    assert.match(text, /No alert acknowledged since the agent started at 2026-12-01T00:00:00.000Z/);
    assert.match(text, /Last heartbeat acknowledged at 2026-12-03T09:00:00.000Z/);
    assert.match(text, /last error: HTTP 401/);
    assert.match(text, /last event received at 2026-11-20T08:00:00Z/);
  });

  it('is ERROR naming HTTP 401 when the token is refused, and keeps the last server status', async () => {
    const p = poller(collector.url, TOKEN);
    collector.setStatus(TOKEN, 'ACTIVE');
    await p.pollNow();
    const bad = poller(collector.url, 'not-a-known-token');
    const s = await bad.pollNow();
    assert.equal(s.status, 'ERROR');
    assert.equal(s.httpCode, 401);
    assert.equal(s.errorKind, 'auth');
    assert.match(s.reason ?? '', /HTTP 401.*token/);
    collector.failNext(1, 401, { path: '/api/v1/sensorinfo' });
    const again = await p.pollNow();
    assert.equal(again.status, 'ERROR');
    assert.equal(again.lastServerStatus, 'ACTIVE');
    assert.equal(again.sensorInfo?.['status'], 'ACTIVE');
  });

  it('is ERROR naming the HTTP code of a server error', async () => {
    collector.failNext(1, 502, { path: '/api/v1/sensorinfo' });
    const s = await poller(collector.url, TOKEN).pollNow();
    assert.equal(s.status, 'ERROR');
    assert.equal(s.httpCode, 502);
    assert.equal(s.errorKind, 'http');
    assert.match(s.reason ?? '', /HTTP 502/);
  });

  it('is ERROR naming the connection failure when nothing listens', async () => {
    const port = await freePort();
    const s = await poller(`http://127.0.0.1:${port}`, TOKEN).pollNow();
    assert.equal(s.status, 'ERROR');
    assert.equal(s.httpCode, null);
    assert.equal(s.errorKind, 'connection');
    assert.match(s.reason ?? '', /ECONNREFUSED/);
  });

  it('is ERROR naming a timeout when the server does not answer in time', async () => {
    scripted.delayMs = 1_000;
    scripted.body = JSON.stringify({ sensor_status: 'ACTIVE' });
    try {
      const p = new SubscriptionPoller({ token: TOKEN, pollS: 900, http: createControlPlaneHttp({ baseUrl: scripted.url, token: TOKEN, timeoutMs: 200, caFile: null }) }, silentLogger());
      const s = await p.pollNow();
      assert.equal(s.status, 'ERROR');
      assert.equal(s.errorKind, 'timeout');
      assert.match(s.reason ?? '', /timed out/);
    } finally {
      scripted.delayMs = 0;
    }
  });

  it('classifies DNS, TLS and timeout failures by their error code', () => {
    const withCode = (code: string) => Object.assign(new Error(code), { code });
    assert.equal(describeHttpFailure(withCode('ENOTFOUND')).kind, 'dns');
    assert.match(describeHttpFailure(withCode('EAI_AGAIN')).reason, /DNS/);
    assert.equal(describeHttpFailure(withCode('DEPTH_ZERO_SELF_SIGNED_CERT')).kind, 'tls');
    assert.equal(describeHttpFailure(withCode('ERR_TLS_CERT_ALTNAME_INVALID')).kind, 'tls');
    assert.equal(describeHttpFailure(withCode('ETIMEDOUT')).kind, 'timeout');
    assert.equal(describeHttpFailure(withCode('ECONNRESET')).kind, 'connection');
  });

  it('is ERROR naming TLS for an untrusted certificate, and ACTIVE once ETPRO_CA_FILE trusts it', async (t) => {
    if (!requireOrSkip(t, commandWorks('openssl', ['version']), 'openssl to make a test certificate')) return;
    const dir = mkdtempSync(join(tmpdir(), 'sensorinfo-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ sensor_status: 'ACTIVE' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const untrusted = await poller(url, TOKEN).pollNow();
      assert.equal(untrusted.status, 'ERROR');
      assert.equal(untrusted.errorKind, 'tls');
      assert.match(untrusted.reason ?? '', /TLS/);
      const trusted = new SubscriptionPoller({ token: TOKEN, pollS: 900, http: createControlPlaneHttp({ baseUrl: url, token: TOKEN, timeoutMs: 2_000, caFile: cert }) }, silentLogger());
      assert.equal((await trusted.pollNow()).status, 'ACTIVE');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('refuses a CA file that holds no certificate, naming it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sensorinfo-ca-')), 'ca.pem');
    writeFileSync(file, 'nothing here');
    assert.throws(() => createControlPlaneHttp({ baseUrl: 'https://127.0.0.1', token: TOKEN, timeoutMs: 1_000, caFile: file }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_CONFIG_INVALID');
      assert.ok(err.message.includes(file));
      return true;
    });
  });

  it('is ERROR when the answer is not a sensor status', async () => {
    scripted.status = 200;
    scripted.body = 'not json';
    assert.equal((await poller(scripted.url, TOKEN).pollNow()).errorKind, 'invalid-response');
    scripted.body = JSON.stringify({ sensor_status: 'SOMETHING' });
    const s = await poller(scripted.url, TOKEN).pollNow();
    assert.equal(s.status, 'ERROR');
    assert.match(s.reason ?? '', /without a known sensor_status/);
  });

  it('is UNCONFIGURED without a token and asks nothing', async () => {
    const before = scripted.seen.length;
    const p = poller(scripted.url, null);
    assert.equal(p.current().status, 'UNCONFIGURED');
    await p.start();
    assert.equal(p.current().status, 'UNCONFIGURED');
    assert.equal(scripted.seen.length, before);
    p.stop();
    p.stop();
  });

  it('polls again on its timer', async () => {
    scripted.status = 200;
    scripted.body = JSON.stringify({ sensor_status: 'ACTIVE' });
    const before = scripted.seen.length;
    const p = poller(scripted.url, TOKEN, { pollS: 0.05 });
    await p.start();
    const states: SubscriptionState[] = [];
    for (let i = 0; i < 100 && scripted.seen.length - before < 3; i++) await new Promise((r) => setTimeout(r, 20));
    p.stop();
    states.push(p.current());
    assert.ok(scripted.seen.length - before >= 3, `polled ${scripted.seen.length - before} times`);
    assert.equal(states[0]!.status, 'ACTIVE');
  });
});
