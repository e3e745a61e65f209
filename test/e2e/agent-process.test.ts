import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, Agent as HttpAgent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/logger.js';
import { ReferenceCollector } from '../../src/collector/reference-collector.js';

// Compiled, this file is dist/test/e2e/*.js next to dist/src/cli.js; run from the sources, the
// built CLI is under dist/ (`npm run build` first).
const CLI = [new URL('../../src/cli.js', import.meta.url), new URL('../../dist/src/cli.js', import.meta.url)].map((u) => fileURLToPath(u)).find((p) => existsSync(p))!;
const FIXTURES = [new URL('../fixtures/suricata-capture/', import.meta.url), new URL('../../../test/fixtures/suricata-capture/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(join(p, 'eve.json')))!;
const HOME_NET = '[10.0.0.0/8,2001:db8:aa::/48]';
const TOKEN = 'process-test-token-5f1c9a';

type Rec = Record<string, any>;

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const fn of cleanups.reverse()) await fn();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** The environment without any ETPRO_* variable of the test run itself. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETPRO_')) env[k] = v;
  return env;
}

interface Setup {
  dir: string;
  evePath: string;
  stateDir: string;
  rulesDir: string;
  env: (collectorUrl: string, extra?: Record<string, string>) => NodeJS.ProcessEnv;
}

function setup(): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'agent-process-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'log'));
  mkdirSync(join(dir, 'rules'));
  writeFileSync(join(dir, 'suricata.yaml'), `%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "${HOME_NET}"\n    EXTERNAL_NET: "!$HOME_NET"\n`);
  const s: Setup = {
    dir,
    evePath: join(dir, 'log', 'eve.json'),
    stateDir: join(dir, 'state'),
    rulesDir: join(dir, 'rules'),
    env: (collectorUrl, extra = {}) => ({
      ...baseEnv(),
      ETPRO_TOKEN: TOKEN,
      ETPRO_BASE_URL: collectorUrl,
      ETPRO_EVE_PATH: s.evePath,
      ETPRO_START_AT: 'beginning',
      ETPRO_STATE_DIR: s.stateDir,
      ETPRO_RULES_DIR: s.rulesDir,
      ETPRO_SURICATA_YAML: join(dir, 'suricata.yaml'),
      ETPRO_SURICATA_SOCKET: join(dir, 'no-suricata.socket'),
      ETPRO_STATS_LOG: join(dir, 'no-stats.log'),
      ETPRO_STATUS_PORT: '0',
      ETPRO_RULES_UPDATE_ENABLED: 'false',
      ETPRO_HEARTBEAT_ENABLED: 'false',
      ETPRO_POLL_INTERVAL_MS: '20',
      ETPRO_RETRY_BASE_MS: '20',
      ETPRO_RETRY_MAX_MS: '200',
      ETPRO_LOG_FORMAT: 'json',
      ETPRO_LOG_LEVEL: 'info',
      ...extra,
    }),
  };
  return s;
}

async function startCollector(): Promise<ReferenceCollector> {
  const c = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens: new Map([[TOKEN, 'ACTIVE']]) }, silentLogger());
  await c.start();
  cleanups.push(() => c.stop());
  return c;
}

/**
 * An HTTP proxy in front of the collector that holds each request `delayMs` before forwarding
 * it, or holds every request after the first `hangAfter` forever: a slow or stuck collector.
 */
class DelayProxy {
  delayMs = 0;
  /** Events forwarded before every later one is held forever (a stuck collector). */
  hangAfter = Infinity;
  private seen = 0;
  private readonly server: Server;
  private readonly upstream = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  private port = 0;

