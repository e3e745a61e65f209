import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as tar from 'tar';
import { parseTokens, readTokensFile, ReferenceCollector, type ReferenceCollectorOptions } from '../../src/collector/reference-collector.js';
import { sidsInRules } from '../../src/collector/rules-archive.js';
import { isAgentError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';

// From test/integration (tsx) or dist/test/integration (compiled): the fixtures stay in test/fixtures.
const FIXTURE_RULES = [new URL('../fixtures/suricata-capture/et-test.rules', import.meta.url), new URL('../../../test/fixtures/suricata-capture/et-test.rules', import.meta.url)].find((u) =>
  existsSync(u),
)!;

const dirs: string[] = [];
const collectors: ReferenceCollector[] = [];
after(async () => {
  for (const c of collectors) await c.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function startCollector(opts: Partial<ReferenceCollectorOptions> = {}): Promise<ReferenceCollector> {
  const c = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: null, tokens: null, ...opts }, silentLogger());
  collectors.push(c);
  await c.start();
  return c;
}

function rulesDirWithFixture(): string {
  const d = tempDir('etpro-collector-rules-');
  copyFileSync(FIXTURE_RULES, join(d, 'et-test.rules'));
  return d;
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function post(c: ReferenceCollector, path: string, body: string, headers: Record<string, string> = bearer('t1')): Promise<Response> {
  return fetch(c.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

async function sensorInfo(c: ReferenceCollector, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${c.url}/api/v1/sensorinfo`, { headers: bearer(token) });
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

/** Every member of a gzip'd tar with its content, read with the tar package. */
async function listArchive(buf: Buffer): Promise<Map<string, string>> {
  const members = new Map<string, string>();
  const parser = new tar.Parser({
    onReadEntry: (entry) => {
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => members.set(entry.path, Buffer.concat(chunks).toString('utf8')));
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', reject);
    parser.end(buf);
  });
  return members;
}

describe('ReferenceCollector: events and heartbeats', () => {
  it('answers 401 without a bearer token and 201 with any non-empty token when no tokens are configured', async () => {
    const c = await startCollector();
    assert.equal((await post(c, '/api/v1/event', '{"a":1}', {})).status, 401);
    assert.equal((await post(c, '/api/v1/event', '{"a":1}', { authorization: 'Bearer ' })).status, 401);
    assert.equal((await post(c, '/api/v1/event', '{"a":1}', { authorization: 'Basic dTpw' })).status, 401);
    const ok = await post(c, '/api/v1/event', '{"a":1}');
    assert.equal(ok.status, 201);
    assert.deepEqual(await ok.json(), { status: 'created' });
    assert.deepEqual(c.events(), [{ a: 1 }]);
    assert.deepEqual(
      c.requests().map((r) => [r.status, r.auth]),
      [[401, false], [401, false], [401, false], [201, true]],
    );
  });

  it('accepts only the configured tokens when a tokens map is given', async () => {
    const c = await startCollector({ tokens: new Map([['known', 'ACTIVE']]) });
    assert.equal((await post(c, '/api/v1/event', '{"a":1}', bearer('unknown'))).status, 401);
    assert.equal((await post(c, '/api/v1/event', '{"a":2}', bearer('known'))).status, 201);
    c.setStatus('unknown', 'ACTIVE');
    assert.equal((await post(c, '/api/v1/event', '{"a":3}', bearer('unknown'))).status, 201);
    assert.deepEqual(c.events(), [{ a: 2 }, { a: 3 }]);
  });

  it('refuses a body that is not one JSON object with 400 and an oversized body with 413, storing neither', async () => {
    const c = await startCollector({ maxBodyBytes: 1_000 });
    for (const body of ['not json', '[1,2]', '"text"', 'null', '']) {
      const res = await post(c, '/api/v1/event', body);
      assert.equal(res.status, 400, body);
    }
    assert.equal((await post(c, '/api/v1/telemetry', '[]')).status, 400);
    assert.equal((await post(c, '/api/v1/event', JSON.stringify({ pad: 'x'.repeat(2_000) }))).status, 413);
    assert.deepEqual(c.events(), []);
    assert.deepEqual(c.heartbeats(), []);
  });

  it('keeps events and heartbeats in memory and appends them as NDJSON to the data directory', async () => {
    const data = tempDir('etpro-collector-data-');
    const c = await startCollector({ dataDir: join(data, 'nested') });
    const events = Array.from({ length: 50 }, (_, i) => ({ event_type: 'alert', flow_id: 1234567890123456789n.toString(), n: i }));
    await Promise.all(events.map((e) => post(c, '/api/v1/event', JSON.stringify(e))));
    assert.equal((await post(c, '/api/v1/telemetry', JSON.stringify({ sensor_id: 's-1', suricata_status: 'Running' }))).status, 201);
    // A pretty-printed body is stored as one line.
    assert.equal((await post(c, '/api/v1/event', JSON.stringify({ n: 50 }, null, 2))).status, 201);
    assert.equal(c.events().length, 51);
    await c.stop();
    const lines = readFileSync(join(data, 'nested', 'events.ndjson'), 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 51);
    const stored = lines.map((l) => JSON.parse(l) as { n: number });
    assert.deepEqual(stored.map((e) => e.n).sort((a, b) => a - b), Array.from({ length: 51 }, (_, i) => i));
    assert.deepEqual(readFileSync(join(data, 'nested', 'heartbeats.ndjson'), 'utf8'), '{"sensor_id":"s-1","suricata_status":"Running"}\n');
    assert.deepEqual(c.stats(), { events: 51, heartbeats: 1, rejected: 0, requests: 52 });
  });

  it('answers the status given to failNext for the next requests of that path, with Retry-After, then recovers', async () => {
    const c = await startCollector();
    c.failNext(2, 503, { retryAfterS: 12, path: '/api/v1/event' });
    const hb = await post(c, '/api/v1/telemetry', '{}');
    assert.equal(hb.status, 201, 'another path is not affected');
    const first = await post(c, '/api/v1/event', '{"n":1}');
    assert.equal(first.status, 503);
    assert.equal(first.headers.get('retry-after'), '12');
    assert.equal((await post(c, '/api/v1/event', '{"n":1}')).status, 503);
    assert.equal((await post(c, '/api/v1/event', '{"n":1}')).status, 201);
    assert.deepEqual(c.events(), [{ n: 1 }]);
    assert.throws(() => c.failNext(0, 503), RangeError);
  });

  it('rejects the events a rejectWhen predicate picks, with its status, and stores the others', async () => {
    const c = await startCollector();
    c.rejectWhen((e: { bad?: boolean }) => e.bad === true, 422);
    assert.equal((await post(c, '/api/v1/event', '{"bad":true}')).status, 422);
    assert.equal((await post(c, '/api/v1/event', '{"bad":false}')).status, 201);
    assert.deepEqual(c.events(), [{ bad: false }]);
    assert.equal(c.stats().rejected, 1);
  });

  it('answers 404 for an unknown path and 405 for a wrong method', async () => {
    const c = await startCollector();
    assert.equal((await fetch(`${c.url}/nope`)).status, 404);
    const wrong = await fetch(`${c.url}/api/v1/event`, { headers: bearer('t1') });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
  });
});

describe('ReferenceCollector: sensorinfo', () => {
  it('reports ACTIVE with the times of the last event, heartbeat and rule download, and the sensor id of the heartbeat', async () => {
    let now = Date.parse('2026-05-01T12:00:00Z');
    const c = await startCollector({ now: () => now, rulesDir: rulesDirWithFixture() });
    const fresh = await sensorInfo(c, 'tok');
    assert.equal(fresh['status'], 'ACTIVE');
    assert.equal(fresh['last_event_received'], null);
    await post(c, '/api/v1/event', '{"n":1}', bearer('tok'));
    now += 60_000;
    await post(c, '/api/v1/telemetry', '{"sensor_id":"abc-123"}', bearer('tok'));
    now += 60_000;
    assert.equal((await fetch(`${c.url}/api/v1/ruleset/engine/suricata/5`, { headers: bearer('tok') })).status, 200);
    const info = await sensorInfo(c, 'tok');
    assert.deepEqual(info, {
      sensor_status: 'ACTIVE',
      status: 'ACTIVE',
      sensor_id: 'abc-123',
      event_received: '2026-05-01T12:00:00.000Z',
      last_event_received: '2026-05-01T12:00:00.000Z',
      last_heartbeat: '2026-05-01T12:01:00.000Z',
      last_rule_download: '2026-05-01T12:02:00.000Z',
      events_received: 1,
    });
    const other = await sensorInfo(c, 'other-token');
    assert.equal(other['last_event_received'], null, 'each token has its own record');
  });

  it('turns DORMANT when nothing arrived for the dormant period and ACTIVE again with the next event', async () => {
    let now = Date.parse('2026-05-01T12:00:00Z');
    const c = await startCollector({ now: () => now, dormantAfterMs: 3_600_000 });
    await post(c, '/api/v1/event', '{"n":1}', bearer('tok'));
    now += 3_600_001;
    assert.equal((await sensorInfo(c, 'tok'))['status'], 'DORMANT');
    await post(c, '/api/v1/event', '{"n":2}', bearer('tok'));
    assert.equal((await sensorInfo(c, 'tok'))['status'], 'ACTIVE');
  });

  it('reports DISABLED when set, and then answers 403 to events, heartbeats and ET Pro downloads', async () => {
    const c = await startCollector({ rulesDir: rulesDirWithFixture(), tokens: new Map([['tok', 'DISABLED']]) });
    assert.equal((await sensorInfo(c, 'tok'))['status'], 'DISABLED');
    assert.equal((await post(c, '/api/v1/event', '{}', bearer('tok'))).status, 403);
    assert.equal((await post(c, '/api/v1/telemetry', '{}', bearer('tok'))).status, 403);
    assert.equal((await fetch(`${c.url}/api/v1/ruleset/engine/suricata/5`, { headers: bearer('tok') })).status, 403);
    assert.equal((await fetch(`${c.url}/open/suricata-7.0.10/emerging.rules.tar.gz`)).status, 200, 'ET Open stays available');
    c.setStatus('tok', 'DORMANT');
    assert.equal((await sensorInfo(c, 'tok'))['status'], 'DORMANT');
    assert.equal((await fetch(`${c.url}/api/v1/sensorinfo`)).status, 401);
  });
});

describe('ReferenceCollector: rulesets', () => {
  it('serves the rules directory as a gzip tar with rules/*.rules and telemetry_sids.txt listing every SID', async () => {
    const rules = rulesDirWithFixture();
    writeFileSync(join(rules, 'local.rules'), '# a comment\nalert tcp any any -> any any (msg:"x"; sid:9000001; rev:1;)\n#alert tcp any any -> any any (msg:"off"; sid:9000002; rev:1;)\n');
    writeFileSync(join(rules, 'notes.txt'), 'not served');
    const c = await startCollector({ rulesDir: rules });
    const res = await fetch(`${c.url}/api/v1/ruleset/engine/suricata/5`, { headers: bearer('tok') });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/gzip');
    const archive = Buffer.from(await res.arrayBuffer());
    const members = await listArchive(archive);
    assert.deepEqual([...members.keys()].sort(), ['rules/et-test.rules', 'rules/local.rules', 'rules/telemetry_sids.txt']);
    assert.equal(members.get('rules/et-test.rules'), readFileSync(FIXTURE_RULES, 'utf8'));
    const fixtureSids = sidsInRules(readFileSync(FIXTURE_RULES, 'utf8'));
    assert.ok(fixtureSids.length >= 5);
    const listed = members.get('rules/telemetry_sids.txt')!.trim().split('\n').map(Number);
    assert.deepEqual(listed.sort(), [...fixtureSids, 9000001, 9000002].sort());

    const noToken = await fetch(`${c.url}/api/v1/ruleset/engine/suricata/5`);
    assert.equal(noToken.status, 401);
    assert.equal((await fetch(`${c.url}/api/v1/ruleset/engine/suricata/7`, { headers: bearer('tok') })).status, 200, 'the engine version in the path is free');
  });

  it('serves a telemetry_sids.txt present in the rules directory as it is', async () => {
    const rules = rulesDirWithFixture();
    writeFileSync(join(rules, 'telemetry_sids.txt'), '2099001\n2099003\n');
    const c = await startCollector({ rulesDir: rules });
    const res = await fetch(`${c.url}/api/v1/ruleset/engine/suricata/5`, { headers: bearer('tok') });
    const members = await listArchive(Buffer.from(await res.arrayBuffer()));
    assert.equal(members.get('rules/telemetry_sids.txt'), '2099001\n2099003\n');
  });

  it('answers conditional requests with 304 on a matching ETag or Last-Modified', async () => {
    const c = await startCollector({ rulesDir: rulesDirWithFixture() });
    const url = `${c.url}/api/v1/ruleset/engine/suricata/5`;
    const first = await fetch(url, { headers: bearer('tok') });
    await first.arrayBuffer();
    const etag = first.headers.get('etag')!;
    const lastModified = first.headers.get('last-modified')!;
    assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.ok(!Number.isNaN(Date.parse(lastModified)));
    assert.equal((await fetch(url, { headers: { ...bearer('tok'), 'if-none-match': etag } })).status, 304);
    assert.equal((await fetch(url, { headers: { ...bearer('tok'), 'if-modified-since': lastModified } })).status, 304);
    assert.equal((await fetch(url, { headers: { ...bearer('tok'), 'if-none-match': '"other"' } })).status, 200);
  });

  it('changes the ruleset version when a rules file changes, and keeps it while nothing changes', async () => {
    const rules = rulesDirWithFixture();
    const c = await startCollector({ rulesDir: rules });
    const version = async (): Promise<string> => {
      const res = await fetch(`${c.url}/api/v1/ruleset/version`, { headers: bearer('tok') });
      assert.equal(res.status, 200);
      return ((await res.json()) as { version: string }).version;
    };
    const v1 = await version();
    assert.match(v1, /^[0-9a-f]{16}$/);
    assert.equal(await version(), v1);
    const etag1 = (await fetch(`${c.url}/api/v1/ruleset/engine/suricata/5`, { headers: bearer('tok') })).headers.get('etag');

    const file = join(rules, 'et-test.rules');
    writeFileSync(file, readFileSync(file, 'utf8') + 'alert tcp any any -> any any (msg:"new"; sid:9100001; rev:1;)\n');
    const v2 = await version();
    assert.notEqual(v2, v1);
    const res = await fetch(`${c.url}/api/v1/ruleset/engine/suricata/5`, { headers: bearer('tok') });
    assert.notEqual(res.headers.get('etag'), etag1);
    const members = await listArchive(Buffer.from(await res.arrayBuffer()));
    assert.match(members.get('rules/telemetry_sids.txt')!, /^9100001$/m);

    // Same content written again (new mtime) gives the same version: it is derived from content.
    utimesSync(file, new Date(), new Date(Date.now() + 5_000));
    assert.equal(await version(), v2);
  });

  it('answers 404 for the ruleset when the rules directory holds no rules', async () => {
    const c = await startCollector({ rulesDir: tempDir('etpro-collector-empty-') });
    assert.equal((await fetch(`${c.url}/api/v1/ruleset/version`, { headers: bearer('tok') })).status, 404);
    const none = await startCollector();
    assert.equal((await fetch(`${none.url}/api/v1/ruleset/engine/suricata/5`, { headers: bearer('tok') })).status, 404);
  });

  it('serves the ET-Open-like archive and its md5 without a token', async () => {
    const c = await startCollector({ rulesDir: rulesDirWithFixture() });
    const res = await fetch(`${c.url}/open/suricata-7.0.10/emerging.rules.tar.gz`);
    assert.equal(res.status, 200);
    const archive = Buffer.from(await res.arrayBuffer());
    const md5 = await (await fetch(`${c.url}/open/suricata-7.0.10/emerging.rules.tar.gz.md5`)).text();
    assert.equal(md5.trim(), createHash('md5').update(archive).digest('hex'));
    assert.ok((await listArchive(archive)).has('rules/et-test.rules'));
    assert.equal(c.requests().every((r) => !r.auth), true);
  });
});

describe('tokens file', () => {
  it('reads tokens with optional statuses, comments and blank lines', () => {
    const d = tempDir('etpro-tokens-');
    const file = join(d, 'tokens');
    writeFileSync(file, '# sensors\nalpha\nbeta   dormant # resting\n\n  gamma DISABLED\r\n');
    assert.deepEqual([...readTokensFile(file)], [
      ['alpha', 'ACTIVE'],
      ['beta', 'DORMANT'],
      ['gamma', 'DISABLED'],
    ]);
  });

  it('names the line of a bad status, and the file when it cannot be read, without showing the token', () => {
    assert.throws(
      () => parseTokens('ok\nsecret-token SLEEPY\n', 'tokens'),
      (err: unknown) => isAgentError(err, 'ERR_TOKENS_FILE') && /line 2/.test(err.message) && !err.message.includes('secret-token'),
    );
    assert.throws(
      () => parseTokens('a b c\n'),
      (err: unknown) => isAgentError(err, 'ERR_TOKENS_FILE') && /line 1/.test(err.message),
    );
    assert.throws(
      () => readTokensFile('/nonexistent/tokens'),
      (err: unknown) => isAgentError(err, 'ERR_TOKENS_FILE') && err.message.includes('/nonexistent/tokens'),
    );
  });
});
