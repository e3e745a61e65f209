import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ReferenceCollector } from '../../src/collector/reference-collector.js';
import { loadConfig } from '../../src/config.js';
import { isAgentError } from '../../src/errors.js';
import { createLogger, silentLogger, type Logger } from '../../src/logger.js';
import { RulesStore } from '../../src/rules/rules-store.js';
import { rulesHealthProblem, rulesUpdaterConfig, RulesUpdater } from '../../src/rules/rules-updater.js';
import type { SubscriptionStatus } from '../../src/status/sensorinfo-poller.js';
import type { Reloader, ReloadExpectation, ReloadResult } from '../../src/suricata/reload-verify.js';
import { UnixSocketControl } from '../../src/suricata/suricata-control.js';
import { buildArchive, rulesArchive, type ArchiveMember } from '../helpers/rules-archive.js';

const TOKEN = 'test-token-rules';
const rule = (sid: number, msg: string, on = true): string => `${on ? '' : '# '}alert http any any -> any any (msg:"${msg}"; http.uri; content:"/r${sid}"; sid:${sid}; rev:1;)`;

const OPEN_FILES = {
  'emerging-malware.rules': [rule(3001, 'ET MALWARE a'), rule(3002, 'ET MALWARE b'), rule(3003, 'ET MALWARE c off', false)].join('\n'),
  'emerging-scan.rules': [rule(3101, 'ET SCAN a'), rule(3102, 'ET SCAN heartbleed')].join('\n'),
  'emerging-deleted.rules': rule(3999, 'ET DELETED'),
  'classification.config': 'config classification: misc-activity,Misc activity,3\n',
};

/** A local server posing as ET Open: serves one archive and its .md5, records every request. */
class EtOpenServer {
  archive: Buffer = rulesArchive(OPEN_FILES);
  md5Text: string | null = null;
  etag: string | null = null;
  contentLength: number | null = null;
  readonly requests: Array<{ path: string; ifNoneMatch?: string }> = [];
  private server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    this.requests.push({ path, ...(req.headers['if-none-match'] ? { ifNoneMatch: String(req.headers['if-none-match']) } : {}) });
    if (path === '/open/suricata-7.0.10/emerging.rules.tar.gz.md5') {
      const text = this.md5Text ?? `${createHash('md5').update(this.archive).digest('hex')}  emerging.rules.tar.gz\n`;
      if (this.md5Text === '') return res.writeHead(404).end();
      return res.writeHead(200, { 'content-type': 'text/plain' }).end(text);
    }
    if (path === '/open/suricata-7.0.10/emerging.rules.tar.gz') {
      if (this.etag !== null && req.headers['if-none-match'] === this.etag) return res.writeHead(304).end();
      const headers: Record<string, string | number> = { 'content-type': 'application/gzip', 'content-length': this.contentLength ?? this.archive.length };
      if (this.etag !== null) headers['etag'] = this.etag;
      res.writeHead(200, headers);
      return res.end(this.contentLength !== null && this.contentLength < this.archive.length ? this.archive.subarray(0, this.contentLength) : this.archive);
    }
    res.writeHead(404).end();
  });
  url = '';
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
  archiveRequests(): number {
    return this.requests.filter((r) => r.path.endsWith('.tar.gz')).length;
  }
}

/** Records what it was asked to reload and answers ok, like ETPRO_RELOAD=none with a memory. */
class RecordingReloader implements Reloader {
  readonly method = 'none' as const;
  readonly calls: ReloadExpectation[] = [];
  async reload(expect: ReloadExpectation): Promise<ReloadResult> {
    this.calls.push(expect);
    return { method: 'none', ok: true, verified: false, loaded: null, failed: null, skipped: null, durationMs: 0 };
  }
}

/** Answers each reload with the next scripted result (the last one repeats), recording the calls. */
class ScriptedReloader implements Reloader {
  readonly method = 'docker' as const;
  readonly calls: ReloadExpectation[] = [];
  constructor(private readonly script: ReloadResult[]) {}
  async reload(expect: ReloadExpectation): Promise<ReloadResult> {
    this.calls.push(expect);
    return this.script.length > 1 ? this.script.shift()! : this.script[0]!;
  }
}