  constructor(private readonly target: URL) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    cleanups.push(() => this.stop());
    return `http://127.0.0.1:${this.port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/api/v1/event' && ++this.seen > this.hangAfter) return; // never answered
      setTimeout(() => {
        const up = request(
          { host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers, agent: this.upstream },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        up.on('error', () => {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        });
        up.end(Buffer.concat(chunks));
      }, this.delayMs);
    });
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    this.upstream.destroy();
    await closed;
  }
}

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('close', (code, signal) => r({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** The status URL the agent logs once its status server listens. */
async function statusUrlOf(agent: Running): Promise<string> {
  let url: string | null = null;
  await until(`the agent's status server (stdout so far: ${agent.stdout().slice(-2000)} stderr: ${agent.stderr().slice(-2000)})`, () => {
    if (agent.child.exitCode !== null) throw new Error(`agent exited with ${agent.child.exitCode}: ${agent.stderr()}${agent.stdout()}`);
    for (const l of agent.stdout().split('\n')) {
      if (!l.includes('Status server listening')) continue;
      const rec = JSON.parse(l) as { url?: string; addr?: string; port?: number };
      url = rec.url ?? (rec.port !== undefined ? `http://${rec.addr ?? '127.0.0.1'}:${rec.port}` : null);
      if (url !== null) return true;
    }
    return false;
  });
  return url!;
}

async function getStatus(url: string): Promise<Rec> {
  const r = await fetch(`${url}/status`);
  assert.equal(r.status, 200);
  return (await r.json()) as Rec;
}

async function terminate(agent: Running): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
  return agent.exited;
}

const fixtureLines = (): string[] =>
  readFileSync(join(FIXTURES, 'eve.json'), 'utf8')
    .split('\n')
    .filter((l) => l !== '');
const alertsIn = (lines: readonly string[]): Rec[] => lines.map((l) => JSON.parse(l) as Rec).filter((r) => r['event_type'] === 'alert');
const key = (e: Rec): string => `${String(e['flow_id'])}|${String(e['alert']?.['signature_id'])}|${String(e['timestamp'])}`;
const sortedKeys = (records: readonly Rec[]): string[] => records.map(key).sort();

test('kill -9 in mid-stream and a restart lose no alert, and send again only the unacknowledged window', async () => {
  const TOTAL = 20_000;
  const MAX_IN_FLIGHT = 32;
  const MAX_PENDING = 2_000;
  const s = setup();
  const templates = fixtureLines().filter((l) => l.includes('"event_type":"alert"'));
  let text = '';
  for (let i = 0; i < TOTAL; i++) text += `${templates[i % templates.length]!.replace(/"flow_id":\d+/, `"flow_id":${1_000_000_000 + i}`)}\n`;
  writeFileSync(s.evePath, text);

  let killAt: number | null = null;
  let agent: Running | null = null;
  const collector = new ReferenceCollector(
    {
      port: 0,
      host: '127.0.0.1',
      dataDir: null,
      rulesDir: null,
      tokens: new Map([[TOKEN, 'ACTIVE']]),
      onEvent: () => {
        // SIGKILL straight from the collector's request handler: lands while events stream.
        if (killAt !== null && collector.stats().events >= killAt && agent !== null && agent.child.exitCode === null && agent.child.signalCode === null) {
          agent.child.kill('SIGKILL');
          killAt = null;
        }
      },
    },
    silentLogger(),
  );
  await collector.start();
  cleanups.push(() => collector.stop());
  const proxy = new DelayProxy(new URL(collector.url));
  proxy.delayMs = 3;
  const url = await proxy.start();
  const env = s.env(url, { ETPRO_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT), ETPRO_MAX_PENDING_LINES: String(MAX_PENDING), ETPRO_LOG_LEVEL: 'warn' });

  killAt = Math.floor(TOTAL * 0.4);
  agent = runCli(['run'], env);
  const first = await agent.exited;
  assert.equal(first.signal, 'SIGKILL', `the first run should have been killed, it exited with ${first.code}: ${agent.stderr()}`);
  const atKill = collector.stats().events;
  assert.ok(atKill < TOTAL, `the kill must land mid-stream (${atKill} of ${TOTAL} stored)`);
  assert.ok(existsSync(join(s.stateDir, 'checkpoint.json')), 'a checkpoint was written before the kill');

  await sleep(100); // requests the proxy still held reach the collector
  agent = runCli(['run'], env);
  const flowIds = (): Set<number> => new Set((collector.events() as Rec[]).map((e) => e['flow_id'] as number));
  await until('every flow_id after the restart', () => flowIds().size >= TOTAL, 90_000);
  const second = await terminate(agent);
  assert.equal(second.code, 0, agent.stderr());

  const events = collector.events() as Rec[];
  const ids = flowIds();
  for (let i = 0; i < TOTAL; i++) assert.ok(ids.has(1_000_000_000 + i), `flow_id ${1_000_000_000 + i} never arrived`);
  const duplicates = events.length - TOTAL;
  const bound = MAX_IN_FLIGHT + MAX_PENDING;
  console.log(`kill -9 at ${atKill}/${TOTAL} stored events; after the restart ${events.length} stored, ${duplicates} duplicates (bound ${bound})`);
  assert.ok(duplicates >= 0);
  assert.ok(duplicates <= bound, `${duplicates} duplicates exceed the in-flight + pending window ${bound}`);
  const cp = JSON.parse(readFileSync(join(s.stateDir, 'checkpoint.json'), 'utf8')) as { offset: number };
  assert.equal(cp.offset, statSync(s.evePath).size);
});

