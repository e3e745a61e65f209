import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import winston from 'winston';
import { loadConfig } from '../../src/config.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { Agent } from '../../src/main.js';
import { ReferenceCollector, type SensorStatus } from '../../src/collector/reference-collector.js';
import { hasSuricata, requireOrSkip } from '../helpers/requirements.js';

const FIXTURES = [new URL('../fixtures/suricata-capture/', import.meta.url), new URL('../../../test/fixtures/suricata-capture/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(join(p, 'eve.json')))!;
const HOME_NET = '[10.0.0.0/8,2001:db8:aa::/48]';
const TOKEN = 'main-job-token';
const FORBIDDEN_ALERT = ['signature', 'category', 'severity', 'metadata'];
const FORBIDDEN_HTTP = ['http_user_agent', 'url', 'http_refer'];

type Rec = Record<string, any>;

interface Harness {
  dir: string;
  evePath: string;
  stateDir: string;
  rulesDir: string;
  collector: ReferenceCollector;
  cleanup: () => Promise<void>;
}

async function harness(t: { after: (fn: () => Promise<void>) => void }, tokens: ReadonlyMap<string, SensorStatus> = new Map([[TOKEN, 'ACTIVE']])): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-main-job-'));
  const logDir = join(dir, 'log');
  mkdirSync(logDir);
  const collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens }, silentLogger());
  await collector.start();
  writeFileSync(join(dir, 'suricata.yaml'), `%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "${HOME_NET}"\n    EXTERNAL_NET: "!$HOME_NET"\n`);
  const h: Harness = {
    dir,
    evePath: join(logDir, 'eve.json'),
    stateDir: join(dir, 'state'),
    rulesDir: join(dir, 'rules'),
    collector,
    cleanup: async () => {
      await collector.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  mkdirSync(h.rulesDir);
  t.after(() => h.cleanup());
  return h;
}

function agentFor(h: Harness, log: Logger = silentLogger(), extra: Record<string, string> = {}, options: { filesRefreshMs?: number } = {}): Agent {
  const config = loadConfig({
    ETPRO_TOKEN: TOKEN,
    ETPRO_BASE_URL: h.collector.url,
    ETPRO_EVE_PATH: h.evePath,
    ETPRO_START_AT: 'beginning',
    ETPRO_STATE_DIR: h.stateDir,
    ETPRO_RULES_DIR: h.rulesDir,
    ETPRO_SURICATA_YAML: join(h.dir, 'suricata.yaml'),
    ETPRO_SURICATA_SOCKET: join(h.dir, 'no-suricata.socket'),
    ETPRO_STATS_LOG: join(h.dir, 'no-stats.log'),
    ETPRO_STATUS_PORT: '0',
    ETPRO_RULES_UPDATE_ENABLED: 'false',
    ETPRO_HEARTBEAT_ENABLED: 'false',
    ETPRO_POLL_INTERVAL_MS: '20',
    ETPRO_RETRY_BASE_MS: '20',
    ETPRO_RETRY_MAX_MS: '200',
    ETPRO_AUTH_RETRY_MS: '100',
    ETPRO_SHUTDOWN_GRACE_MS: '5000',
    ...extra,
  });
  return new Agent(config, log, options);
}

/** A logger that keeps every record (JSON) in an array. */
function recordingLogger(): { log: Logger; lines: Rec[] } {
  const lines: Rec[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Rec);
      done();
    },
  });
  return { log: winston.createLogger({ level: 'info', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] }), lines };
}