const RELOAD_OK: ReloadResult = { method: 'docker', ok: true, verified: false, loaded: null, failed: null, skipped: null, durationMs: 0 };
const RELOAD_NO_CONTAINER: ReloadResult = { method: 'docker', ok: false, verified: false, loaded: null, failed: null, skipped: null, durationMs: 0, error: { code: 'ERR_DOCKER', message: 'No container name suricata (ETPRO_SURICATA_CONTAINER).' } };

/** A JSON logger whose lines the test can read back. */
function recordingLogger(): { log: Logger; records: () => Promise<Array<Record<string, unknown>>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const log = createLogger('debug', 'json', stream);
  return {
    log,
    records: async () => {
      await new Promise((r) => setImmediate(r));
      return chunks.join('').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

interface Setup {
  updater: RulesUpdater;
  reloader: Reloader & { calls: ReloadExpectation[] };
  root: string;
  rulesDir: string;
  stateDir: string;
  status: { value: SubscriptionStatus };
}

interface SetupOptions {
  /** Reuse the rules and state dirs of an earlier setup. */
  root?: string;
  log?: Logger;
  reloader?: Reloader & { calls: ReloadExpectation[] };
}

function setup(env: Record<string, string>, baseUrl: string, openUrl: string, status: SubscriptionStatus = 'UNCONFIGURED', opts: SetupOptions = {}): Setup {
  const root = opts.root ?? mkdtempSync(join(tmpdir(), 'rules-update-'));
  const rulesDir = join(root, 'rules');
  const stateDir = join(root, 'state');
  const cfg = loadConfig({
    ETPRO_RULES_DIR: rulesDir,
    ETPRO_STATE_DIR: stateDir,
    ETPRO_BASE_URL: baseUrl,
    ETPRO_ET_OPEN_URL: `${openUrl}/open/suricata-%v/emerging.rules.tar.gz`,
    ETPRO_SURICATA_VERSION: '7.0.10',
    ETPRO_SURICATA_SOCKET: join(root, 'no-such.socket'),
    ETPRO_RELOAD: 'none',
    ETPRO_PLATFORM: 'host',
    ...env,
  });
  const reloader = opts.reloader ?? new RecordingReloader();
  const st = { value: status };
  const updater = new RulesUpdater(rulesUpdaterConfig(cfg), { subscription: () => st.value, control: new UnixSocketControl(cfg.suricata.socket), reloader }, opts.log ?? silentLogger());
  return { updater, reloader, root, rulesDir, stateDir, status: st };
}

function sidsIn(rulesText: string): { on: number[]; off: number[] } {
  const on: number[] = [];
  const off: number[] = [];
  for (const line of rulesText.split('\n')) {
    const m = /sid:(\d+);/.exec(line);
    if (m) (line.startsWith('#') ? off : on).push(Number(m[1]));
  }
  return { on: on.sort(), off: off.sort() };
}

/** Name → [mtimeMs, content] of every file in a directory: "nothing on disk changed" means this is equal. */
function snapshot(dir: string): Record<string, [number, string]> {
  const out: Record<string, [number, string]> = {};
  for (const name of readdirSync(dir)) out[name] = [statSync(join(dir, name)).mtimeMs, readFileSync(join(dir, name), 'utf8')];
  return out;
}

describe('rules update against ET Open and the reference collector', () => {
  const open = new EtOpenServer();
  let collector: ReferenceCollector;
  let proRulesDir: string;

  before(async () => {
    await open.start();
    proRulesDir = mkdtempSync(join(tmpdir(), 'collector-rules-'));
    writeFileSync(join(proRulesDir, 'emerging-pro.rules'), [rule(4001, 'ETPRO one'), rule(4002, 'ETPRO two')].join('\n'));
    writeFileSync(join(proRulesDir, 'telemetry_sids.txt'), '4001\n');
    collector = new ReferenceCollector({ port: 0, host: '127.0.0.1', dataDir: null, rulesDir: proRulesDir, tokens: new Map([[TOKEN, 'ACTIVE']]) }, silentLogger());
    await collector.start();
  });
  after(async () => {
    await open.stop();
    await collector.stop();
  });

  it('installs ET Open on a fresh rules dir when no token is set, writing every file and reloading once', async () => {
    open.archive = rulesArchive(OPEN_FILES);
    const s = setup({}, collector.url, open.url);
    const result = await s.updater.update();
    assert.equal(result.outcome, 'installed');
    assert.equal(result.source, 'etopen');
    assert.match(result.reason, /No ET Pro token/);
    assert.deepEqual(sidsIn(readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8')), { on: [3001, 3002, 3101, 3102], off: [3003] });
    assert.equal(readFileSync(join(s.rulesDir, 'classification.config'), 'utf8'), OPEN_FILES['classification.config']);
    const v = JSON.parse(readFileSync(join(s.rulesDir, 'telemetry_version.json'), 'utf8'));
    assert.equal(v.source, 'etopen');
    assert.equal(v.md5, createHash('md5').update(open.archive).digest('hex'));
    assert.equal(v.ruleCount, 4);
    assert.deepEqual(s.reloader.calls, [{ enabledRules: 4 }]);
    const st = s.updater.status();
    assert.equal(st.source, 'etopen');
    assert.equal(st.ruleCount, 4);
    assert.equal(st.lastOutcome, 'installed');
    assert.ok(st.lastCheckAt && st.lastUpdateAt);
    assert.deepEqual(readdirSync(s.rulesDir).filter((n) => n.includes('.tmp')), [], 'no temp files left');
  });

  it('does not download, write or reload when the ET Open .md5 is unchanged, and --force overrides', async () => {
    open.archive = rulesArchive(OPEN_FILES);
    const s = setup({}, collector.url, open.url);
    await s.updater.update();
    const past = new Date(Date.now() - 60_000);
    for (const n of readdirSync(s.rulesDir)) utimesSync(join(s.rulesDir, n), past, past);
    const before = snapshot(s.rulesDir);
    const archivesBefore = open.archiveRequests();
    const again = await s.updater.update();
    assert.equal(again.outcome, 'unchanged');
    assert.equal(open.archiveRequests(), archivesBefore, 'archive not requested');
    assert.deepEqual(snapshot(s.rulesDir), before, 'files and mtimes unchanged');
    assert.equal(s.reloader.calls.length, 1, 'no second reload');
    const forced = await s.updater.update({ force: true });
    assert.equal(forced.outcome, 'installed');
    assert.equal(open.archiveRequests(), archivesBefore + 1);
    assert.equal(s.reloader.calls.length, 2);
  });

  it('sends If-None-Match when no .md5 is offered and treats 304 as unchanged', async () => {
    open.archive = rulesArchive(OPEN_FILES);
    open.md5Text = '';
    open.etag = '"etag-v1"';
    try {
      const s = setup({}, collector.url, open.url);
      assert.equal((await s.updater.update()).outcome, 'installed');
      const again = await s.updater.update();
      assert.equal(again.outcome, 'unchanged');
      assert.equal(open.requests.at(-1)?.ifNoneMatch, '"etag-v1"');
      assert.equal(s.reloader.calls.length, 1);
    } finally {
      open.md5Text = null;
      open.etag = null;
    }
  });

  it('installs ET Pro from the collector when ACTIVE, then only asks for the version while it is unchanged', async () => {
    const s = setup({ ETPRO_TOKEN: TOKEN }, collector.url, open.url, 'ACTIVE');
    const first = await s.updater.update();
    assert.equal(first.source, 'etpro');
    assert.equal(first.outcome, 'installed');
    assert.deepEqual(sidsIn(readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8')), { on: [4001, 4002], off: [] });
    assert.equal(readFileSync(join(s.rulesDir, 'telemetry_sids.txt'), 'utf8'), '4001\n');
    const served = (await (await fetch(`${collector.url}/api/v1/ruleset/version`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { version: string };
    assert.equal(JSON.parse(readFileSync(join(s.rulesDir, 'telemetry_version.json'), 'utf8')).version, served.version);
    assert.equal(first.telemetrySidCount, 1);

    const seen = collector.requests().length;
    const again = await s.updater.update();
    assert.equal(again.outcome, 'unchanged');
    assert.deepEqual(
      collector.requests().slice(seen).map((r) => r.path),
      ['/api/v1/ruleset/version'],
    );

    writeFileSync(join(proRulesDir, 'emerging-pro.rules'), [rule(4001, 'ETPRO one'), rule(4002, 'ETPRO two'), rule(4003, 'ETPRO three')].join('\n'));
    const updated = await s.updater.update();
    assert.equal(updated.outcome, 'installed');
    assert.deepEqual(sidsIn(readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8')).on, [4001, 4002, 4003]);
    assert.equal(s.reloader.calls.length, 2);
  });

  it('falls back to ET Open when ET Pro fails, and says why on status', async () => {
    const s = setup({ ETPRO_TOKEN: 'unknown-token' }, collector.url, open.url, 'ACTIVE');
    const result = await s.updater.update();
    assert.equal(result.source, 'etopen');
    assert.match(result.reason, /ET Pro failed \(ERR_RULES_DOWNLOAD: .*HTTP 401/);
    assert.match(s.updater.status().reason ?? '', /ET Pro failed/);
    assert.deepEqual(sidsIn(readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8')).on, [3001, 3002, 3101, 3102]);
  });

  it('uses ET Open without asking ET Pro when the subscription is DISABLED', async () => {
    const s = setup({ ETPRO_TOKEN: TOKEN }, collector.url, open.url, 'DISABLED');
    const seen = collector.requests().length;
    const result = await s.updater.update();
    assert.equal(result.source, 'etopen');
    assert.match(result.reason, /DISABLED/);
    assert.equal(collector.requests().length, seen, 'ET Pro not asked');
  });

  it('selects categories and applies disable, enable and modify lists, writing exactly the expected SIDs', async () => {
    open.archive = rulesArchive(OPEN_FILES);
    const conf = mkdtempSync(join(tmpdir(), 'rules-conf-'));
    writeFileSync(join(conf, 'disable.conf'), '# turn off\n3001\nre:heartbleed\n');
    writeFileSync(join(conf, 'enable.conf'), '3003\n3102\n');
    writeFileSync(join(conf, 'modify.conf'), '3002 "^alert" "drop"\n');
    const s = setup(
      { ETPRO_CATEGORIES: 'emerging-malware,emerging-scan', ETPRO_DISABLE: join(conf, 'disable.conf'), ETPRO_ENABLE: join(conf, 'enable.conf'), ETPRO_MODIFY: join(conf, 'modify.conf') },
      collector.url,
      open.url,
    );
    await s.updater.update();
    const text = readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8');
    assert.deepEqual(sidsIn(text), { on: [3002, 3003, 3101, 3102], off: [3001] });
    assert.match(text, /^drop http .*sid:3002;/m);

    const only = setup({ ETPRO_CATEGORIES: 'emerging-scan' }, collector.url, open.url);
    await only.updater.update();
    assert.deepEqual(sidsIn(readFileSync(join(only.rulesDir, 'suricata.rules'), 'utf8')), { on: [3101, 3102], off: [] });
  });

  it('rebuilds the set when the selection lists change even though the archive did not', async () => {
    open.archive = rulesArchive(OPEN_FILES);
    const conf = mkdtempSync(join(tmpdir(), 'rules-conf-'));
    writeFileSync(join(conf, 'disable.conf'), '');
    const s = setup({ ETPRO_DISABLE: join(conf, 'disable.conf') }, collector.url, open.url);
    await s.updater.update();
    writeFileSync(join(conf, 'disable.conf'), '3101\n');
    const result = await s.updater.update();
    assert.equal(result.outcome, 'installed');
    assert.deepEqual(sidsIn(readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8')).off, [3003, 3101]);
  });

  describe('hostile or broken archives change nothing on disk', () => {
    const good = (): ArchiveMember[] => [{ path: 'rules/emerging-malware.rules', content: OPEN_FILES['emerging-malware.rules'] }];
    const cases: Array<{ name: string; archive: () => Buffer; md5?: string; code: string; reason: string; message: RegExp; env?: Record<string, string> }> = [
      { name: 'a ../ member', archive: () => buildArchive([...good(), { path: 'rules/../../x', content: 'x' }]), code: 'ERR_RULES_ARCHIVE', reason: 'parent-dir', message: /"rules\/\.\.\/\.\.\/x" climbs out/ },
      { name: 'an absolute path', archive: () => buildArchive([...good(), { path: '/tmp/evil.rules', content: 'x' }]), code: 'ERR_RULES_ARCHIVE', reason: 'absolute-path', message: /"\/tmp\/evil\.rules" has an absolute path/ },
      { name: 'a symlink', archive: () => buildArchive([...good(), { path: 'rules/x.rules', type: 'SymbolicLink', linkpath: '/etc/shadow' }]), code: 'ERR_RULES_ARCHIVE', reason: 'link', message: /symbolic link/ },
      {
        name: 'an oversized member',
        archive: () => buildArchive([...good(), { path: 'rules/huge.rules', content: '#'.repeat(2 * 1_048_576) }]),
        code: 'ERR_RULES_ARCHIVE',
        reason: 'too-large',
        message: /more than 1048576 bytes \(member "rules\/huge\.rules"/,
        env: { ETPRO_RULES_MAX_MB: '1' },
      },
      { name: 'a corrupt gzip', archive: () => Buffer.concat([rulesArchive(OPEN_FILES).subarray(0, 40), Buffer.alloc(200, 7)]), code: 'ERR_RULES_ARCHIVE', reason: 'corrupt', message: /not a valid gzip'd tar/ },
      { name: 'a wrong md5', archive: () => rulesArchive({ 'emerging-x.rules': rule(3500, 'X') }), md5: `${'ab'.repeat(16)}\n`, code: 'ERR_RULES_CHECKSUM', reason: 'checksum', message: /does not match the published abab/ },
    ];
    for (const c of cases) {
      it(`refuses ${c.name} with a precise error`, async () => {
        open.archive = rulesArchive(OPEN_FILES);
        const s = setup(c.env ?? {}, collector.url, open.url);
        await s.updater.update();
        const past = new Date(Date.now() - 60_000);
        for (const n of readdirSync(s.rulesDir)) utimesSync(join(s.rulesDir, n), past, past);
        const beforeRules = snapshot(s.rulesDir);
        const beforeState = readdirSync(s.stateDir).sort();
        open.archive = c.archive();
        open.md5Text = c.md5 ?? null;
        try {
          await assert.rejects(s.updater.update(), (err: unknown) => {
            assert.ok(isAgentError(err), String(err));
            assert.equal(err.code, c.code);
            assert.equal(err.details['reason'], c.reason);
            assert.match(err.message, c.message);
            return true;
          });
        } finally {
          open.md5Text = null;
        }
        assert.deepEqual(snapshot(s.rulesDir), beforeRules, 'rules dir untouched');
        assert.deepEqual(readdirSync(s.stateDir).sort(), beforeState, 'no stray files in the state dir');
        assert.equal(s.reloader.calls.length, 1, 'no reload');
        const st = s.updater.status();
        assert.equal(st.lastOutcome, 'failed');
        assert.equal(st.lastError?.code, c.code);
      });
    }

    it('refuses a download larger than ETPRO_RULES_MAX_MB from its Content-Length', async () => {
      open.archive = Buffer.alloc(2 * 1_048_576 + 10, 1);
      const s = setup({ ETPRO_RULES_MAX_MB: '1' }, collector.url, open.url);
      mkdirSync(s.rulesDir, { recursive: true });
      await assert.rejects(s.updater.update(), (err: unknown) => isAgentError(err, 'ERR_RULES_ARCHIVE') && err.details['reason'] === 'too-large' && /sends more than 1048576 bytes/.test(err.message));
      assert.deepEqual(readdirSync(s.rulesDir), []);
    });
  });

  describe('an ET Pro outage keeps the installed ET Pro set instead of replacing it with ET Open', () => {
    let down: Server;
    let downUrl = '';
    /** While true the stand-in answers 503; else it forwards to the reference collector. */
    let failing = true;
    let refusedUrl = '';
    before(async () => {
      down = createServer((req, res) => {
        if (failing) return void res.writeHead(503, { 'content-type': 'text/plain' }).end('maintenance');
        void fetch(`${collector.url}${req.url ?? '/'}`, { headers: { authorization: String(req.headers.authorization ?? '') } }).then(async (r) => {
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' }).end(Buffer.from(await r.arrayBuffer()));
        });
      });
      await new Promise<void>((r) => down.listen(0, '127.0.0.1', () => r()));
      downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
      refusedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
      await new Promise<void>((r) => closed.close(() => r()));
    });
    after(async () => {
      down.closeAllConnections();
      await new Promise<void>((r) => down.close(() => r()));
    });

    const cases: Array<{ name: string; baseUrl: () => string; token: string; status: SubscriptionStatus; message: RegExp; httpCode?: number }> = [
      { name: 'the ET Pro server refuses the connection', baseUrl: () => refusedUrl, token: TOKEN, status: 'ACTIVE', message: /cannot reach .*ECONNREFUSED/ },
      { name: 'ET Pro answers 503', baseUrl: () => downUrl, token: TOKEN, status: 'ACTIVE', message: /HTTP 503/, httpCode: 503 },
      { name: 'ET Pro answers 503 while the subscription status is ERROR', baseUrl: () => downUrl, token: TOKEN, status: 'ERROR', message: /HTTP 503/, httpCode: 503 },
      { name: 'ET Pro answers 401', baseUrl: () => collector.url, token: 'revoked-token', status: 'DORMANT', message: /HTTP 401/, httpCode: 401 },
    ];
    for (const c of cases) {
      it(`keeps the installed ET Pro set, writes and reloads nothing, and says why when ${c.name}`, async () => {
        const first = setup({ ETPRO_TOKEN: TOKEN }, collector.url, open.url, 'ACTIVE');
        const installed = await first.updater.update();
        assert.equal(installed.source, 'etpro');
        const past = new Date(Date.now() - 60_000);
        for (const n of readdirSync(first.rulesDir)) utimesSync(join(first.rulesDir, n), past, past);
        const beforeRules = snapshot(first.rulesDir);
        const openRequests = open.requests.length;

        const rec = recordingLogger();
        const s = setup({ ETPRO_TOKEN: c.token }, c.baseUrl(), open.url, c.status, { root: first.root, log: rec.log });
        const result = await s.updater.update();
        assert.equal(result.outcome, 'unchanged');
        assert.equal(result.source, 'etpro');
        assert.equal(result.version, installed.version);
        assert.match(result.reason, /ET Pro unavailable \(ERR_RULES_DOWNLOAD: .*\): kept the installed ET Pro set/);
        assert.match(result.reason, c.message);
        assert.deepEqual(snapshot(s.rulesDir), beforeRules, 'rules dir untouched');
        assert.equal(JSON.parse(readFileSync(join(s.rulesDir, 'telemetry_version.json'), 'utf8')).source, 'etpro');
        assert.equal(s.reloader.calls.length, 0, 'no reload');
        assert.equal(open.requests.length, openRequests, 'ET Open not asked');

        const st = s.updater.status();
        assert.equal(st.lastOutcome, 'unchanged');
        assert.equal(st.source, 'etpro');
        assert.match(st.reason ?? '', /kept the installed ET Pro set/);
        assert.equal(st.lastError?.code, 'ERR_RULES_DOWNLOAD');
        assert.match(st.lastError?.message ?? '', c.message);

        const warn = (await rec.records()).find((r) => r['level'] === 'warn' && /keeping the installed ET Pro set/.test(String(r['message'])));
        assert.ok(warn, 'a warning is logged');
        assert.match(String(warn['error']), c.message);
        assert.equal(warn['httpCode'], c.httpCode);
      });
    }

    it('clears lastError once ET Pro answers again', async () => {
      const s = setup({ ETPRO_TOKEN: TOKEN }, downUrl, open.url, 'ACTIVE');
      failing = false;
      try {
        assert.equal((await s.updater.update()).source, 'etpro');
        failing = true;
        await s.updater.update();
        assert.equal(s.updater.status().lastError?.code, 'ERR_RULES_DOWNLOAD');
        failing = false;
        const again = await s.updater.update();
        assert.equal(again.outcome, 'unchanged');
        assert.doesNotMatch(again.reason, /unavailable/);
        assert.equal(s.updater.status().lastError, null);
      } finally {
        failing = true;
      }
    });
  });

  describe('a failed reload on a first install with no last-known-good set', () => {
    it('keeps the new files in place instead of emptying the rules dir, and reports it', async () => {
      open.archive = rulesArchive({ ...OPEN_FILES, 'telemetry_sids.txt': '3001\n' });
      const rec = recordingLogger();
      const reloader = new ScriptedReloader([RELOAD_NO_CONTAINER]);
      const s = setup({}, collector.url, open.url, 'UNCONFIGURED', { log: rec.log, reloader });
      const result = await s.updater.update();
      assert.equal(result.outcome, 'rolled-back');
      assert.equal(result.reload?.error?.code, 'ERR_DOCKER');
      assert.equal(result.rollback?.ok, false);
      assert.match(result.rollback?.reason ?? '', /No container name suricata.*; no last-known-good set to roll back to; the new files stay/);
      assert.equal(reloader.calls.length, 1, 'no second reload of an empty set');
      assert.deepEqual(sidsIn(readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8')).on, [3001, 3002, 3101, 3102]);
      assert.equal(readFileSync(join(s.rulesDir, 'telemetry_sids.txt'), 'utf8'), '3001\n');
      assert.equal(JSON.parse(readFileSync(join(s.rulesDir, 'telemetry_version.json'), 'utf8')).source, 'etopen');

      const st = s.updater.status();
      assert.equal(st.lastOutcome, 'rolled-back');
      assert.equal(st.lastError?.code, 'ERR_DOCKER');
      assert.match(st.lastError?.message ?? '', /no last-known-good set to roll back to; the new files stay/);
      assert.equal(st.rollback?.ok, false);
      assert.equal(st.rulesFilePresent, true);
      assert.equal(st.ruleCount, 4);
      assert.match(rulesHealthProblem(st) ?? '', /^The last rules update failed and the rollback did not restore a working set \(.*no last-known-good set/);
      const logged = (await rec.records()).find((r) => r['level'] === 'error' && /no last-known-good set to roll back to; the new files stay/.test(String(r['message'])));
      assert.ok(logged, 'the error is logged');
    });

    it('still rolls back to a real last-known-good set, and a restore that reloads is healthy', async () => {
      open.archive = rulesArchive(OPEN_FILES);
      const reloader = new ScriptedReloader([RELOAD_OK, RELOAD_NO_CONTAINER, RELOAD_OK]);
      const s = setup({}, collector.url, open.url, 'UNCONFIGURED', { reloader });
      await s.updater.update();
      assert.equal(rulesHealthProblem(s.updater.status()), null);
      const good = readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8');
      open.archive = rulesArchive({ 'emerging-new.rules': rule(3201, 'ET NEW') });
      const result = await s.updater.update();
      assert.equal(result.outcome, 'rolled-back');
      assert.equal(result.rollback?.ok, true);
      assert.equal(readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8'), good);
      assert.equal(rulesHealthProblem(s.updater.status()), null);
    });

    it('restoreLastKnownGood refuses a copy without suricata.rules and leaves the rules dir alone', async () => {
      const root = mkdtempSync(join(tmpdir(), 'rules-store-'));
      const store = new RulesStore(join(root, 'rules'), join(root, 'state'));
      mkdirSync(store.rulesDir, { recursive: true });
      await store.snapshotLastKnownGood();
      await store.install({ 'suricata.rules': `${rule(1, 'new')}\n`, 'telemetry_sids.txt': '1\n' });
      assert.equal(await store.hasLastKnownGood(), false);
      await assert.rejects(store.restoreLastKnownGood(), (err: unknown) => isAgentError(err, 'ERR_RULES_ARCHIVE') && err.details['reason'] === 'no-last-known-good');
      assert.deepEqual(readdirSync(store.rulesDir).sort(), ['suricata.rules', 'telemetry_sids.txt']);
    });

    it('rulesHealthProblem names a rules dir left without suricata.rules after an update', async () => {
      open.archive = rulesArchive(OPEN_FILES);
      const s = setup({}, collector.url, open.url);
      await s.updater.update();
      rmSync(join(s.rulesDir, 'suricata.rules'));
      open.md5Text = `${'ab'.repeat(16)}\n`;
      try {
        await assert.rejects(s.updater.update());
      } finally {
        open.md5Text = null;
      }
      assert.equal(existsSync(join(s.rulesDir, 'suricata.rules')), false);
      assert.match(rulesHealthProblem(s.updater.status()) ?? '', /^The rules dir has no suricata\.rules after the last rules update \(failed: ERR_RULES_CHECKSUM\)\.$/);
    });
  });

  it('warns about rule lines that are not rules and telemetry SIDs without a rule instead of dropping them silently', async () => {
    const broken = [
      rule(3001, 'ET MALWARE a'),
      'alert http any any -> any any (msg:"x"; content:"x" sid:2099099;)',
      '# a comment',
      '',
      'this is not a rule at all',
    ].join('\n');
    open.archive = rulesArchive({ 'emerging-malware.rules': broken, 'emerging-scan.rules': OPEN_FILES['emerging-scan.rules'], 'telemetry_sids.txt': '3001\n2099099\n3101\n' });
    const rec = recordingLogger();
    const s = setup({}, collector.url, open.url, 'UNCONFIGURED', { log: rec.log });
    const result = await s.updater.update();
    assert.equal(result.outcome, 'installed');
    assert.equal(result.skippedLines, 2);
    assert.equal(result.telemetrySidsNotInRules, 1);
    assert.equal(result.telemetrySidCount, 3);
    assert.equal(readFileSync(join(s.rulesDir, 'telemetry_sids.txt'), 'utf8'), '3001\n2099099\n3101\n', 'the SID list is written as the archive gave it');
    assert.ok(!readFileSync(join(s.rulesDir, 'suricata.rules'), 'utf8').includes('2099099'));
    const st = s.updater.status();
    assert.equal(st.skippedLines, 2);
    assert.equal(st.telemetrySidsNotInRules, 1);

    const warns = (await rec.records()).filter((r) => r['level'] === 'warn');
    const skipped = warns.filter((r) => /neither comments nor parseable rules/.test(String(r['message'])));
    assert.equal(skipped.length, 1, 'one warning per update');
    assert.equal(skipped[0]!['skippedLines'], 2);
    assert.deepEqual(skipped[0]!['files'], [{ file: 'rules/emerging-malware.rules', count: 2, firstLine: 2 }]);
    const sids = warns.find((r) => /telemetry SIDs have no rule/.test(String(r['message'])));
    assert.ok(sids, 'telemetry SID gap logged');
    assert.equal(sids['telemetrySidsNotInRules'], 1);
    assert.deepEqual(sids['examples'], [2099099]);
  });

  it('refuses a second updater of the same state dir while one is running', async () => {
    open.archive = rulesArchive(OPEN_FILES);
    const a = setup({}, collector.url, open.url);
    const other = new RulesUpdater(
      rulesUpdaterConfig(loadConfig({ ETPRO_RULES_DIR: a.rulesDir, ETPRO_STATE_DIR: a.stateDir, ETPRO_ET_OPEN_URL: `${open.url}/open/suricata-%v/emerging.rules.tar.gz`, ETPRO_SURICATA_VERSION: '7.0.10', ETPRO_PLATFORM: 'host' })),
      { subscription: () => 'UNCONFIGURED', control: new UnixSocketControl('/nonexistent.sock'), reloader: new RecordingReloader() },
      silentLogger(),
    );
    const results = await Promise.allSettled([a.updater.update(), other.update()]);
    const codes = results.map((r) => (r.status === 'fulfilled' ? r.value.outcome : (r.reason as { code?: string }).code));
    assert.deepEqual(codes.sort(), ['ERR_RULES_LOCKED', 'installed']);
  });
});