test('SIGTERM with requests stuck at the collector exits 0 within the shutdown grace and leaves a checkpoint', async () => {
  const GRACE_MS = 1_500;
  const s = setup();
  writeFileSync(s.evePath, `${fixtureLines().join('\n')}\n`);
  const collector = await startCollector();
  const proxy = new DelayProxy(new URL(collector.url));
  proxy.hangAfter = 20;
  const url = await proxy.start();
  const agent = runCli(['run'], s.env(url, { ETPRO_SHUTDOWN_GRACE_MS: String(GRACE_MS), ETPRO_MAX_IN_FLIGHT: '4' }));
  const url2 = await statusUrlOf(agent);
  await until('the first events acknowledged', () => collector.stats().events >= 20);
  await until('requests stuck at the collector', async () => (await getStatus(url2))['telemetry']['shipper']['inFlight'] > 0);
  const t0 = Date.now();
  const { code } = await terminate(agent);
  const took = Date.now() - t0;
  assert.equal(code, 0, agent.stderr());
  assert.ok(took < GRACE_MS + 5_000, `exit took ${took} ms, grace is ${GRACE_MS} ms`);
  const cpFile = join(s.stateDir, 'checkpoint.json');
  assert.ok(existsSync(cpFile), 'checkpoint.json is left behind');
  const cp = JSON.parse(readFileSync(cpFile, 'utf8')) as { offset: number };
  assert.ok(cp.offset > 0 && cp.offset < statSync(s.evePath).size, `checkpoint ${cp.offset} sits after the acknowledged part only`);
});

test('an invalid configuration exits 78 naming every problem and never the token', async () => {
  const s = setup();
  const secret = 'super-secret-token-value-7e3b';
  const agent = runCli(['run'], { ...s.env('http://127.0.0.1:9'), ETPRO_TOKEN: secret, ETPRO_STATUS_PORT: 'abc', ETPRO_START_AT: 'yesterday', ETPRO_TYPO: '1' });
  const { code } = await agent.exited;
  assert.equal(code, 78, agent.stderr());
  const err = agent.stderr();
  for (const name of ['ETPRO_STATUS_PORT', 'ETPRO_START_AT', 'ETPRO_TYPO']) assert.ok(err.includes(name), `stderr should name ${name}:\n${err}`);
  assert.ok(!err.includes(secret) && !agent.stdout().includes(secret), 'the token value is never printed');
});

