import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RulesHttp } from '../../src/rules/rules-http.js';
import { createControlPlaneHttp } from '../../src/util/http-client.js';
import { commandWorks, requireOrSkip } from '../helpers/requirements.js';

const TOKEN = 'proxy-test-token-5f1c';
const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy'];

/** Runs `fn` with exactly these proxy variables set (all others unset), restoring process.env afterwards. */
async function withProxyEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = new Map(PROXY_VARS.map((k) => [k, process.env[k]] as const));
  for (const k of PROXY_VARS) delete process.env[k];
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

interface Origin {
  readonly url: string;
  readonly port: number;
  readonly requests: { path: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

async function startOrigin(key: Buffer, cert: Buffer, redirectTo?: () => string): Promise<Origin> {
  const requests: Origin['requests'] = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
    if (redirectTo && req.url?.startsWith('/rules/')) {
      res.writeHead(302, { Location: `${redirectTo()}${req.url}` });
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ sensor_status: 'ACTIVE', served_by: (server.address() as net.AddressInfo).port }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface ConnectProxy {
  readonly url: string;
  /** host:port of every CONNECT tunnel opened, in order. */
  readonly tunnels: string[];
  /** Plain (non-CONNECT) requests the proxy received, e.g. an absolute-URL GET. */
  readonly forwarded: string[];
  /** Headers of the CONNECT requests. */
  readonly connectHeaders: http.IncomingHttpHeaders[];
  /** Every byte the client sent into a tunnel. */
  clientBytes(): Buffer;
  close(): Promise<void>;
}

async function startConnectProxy(): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const connectHeaders: http.IncomingHttpHeaders[] = [];
  const seen: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    forwarded.push(`${req.method} ${req.url}`);
    res.writeHead(502);
    res.end();
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push(req.url ?? '');
    connectHeaders.push(req.headers);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) {
        seen.push(head);
        upstream.write(head);
      }
      client.on('data', (chunk: Buffer) => seen.push(chunk));
      client.pipe(upstream);
      upstream.pipe(client);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    tunnels,
    forwarded,
    connectHeaders,
    clientBytes: () => Buffer.concat(seen),
    close: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('control-plane HTTPS through an HTTP CONNECT proxy', () => {
  const haveOpenssl = commandWorks('openssl', ['version']);
  let certFile = '';
  let origin: Origin;
  let other: Origin;
  let proxy: ConnectProxy;

  before(async () => {
    if (!haveOpenssl) return;
    const dir = mkdtempSync(join(tmpdir(), 'http-proxy-'));
    const keyFile = join(dir, 'key.pem');
    certFile = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const key = readFileSync(keyFile);
    const cert = readFileSync(certFile);
    other = await startOrigin(key, cert);
    origin = await startOrigin(key, cert, () => other.url);
    proxy = await startConnectProxy();
  });

  after(async () => {
    await origin?.close();
    await other?.close();
    await proxy?.close();
  });

  const client = (baseUrl: string) => createControlPlaneHttp({ baseUrl, token: TOKEN, timeoutMs: 5_000, caFile: certFile });

  it('tunnels a GET with CONNECT when HTTPS_PROXY is set, read when the request is sent, with the token only inside TLS', async (t) => {
    if (!requireOrSkip(t, haveOpenssl, 'openssl to make a test certificate')) return;
    const http = client(origin.url); // made before the variable exists
    const tunnelsBefore = proxy.tunnels.length;
    const requestsBefore = origin.requests.length;
    const res = await withProxyEnv({ HTTPS_PROXY: proxy.url }, () => http.get('/api/v1/sensorinfo'));
    assert.equal(res.status, 200);
    assert.equal(res.data.sensor_status, 'ACTIVE');
    assert.deepEqual(proxy.tunnels.slice(tunnelsBefore), [`127.0.0.1:${origin.port}`]);
    assert.deepEqual(proxy.forwarded, [], 'the proxy must not receive an absolute-URL request');
    const got = origin.requests.slice(requestsBefore);
    assert.deepEqual(got, [{ path: '/api/v1/sensorinfo', authorization: `Bearer ${TOKEN}` }]);
    // The proxy saw a TLS handshake (record type 0x16) and never the token or the path in clear.
    const bytes = proxy.clientBytes();
    assert.equal(bytes[0], 0x16);
    assert.equal(bytes.includes(TOKEN), false);
    assert.equal(bytes.includes('/api/v1/sensorinfo'), false);
    for (const h of proxy.connectHeaders) assert.equal(h.authorization, undefined);
  });

  it('reuses one kept-alive tunnel for consecutive requests through the same proxy', async (t) => {
    if (!requireOrSkip(t, haveOpenssl, 'openssl to make a test certificate')) return;
    const http = client(origin.url);
    const tunnelsBefore = proxy.tunnels.length;
    await withProxyEnv({ HTTPS_PROXY: proxy.url }, async () => {
      for (let i = 0; i < 3; i += 1) assert.equal((await http.get('/api/v1/sensorinfo')).status, 200);
    });
    assert.equal(proxy.tunnels.length - tunnelsBefore, 1);
  });

  it('connects directly when NO_PROXY covers 127.0.0.1', async (t) => {
    if (!requireOrSkip(t, haveOpenssl, 'openssl to make a test certificate')) return;
    const http = client(origin.url);
    const tunnelsBefore = proxy.tunnels.length;
    const requestsBefore = origin.requests.length;
    const res = await withProxyEnv({ HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' }, () => http.get('/api/v1/sensorinfo'));
    assert.equal(res.status, 200);
    assert.equal(proxy.tunnels.length, tunnelsBefore);
    assert.equal(origin.requests.length, requestsBefore + 1);
    assert.equal(origin.requests.at(-1)?.authorization, `Bearer ${TOKEN}`);
  });

  it('connects directly when no proxy variable is set', async (t) => {
    if (!requireOrSkip(t, haveOpenssl, 'openssl to make a test certificate')) return;
    const http = client(origin.url);
    const tunnelsBefore = proxy.tunnels.length;
    const res = await withProxyEnv({}, () => http.get('/api/v1/sensorinfo'));
    assert.equal(res.status, 200);
    assert.equal(proxy.tunnels.length, tunnelsBefore);
  });

  it('decides per request URL, so a download on another host than the base URL follows NO_PROXY for that host', async (t) => {
    if (!requireOrSkip(t, haveOpenssl, 'openssl to make a test certificate')) return;
    const http = client(origin.url);
    const tunnelsBefore = proxy.tunnels.length;
    const otherBefore = other.requests.length;
    await withProxyEnv({ HTTPS_PROXY: proxy.url, NO_PROXY: `127.0.0.1:${other.port}` }, async () => {
      assert.equal((await http.get('/api/v1/sensorinfo')).data.served_by, origin.port);
      assert.equal((await http.get(`${other.url}/open/emerging.rules.tar.gz`)).data.served_by, other.port);
    });
    assert.deepEqual(proxy.tunnels.slice(tunnelsBefore), [`127.0.0.1:${origin.port}`]);
    assert.equal(other.requests.length, otherBefore + 1);
  });

  it('tunnels rules downloads too, and decides again for the host a redirect points to', async (t) => {
    if (!requireOrSkip(t, haveOpenssl, 'openssl to make a test certificate')) return;
    const rules = new RulesHttp({ timeoutMs: 5_000, deadlineMs: 10_000, caFile: certFile, userAgent: 'proxy-test' });
    const tunnelsBefore = proxy.tunnels.length;
    const otherBefore = other.requests.length;
    const res = await withProxyEnv({ HTTPS_PROXY: proxy.url, NO_PROXY: `127.0.0.1:${other.port}` }, () =>
      rules.get(`${origin.url}/rules/emerging.rules.tar.gz`, { bearer: TOKEN, maxBytes: 65_536, what: 'ET Pro ruleset' }),
    );
    assert.equal(res.kind, 'ok');
    assert.equal(JSON.parse(res.kind === 'ok' ? res.body.toString('utf8') : '{}').served_by, other.port);
    // First hop through the tunnel; the redirect target is excluded by NO_PROXY and fetched directly.
    assert.deepEqual(proxy.tunnels.slice(tunnelsBefore), [`127.0.0.1:${origin.port}`]);
    assert.deepEqual(other.requests.slice(otherBefore).map((r) => r.path), ['/rules/emerging.rules.tar.gz']);
    assert.equal(proxy.clientBytes().includes(TOKEN), false);
  });
});