async function until(what: string, pred: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function eveLines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

function alertsIn(lines: readonly string[]): Rec[] {
  return lines.map((l) => JSON.parse(l) as Rec).filter((r) => r['event_type'] === 'alert');
}

const key = (e: Rec): string => `${String(e['flow_id'])}|${String(e['alert']?.['signature_id'])}|${String(e['timestamp'])}`;

function multiset(records: readonly Rec[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) m.set(key(r), (m.get(key(r)) ?? 0) + 1);
  return m;
}

function assertSameAlerts(received: readonly Rec[], expected: readonly Rec[]): void {
  assert.equal(received.length, expected.length, `expected ${expected.length} events, the collector stored ${received.length}`);
  assert.deepEqual(multiset(received), multiset(expected));
}

function checkpointOffset(h: Harness): number | null {
  const file = join(h.stateDir, 'checkpoint.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { offset: number }).offset : null;
}

const fixtureLines = (): string[] => eveLines(join(FIXTURES, 'eve.json'));

test('alerts from a real Suricata run arrive exactly once, masked and stripped, and the checkpoint reaches the end', async (t) => {
  if (!requireOrSkip(t, hasSuricata(), 'suricata is not installed')) return;
  const h = await harness(t);
  const r = spawnSync(
    'suricata',
    [
      '-r',
      join(FIXTURES, 'http-tls-v4-v6.pcap'),
      '-S',
      join(FIXTURES, 'et-test.rules'),
      '-l',
      join(h.dir, 'log'),
      '-k',
      'none',
      '--set',
      `vars.address-groups.HOME_NET=${HOME_NET}`,
      '--set',
      'unix-command.enabled=no',
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, `suricata failed: ${r.stderr}`);
  const expected = alertsIn(eveLines(h.evePath));
  assert.ok(expected.length > 50, `the capture should raise many alerts, got ${expected.length}`);

  const agent = agentFor(h);
  await agent.start();
  try {
    await until('every alert acknowledged', () => agent.snapshot().telemetry.alertsAcked >= expected.length);
  } finally {
    await agent.stop();
  }
  const received = h.collector.events() as Rec[];
  assertSameAlerts(received, expected);

  const text = received.map((e) => JSON.stringify(e)).join('\n');
  assert.ok(!text.includes('10.20.30.40'), 'the HOME_NET IPv4 address must never leave unmasked');
  assert.ok(!/2001:0?db8:0{0,2}aa/i.test(text), 'the HOME_NET IPv6 address must never leave unmasked');
  assert.ok(received.some((e) => e['src_ip'] === 'xxx.xxx.xxx.40'), 'the IPv4 client appears masked');
  assert.ok(received.some((e) => /^xxxx:xxxx:.*10$/.test(String(e['src_ip']))), 'the IPv6 client appears masked');
  assert.ok(received.some((e) => e['dest_ip'] === '198.51.100.23'), 'external addresses stay as they are');
  for (const e of received) {
    for (const k of FORBIDDEN_ALERT) assert.equal(k in (e['alert'] ?? {}), false, `alert.${k} in ${JSON.stringify(e)}`);
    for (const k of FORBIDDEN_HTTP) assert.equal(k in (e['http'] ?? {}), false, `http.${k} in ${JSON.stringify(e)}`);
  }
  assert.equal(checkpointOffset(h), statSync(h.evePath).size);
});

test('503 answers for the first events are retried: nothing is lost and the retries show in the snapshot', async (t) => {
  const h = await harness(t);
  const lines = fixtureLines();
  writeFileSync(h.evePath, `${lines.join('\n')}\n`);
  const expected = alertsIn(lines);
  h.collector.failNext(10, 503, { path: '/api/v1/event' });
  const agent = agentFor(h);
  await agent.start();
  try {
    await until('every alert acknowledged', () => agent.snapshot().telemetry.alertsAcked >= expected.length);
    const s = agent.snapshot().telemetry;
    assert.ok(s.alertsSent >= expected.length + 10, `sent ${s.alertsSent} should count the 10 retried requests on top of ${expected.length}`);
    assert.equal(s.alertsRejected, 0);
  } finally {
    await agent.stop();
  }
  assertSameAlerts(h.collector.events() as Rec[], expected);
  assert.equal(h.collector.requests().filter((r) => r.path === '/api/v1/event' && r.status === 503).length, 10);
  assert.equal(checkpointOffset(h), statSync(h.evePath).size);
});

test('a token the collector refuses pauses sending without skipping anything, and sending resumes once it is valid', async (t) => {
  const h = await harness(t, new Map([['some-other-token', 'ACTIVE']]));
  const lines = fixtureLines();
  writeFileSync(h.evePath, `${lines.join('\n')}\n`);
  const expected = alertsIn(lines);
  const firstAlertOffset = Buffer.byteLength(lines.slice(0, lines.findIndex((l) => l.includes('"event_type":"alert"'))).map((l) => `${l}\n`).join(''));
  const rec = recordingLogger();
  const agent = agentFor(h, rec.log);
  await agent.start();
  try {
    await until('the shipper to pause on the refused token', () => agent.snapshot().telemetry.shipper.state === 'auth-paused');
    // A few auth retry rounds (100 ms each) pass while the token stays refused.
    const refusedBefore = h.collector.requests().filter((r) => r.path === '/api/v1/event' && r.status === 401).length;
    await until('more refused retries', () => h.collector.requests().filter((r) => r.path === '/api/v1/event' && r.status === 401).length >= refusedBefore + 3);
    const s = agent.snapshot().telemetry;
    assert.equal(s.alertsAcked, 0);
    assert.equal(s.alertsRejected, 0);
    assert.equal(s.shipper.state, 'auth-paused');
    const ready = agent.readiness();
    assert.equal(ready.ready, false, 'a refused token makes the agent not ready');
    assert.ok(ready.reasons.some((r) => r.includes('401')), ready.reasons.join('; '));
    assert.equal(h.collector.events().length, 0);
    const cp = s.follower?.checkpointOffset ?? null;
    assert.ok(cp === null || cp <= firstAlertOffset, `checkpoint ${cp} must not pass the first alert at ${firstAlertOffset}`);
    const onDisk = checkpointOffset(h);
    assert.ok(onDisk === null || onDisk <= firstAlertOffset, `checkpoint file ${onDisk} must not pass the first alert at ${firstAlertOffset}`);
    const errors401 = rec.lines.filter((l) => l['level'] === 'error' && String(l['message']).includes('401'));
    assert.equal(errors401.length, 1, `exactly one error line naming 401, got ${JSON.stringify(rec.lines.filter((l) => l['level'] === 'error'))}`);
    assert.ok(!JSON.stringify(rec.lines).includes(TOKEN), 'the token is never logged');

    assert.equal(agent.snapshot().subscription.httpCode, 401, 'sensorinfo was refused too');

    h.collector.setStatus(TOKEN, 'ACTIVE');
    await until('every alert acknowledged after the token became valid', () => agent.snapshot().telemetry.alertsAcked >= expected.length);
    // The subscription is asked again at once, not at its next 15-minute poll.
    await until('the subscription re-checked after the token works again', () => agent.snapshot().subscription.status === 'ACTIVE', 10_000);
  } finally {
    await agent.stop();
  }
  assertSameAlerts(h.collector.events() as Rec[], expected);
  assert.equal(rec.lines.filter((l) => l['level'] === 'error' && String(l['message']).includes('401')).length, 1, 'still one 401 error line');
  assert.equal(checkpointOffset(h), statSync(h.evePath).size);
});

test('an event the collector answers 400 is skipped alone: the rest arrive and the checkpoint reaches the end', async (t) => {
  const h = await harness(t);
  const lines = fixtureLines();
  writeFileSync(h.evePath, `${lines.join('\n')}\n`);
  const expected = alertsIn(lines);
  const poisonFlow = expected[Math.floor(expected.length / 2)]!['flow_id'] as number;
  const poisoned = expected.filter((e) => e['flow_id'] === poisonFlow);
  assert.ok(poisoned.length >= 1);
  h.collector.rejectWhen((e: Rec) => e['flow_id'] === poisonFlow, 400);
  const agent = agentFor(h);
  await agent.start();
  try {
    await until('every alert answered', () => {
      const s = agent.snapshot().telemetry;
      return s.alertsAcked + s.alertsRejected >= expected.length;
    });
    const s = agent.snapshot().telemetry;
    assert.equal(s.alertsRejected, poisoned.length);
    assert.equal(s.alertsAcked, expected.length - poisoned.length);
  } finally {
    await agent.stop();
  }
  assertSameAlerts(
    h.collector.events() as Rec[],
    expected.filter((e) => e['flow_id'] !== poisonFlow),
  );
  assert.equal(checkpointOffset(h), statSync(h.evePath).size);
});

test('telemetry_sids.txt in the rules directory limits which alerts are sent', async (t) => {
  const h = await harness(t);
  writeFileSync(join(h.rulesDir, 'telemetry_sids.txt'), '2099004\n2099006\n');
  const lines = fixtureLines();
  writeFileSync(h.evePath, `${lines.join('\n')}\n`);
  const all = alertsIn(lines);
  const expected = all.filter((e) => [2099004, 2099006].includes(e['alert']['signature_id'] as number));
  assert.ok(expected.length > 0 && expected.length < all.length, 'the list must keep some alerts and drop others');
  const agent = agentFor(h);
  await agent.start();
  try {
    await until('the whole file handled', () => agent.snapshot().telemetry.follower?.checkpointOffset === statSync(h.evePath).size);
    const s = agent.snapshot().telemetry;
    assert.equal(s.alertsAcked, expected.length);
    assert.equal(s.alertsFiltered, all.length - expected.length);
  } finally {
    await agent.stop();
  }
  assertSameAlerts(h.collector.events() as Rec[], expected);
});

test('a rotation while running loses nothing: the renamed file is finished and the new one followed', async (t) => {
  const h = await harness(t);
  const lines = fixtureLines();
  const expected = alertsIn(lines);
  const q1 = Math.floor(lines.length / 4);
  const half = Math.floor(lines.length / 2);
  const chunk = (a: number, b: number): string => lines.slice(a, b).map((l) => `${l}\n`).join('');
  writeFileSync(h.evePath, chunk(0, q1));
  const agent = agentFor(h);
  await agent.start();
  try {
    await until('the first events', () => h.collector.events().length > 0);
    // Suricata writes more into the old file just before logrotate renames it.
    appendFileSync(h.evePath, chunk(q1, half));
    renameSync(h.evePath, `${h.evePath}.1`);
    await sleep(30);
    writeFileSync(h.evePath, chunk(half, lines.length));
    await until('every alert acknowledged', () => agent.snapshot().telemetry.alertsAcked >= expected.length);
    await sleep(200); // anything sent twice would show up now
  } finally {
    await agent.stop();
  }
  assertSameAlerts(h.collector.events() as Rec[], expected);
  assert.equal(checkpointOffset(h), statSync(h.evePath).size);
});

test('holds alerts while HOME_NET in suricata.yaml is unusable, says so on /readyz, and sends them once it is fixed', async (t) => {
  const h = await harness(t);
  writeFileSync(h.evePath, readFileSync(join(FIXTURES, 'eve.json')));
  const yaml = join(h.dir, 'suricata.yaml');
  writeFileSync(yaml, `%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "[203.0.113.0/24"\n`);
  const { log, lines } = recordingLogger();
  const agent = agentFor(h, log, {}, { filesRefreshMs: 50 });
  t.after(() => agent.stop());
  await agent.start();
  await sleep(500);
  assert.equal(h.collector.stats().events, 0, 'no alert may leave the host while HOME_NET is unusable');
  const ready = agent.readiness();
  assert.equal(ready.ready, false);
  assert.ok(ready.reasons.some((r) => r.includes('HOME_NET')), ready.reasons.join('; '));
  assert.ok(lines.some((l) => l['level'] === 'error' && String(l['message']).includes('HOME_NET')), 'an error line names HOME_NET');
  assert.equal(agent.snapshot().telemetry.follower?.checkpointOffset ?? 0, 0, 'nothing is acknowledged');
  assert.ok(agent.snapshot().telemetry.alertsHeld! > 0, 'the held alerts are counted');
  await until('Suricata reported as Stopped (no socket)', () => agent.snapshot().suricata?.status === 'Stopped');

  writeFileSync(yaml, `%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "${HOME_NET}"\n`);
  const expected = alertsIn(eveLines(h.evePath)).length;
  await until(`${expected} alerts after the fix`, () => h.collector.stats().events >= expected);
  const events = h.collector.events() as Rec[];
  assert.equal(events.length, expected);
  assert.ok(!JSON.stringify(events).includes('10.20.30.40'));
  assert.equal(agent.readiness().ready, true);
});

test('refuses to start, naming the directory, when the state dir cannot be created', async (t) => {
  const h = await harness(t);
  writeFileSync(join(h.dir, 'a-file'), '');
  const agent = agentFor(h, silentLogger(), { ETPRO_STATE_DIR: join(h.dir, 'a-file', 'state') });
  t.after(() => agent.stop());
  await assert.rejects(agent.start(), (err: Error & { code?: string }) => err.code === 'ERR_STATE_DIR_UNUSABLE' && err.message.includes(join(h.dir, 'a-file', 'state')));
});

test('holds alerts when a HOME_NET that was in force disappears (suricata.yaml emptied or rewritten in place), instead of unmasking its addresses', async (t) => {
  const h = await harness(t);
  const yaml = join(h.dir, 'suricata.yaml');
  // A public documentation range as HOME_NET: only HOME_NET makes it local.
  writeFileSync(yaml, `%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "[203.0.113.0/24]"\n`);
  writeFileSync(h.evePath, '');
  const agent = agentFor(h, silentLogger(), { ETPRO_MASK_PRIVATE_RANGES: 'false', ETPRO_MASK_INTERFACE_NETWORKS: 'false' }, { filesRefreshMs: 50 });
  t.after(() => agent.stop());
  await agent.start();
  const alert = (n: number): string =>
    JSON.stringify({ timestamp: '2026-12-03T16:23:21.000000+0000', flow_id: 7000 + n, event_type: 'alert', src_ip: '203.0.113.7', src_port: 40000 + n, dest_ip: '198.51.100.1', dest_port: 80, proto: 'TCP', alert: { action: 'allowed', gid: 1, signature_id: 2099001, rev: 1, signature: 'x', category: 'y', severity: 1 } });
  appendFileSync(h.evePath, `${alert(1)}\n`);
  await until('the first alert', () => h.collector.stats().events >= 1);
  assert.equal((h.collector.events()[0] as Rec)['src_ip'], 'xxx.xxx.xxx.7');

  writeFileSync(yaml, ''); // emptied, as by a non-atomic rewrite
  await until('the loss to be noticed', () => agent.readiness().reasons.some((r) => r.includes('HOME_NET')));
  appendFileSync(h.evePath, `${alert(2)}\n`);
  await sleep(300);
  assert.equal(h.collector.stats().events, 1, 'the second alert is held, not sent with 203.0.113.7 unmasked');

  writeFileSync(yaml, `%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "[203.0.113.0/24]"\n`);
  await until('the held alert after the file is back', () => h.collector.stats().events >= 2);
  const events = h.collector.events() as Rec[];
  assert.deepEqual(events.map((e) => e['src_ip']), ['xxx.xxx.xxx.7', 'xxx.xxx.xxx.7']);
  assert.equal(agent.readiness().ready, true);
});
