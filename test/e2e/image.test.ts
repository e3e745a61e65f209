import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requireOrSkip } from '../helpers/requirements.js';
import { AGENT_IMAGE, buildAgentImage, freePort, hasDocker, repoRoot, run, runOk, uniqueSuffix, waitFor } from './docker-tools.js';

const dockerOk = hasDocker();
const GRACE_MS = 5_000;

/** A collector stand-in on 127.0.0.1 that acknowledges every event (201) and counts them. */
class AckingCollector {
  events = 0;
  private server: Server | null = null;
  port = 0;
  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/api/v1/event') {
          this.events += 1;
          res.writeHead(201, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        } else if (req.method === 'POST') {
          res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
        } else if (req.url === '/api/v1/sensorinfo') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ACTIVE"}');
        } else {
          res.writeHead(404).end();
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    this.port = typeof a === 'object' && a !== null ? a.port : 0;
  }
  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

describe('container image', () => {
  const suffix = uniqueSuffix();
  const name = `etpro-image-e2e-${suffix}`;
  const stateVolume = `etpro-image-e2e-state-${suffix}`;
  const logDir = mkdtempSync(join(tmpdir(), 'etpro-image-logs-'));
  const collector = new AckingCollector();
  let statusPort = 0;

  before(async () => {
    if (!dockerOk) return;
    await buildAgentImage();
    await collector.start();
    statusPort = await freePort();
    // Real Suricata output, readable by the image's non-root user through a read-only mount.
    copyFileSync(join(repoRoot(), 'test', 'fixtures', 'suricata-capture', 'eve.json'), join(logDir, 'eve.json'));
    chmodSync(logDir, 0o755);
    chmodSync(join(logDir, 'eve.json'), 0o644);
  });

  after(async () => {
    if (dockerOk) {
      await run('docker', ['rm', '-f', name]);
      await run('docker', ['volume', 'rm', '-f', stateVolume]);
    }
    await collector.stop();
    rmSync(logDir, { recursive: true, force: true });
  });

  test('is configured to run as a non-root user with the agent as entrypoint and a /healthz health check', async (t) => {
    if (!requireOrSkip(t, dockerOk, 'no Docker engine (scripts/e2e-prereqs.sh starts one)')) return;
    const cfg = JSON.parse(await runOk('docker', ['image', 'inspect', '-f', '{{json .Config}}', AGENT_IMAGE])) as {
      User: string;
      Entrypoint: string[];
      Cmd: string[];
      Healthcheck?: { Test: string[] };
    };
    assert.equal(cfg.User, '10001:10001');
    assert.deepEqual(cfg.Entrypoint, ['etpro-sidecar']);
    assert.deepEqual(cfg.Cmd, ['run']);
    assert.match(JSON.stringify(cfg.Healthcheck?.Test ?? []), /\/healthz/);
    // No dev dependencies and no TypeScript sources in the runtime image.
    const listing = await runOk('docker', ['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', AGENT_IMAGE, '-c',
      'ls /opt/etpro-sidecar/node_modules; ls /opt/etpro-sidecar; command -v npm || echo no-npm']);
    for (const devOnly of ['typescript', 'tsx', 'kubernetes-models']) assert.doesNotMatch(listing, new RegExp(`^${devOnly}$`, 'm'), `${devOnly} is a dev dependency`);
    assert.doesNotMatch(listing, /^src$/m);
    assert.match(listing, /no-npm/);
  });

  test('runs read-only as non-root, answers /healthz, and on SIGTERM exits 0 within the grace period leaving a checkpoint', async (t) => {
    if (!requireOrSkip(t, dockerOk, 'no Docker engine (scripts/e2e-prereqs.sh starts one)')) return;
    await runOk('docker', [
      'run', '-d', '--name', name, '--network', 'host', '--read-only', '--tmpfs', '/tmp',
      '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
      '-v', `${stateVolume}:/var/lib/etpro-sidecar`, '-v', `${logDir}:/var/log/suricata:ro`,
      '-e', `ETPRO_STATUS_PORT=${statusPort}`, '-e', `ETPRO_BASE_URL=http://127.0.0.1:${collector.port}`,
      '-e', 'ETPRO_TOKEN=image-test-token', '-e', 'ETPRO_START_AT=beginning', '-e', 'ETPRO_RULES_UPDATE_ENABLED=false',
      '-e', 'ETPRO_HEARTBEAT_ENABLED=false', '-e', 'ETPRO_RELOAD=none', '-e', 'ETPRO_SURICATA_YAML=/nonexistent/suricata.yaml',
      '-e', `ETPRO_SHUTDOWN_GRACE_MS=${GRACE_MS}`, '-e', 'ETPRO_POLL_INTERVAL_MS=100',
      AGENT_IMAGE,
    ]);
    const logs = async (): Promise<string> => {
      const r = await run('docker', ['logs', '--tail', '60', name]);
      return r.stdout + r.stderr;
    };
    try {
      const health = await waitFor('/healthz of the agent in the container', 60_000, async () => {
        const state = (await runOk('docker', ['inspect', '-f', '{{.State.Status}}', name])).trim();
        if (state !== 'running') throw new Error(`container is ${state}`);
        const res = await fetch(`http://127.0.0.1:${statusPort}/healthz`, { signal: AbortSignal.timeout(2_000) });
        return res.status === 200 ? res.status : undefined;
      });
      assert.equal(health, 200);
      assert.equal((await runOk('docker', ['exec', name, 'id', '-u'])).trim(), '10001');
      const write = await run('docker', ['exec', name, '/bin/sh', '-c', 'touch /opt/etpro-sidecar/x']);
      assert.notEqual(write.code, 0, 'the root filesystem is read-only');
      // The fixture's alerts reach the collector before the stop, so the checkpoint has moved.
      await waitFor('alerts acknowledged by the collector', 60_000, async () => (collector.events > 0 ? collector.events : undefined));
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- container log ---\n${await logs()}`);
    }

    const started = Date.now();
    await runOk('docker', ['kill', '--signal', 'TERM', name]);
    const exitCode = await waitFor('the container to exit after SIGTERM', GRACE_MS + 10_000, async () => {
      const [status, code] = (await runOk('docker', ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', name])).trim().split(' ');
      return status === 'exited' ? Number(code) : undefined;
    }, 100);
    const tookMs = Date.now() - started;
    t.diagnostic(`SIGTERM to exit: ${tookMs} ms; events acknowledged: ${collector.events}`);
    assert.equal(exitCode, 0, `exit code after SIGTERM\n${await logs()}`);
    assert.ok(tookMs <= GRACE_MS + 2_000, `exited after ${tookMs} ms, grace period is ${GRACE_MS} ms`);

    const checkpoint = JSON.parse(
      await runOk('docker', ['run', '--rm', '--network', 'none', '-v', `${stateVolume}:/state:ro`, '--entrypoint', 'cat', AGENT_IMAGE, '/state/checkpoint.json']),
    ) as Record<string, unknown>;
    assert.match(JSON.stringify(checkpoint), /offset/i, 'the checkpoint records a position in eve.json');
  });
});