test('dump --all prints exactly what the agent sends for the same eve.json', async () => {
  const s = setup();
  writeFileSync(s.evePath, `${fixtureLines().join('\n')}\n`);
  const expectedCount = alertsIn(fixtureLines()).length;
  const collector = await startCollector();
  const env = s.env(collector.url);
  const agent = runCli(['run'], env);
  await until('every alert stored', () => collector.stats().events >= expectedCount);
  assert.equal((await terminate(agent)).code, 0, agent.stderr());

  const dump = runCli(['dump', '--all', '--eve', s.evePath], env);
  const { code } = await dump.exited;
  assert.equal(code, 0, dump.stderr());
  const dumped = dump
    .stdout()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Rec);
  const stored = collector.events() as Rec[];
  assert.equal(dumped.length, expectedCount);
  const canon = (rs: readonly Rec[]): string[] => rs.map((r) => JSON.stringify(r)).sort();
  assert.deepEqual(canon(dumped), canon(stored));
});

test('the status CLI, /healthz, /readyz and /metrics describe the running agent', async () => {
  const s = setup();
  writeFileSync(s.evePath, `${fixtureLines().join('\n')}\n`);
  const collector = await startCollector();
  const env = s.env(collector.url);
  const agent = runCli(['run'], env);
  try {
    const url = await statusUrlOf(agent);
    await until('the subscription polled as ACTIVE', async () => (await getStatus(url))['subscription']['status'] === 'ACTIVE');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    await until('ready', async () => (await fetch(`${url}/readyz`)).status === 200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^etpro_alerts_acked_total \d+/m);
    assert.match(metrics, /^etpro_eve_offset_bytes \d+/m);
    // No Suricata socket in this test: reported down, not up.
    assert.match(metrics, /^etpro_suricata_up 0$/m);
    assert.match(metrics, /^etpro_alerts_held 0$/m);

    const cli = runCli(['status', '--url', url], env);
    const { code } = await cli.exited;
    assert.equal(code, 0, cli.stderr());
    const summary = cli.stdout();
    assert.match(summary, /Status\s*:?\s*ACTIVE/);
    assert.ok(summary.includes(s.evePath), `the summary names the followed file:\n${summary}`);
  } finally {
    await terminate(agent);
  }
});

test('a broken line, a line without timestamp and an overlong line are counted and skipped; every valid alert arrives', async () => {
  const MAX_LINE = 16_384; // above the longest real line (the 7.7 kB stats record)
  const s = setup();
  const lines = fixtureLines();
  const expected = alertsIn(lines);
  const mid = Math.floor(lines.length / 2);
  const template = expected[0]!;
  const noTimestamp = JSON.stringify({ ...template, timestamp: undefined, flow_id: 42 });
  const overlong = JSON.stringify({ ...template, flow_id: 43, http: { ...template['http'], url: `/${'a'.repeat(MAX_LINE * 2)}` } });
  const bad = ['{"event_type":"alert","src_ip":"10.0.0.1", this line was cut', noTimestamp, overlong];
  writeFileSync(s.evePath, `${[...lines.slice(0, mid), ...bad, ...lines.slice(mid)].join('\n')}\n`);
  const collector = await startCollector();
  const agent = runCli(['run'], s.env(collector.url, { ETPRO_MAX_LINE_BYTES: String(MAX_LINE) }));
  try {
    const url = await statusUrlOf(agent);
    await until('every valid alert stored', () => collector.stats().events >= expected.length);
    await until('the whole file handled', async () => (await getStatus(url))['telemetry']['follower']['checkpointOffset'] === statSync(s.evePath).size);
    const st = (await getStatus(url))['telemetry'];
    assert.equal(st['malformedLines'], 2);
    assert.equal(st['linesTooLong'], 1);
    assert.equal(st['alertsAcked'], expected.length);
    assert.equal(agent.child.exitCode, null, 'the agent keeps running');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
  } finally {
    assert.equal((await terminate(agent)).code, 0, agent.stderr());
  }
  const stored = collector.events() as Rec[];
  assert.deepEqual(sortedKeys(stored), sortedKeys(expected));
  assert.ok(!stored.some((e) => e['flow_id'] === 42 || e['flow_id'] === 43), 'the bad lines were not sent');
});
