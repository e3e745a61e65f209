import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/logger.js';
import { AutoReloader, createReloader, type ReloaderDeps } from '../../src/suricata/reload-strategy.js';
import { readRulesetStats } from '../../src/suricata/reload-verify.js';
import { UnixSocketControl } from '../../src/suricata/suricata-control.js';
import { hasSuricata, requireOrSkip } from '../helpers/requirements.js';
import { LiveSuricata } from '../helpers/live-suricata.js';

/**
 * A stand-in Docker Engine on a unix socket speaking the few Engine API calls the docker reload
 * uses (ping, inspect, list by label, kill), recording every kill.
 */
class EngineStandIn {
  readonly kills: Array<{ id: string; signal: string }> = [];
  readonly socketPath: string;
  private server: Server;
  constructor(dir: string) {
    this.socketPath = join(dir, 'docker.sock');
    const container = { Id: 'c0ffee'.padEnd(64, '0'), Name: '/suricata', State: { Running: true } };
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://engine');
      const path = url.pathname.replace(/^\/v[\d.]+/, '');
      const json = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (path === '/_ping') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
      if (path === '/containers/suricata/json' || path === `/containers/${container.Id}/json`) return json(200, container);
      if (path === '/containers/json') return json(200, [{ Id: container.Id, Names: ['/suricata'] }]);
      const kill = /^\/containers\/([^/]+)\/kill$/.exec(path);
      if (kill && req.method === 'POST') {
        this.kills.push({ id: kill[1]!, signal: url.searchParams.get('signal') ?? '' });
        return void res.writeHead(204).end();
      }
      json(404, { message: `No such container: ${path}` });
    });
  }
  start(): Promise<void> {
    return new Promise((r) => this.server.listen(this.socketPath, () => r()));
  }
  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

function deps(over: Partial<ReloaderDeps>): ReloaderDeps {
  const dir = mkdtempSync(join(tmpdir(), 'reload-auto-'));
  return {
    control: new UnixSocketControl(join(dir, 'absent.socket')),
    pidfile: join(dir, 'absent.pid'),
    dockerSocket: join(dir, 'absent-docker.sock'),
    container: 'suricata',
    reloadTimeoutMs: 10_000,
    maxFailed: 0,
    log: silentLogger(),
    settleMs: 200,
    ...over,
  };
}

describe('auto reload falls back socket → docker → signal → none', { concurrency: false }, () => {
  let live: LiveSuricata | null = null;
  let engine: EngineStandIn;

  before(async () => {
    engine = new EngineStandIn(mkdtempSync(join(tmpdir(), 'engine-')));
    await engine.start();
    if (!hasSuricata()) return;
    live = new LiveSuricata({ rules: 'alert tcp any any -> any any (msg:"AUTO"; sid:8001; rev:1;)\n' });
    await live.start();
  });
  after(async () => {
    await live?.stop();
    await engine.stop();
  });

  it('uses the control socket when it answers, and verifies the count', async (t) => {
    if (!requireOrSkip(t, live !== null, 'suricata is not installed')) return;
    const auto = new AutoReloader(deps({ control: live!.control, pidfile: live!.pidfile, dockerSocket: engine.socketPath }));
    assert.equal((await auto.choose()).reloader.method, 'socket');
    const r = await auto.reload({ enabledRules: 1 });
    assert.equal(r.method, 'socket');
    assert.equal(r.ok, true, r.error?.message);
    assert.equal(r.loaded, 1);
    assert.match(r.note ?? '', /auto: control socket .* answers/);
  });

  it('uses Docker when the socket does not answer and the Engine does, sending SIGUSR2 to the named container', async () => {
    const before = engine.kills.length;
    const auto = new AutoReloader(deps({ dockerSocket: engine.socketPath }));
    const r = await auto.reload({ enabledRules: 1 });
    assert.equal(r.method, 'docker');
    assert.equal(r.ok, true, r.error?.message);
    assert.equal(r.verified, false);
    assert.deepEqual(engine.kills.slice(before), [{ id: 'c0ffee'.padEnd(64, '0'), signal: 'SIGUSR2' }]);
  });

  it('finds the container by label through the Engine', async () => {
    const before = engine.kills.length;
    const r = await createReloader('docker', deps({ dockerSocket: engine.socketPath, container: 'label=com.docker.compose.service=suricata' })).reload({ enabledRules: 1 });
    assert.equal(r.ok, true, r.error?.message);
    assert.equal(engine.kills.length, before + 1);
  });

  it('reports a missing container with the target named', async () => {
    const r = await createReloader('docker', deps({ dockerSocket: engine.socketPath, container: 'not-there' })).reload({ enabledRules: 1 });
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'ERR_DOCKER');
    assert.match(r.error?.message ?? '', /No container name not-there/);
  });

  it('does not choose Docker when the Engine answers but the Suricata container is not there, and says why in the note', async () => {
    const before = engine.kills.length;
    const auto = new AutoReloader(deps({ dockerSocket: engine.socketPath, container: 'not-there' }));
    const chosen = await auto.choose();
    assert.equal(chosen.reloader.method, 'none');
    assert.match(chosen.why, /Docker Engine answers but the Suricata container is not usable \(No container name not-there/);
    const r = await auto.reload({ enabledRules: 1 });
    assert.equal(r.method, 'none');
    assert.equal(r.ok, true, r.error?.message);
    assert.match(r.note ?? '', /found no way to reload Suricata .*No container name not-there/);
    assert.equal(engine.kills.length, before, 'no signal sent');
  });

  it('uses the pidfile signal when neither the socket nor Docker answers', async (t) => {
    if (!requireOrSkip(t, live !== null, 'suricata is not installed')) return;
    const before = (await readRulesetStats(live!.control)).loaded;
    const auto = new AutoReloader(deps({ pidfile: live!.pidfile }));
    const r = await auto.reload({ enabledRules: 1 });
    assert.equal(r.method, 'signal');
    assert.equal(r.ok, true, r.error?.message);
    assert.equal((await readRulesetStats(live!.control)).loaded, before);
  });

  it('falls back to writing only, with a warning note, when nothing is reachable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reload-auto-none-'));
    writeFileSync(join(dir, 'not-a-socket'), '');
    const r = await new AutoReloader(deps({ dockerSocket: join(dir, 'not-a-socket') })).reload({ enabledRules: 1 });
    assert.equal(r.method, 'none');
    assert.equal(r.ok, true);
    assert.match(r.note ?? '', /found no way to reload Suricata/);
  });
});
