import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requireOrSkip } from '../helpers/requirements.js';
import { AGENT_IMAGE, buildAgentImage, composeCommand, dockerSocketGid, freePort, hasDocker, repoRoot, run, runOk, uniqueSuffix, waitFor } from './docker-tools.js';

const compose = hasDocker() ? composeCommand() : null;
const DEMO_SIDS = [9100001, 9100002];
const NEW_SID = 9100010;

type EveAlert = {
  src_ip?: string;
  dest_ip?: string;
  alert?: { signature_id?: number; signature?: string; category?: string };
  http?: { url?: string; http_user_agent?: string; hostname?: string };
};

/**
 * One docker-compose project made from a copy of deploy/ with its own .env, so the repository's
 * files stay untouched and every project name, port and volume is unique to the run.
 */
class ComposeProject {
  readonly dir: string;
  readonly name: string;
  private readonly files: string[];

  constructor(
    private readonly cmd: readonly string[],
    variant: 'socket' | 'docker',
    env: Record<string, string>,
  ) {
    const base = mkdtempSync(join(tmpdir(), 'etpro-compose-'));
    this.dir = join(base, 'deploy');
    cpSync(join(repoRoot(), 'deploy'), this.dir, { recursive: true });
    this.name = `etproe2e${variant}${uniqueSuffix()}`;
    this.files = variant === 'docker' ? ['-f', 'docker-compose.yml', '-f', 'docker-compose.docker-reload.yml'] : ['-f', 'docker-compose.yml'];
    let text = readFileSync(join(this.dir, '.env.example'), 'utf8');
    for (const [k, v] of Object.entries(env)) {
      const line = new RegExp(`^#?\\s*${k}=.*$`, 'm');
      text = line.test(text) ? text.replace(line, `${k}=${v}`) : `${text}\n${k}=${v}\n`;
    }
    writeFileSync(join(this.dir, '.env'), text);
  }

  exec(args: readonly string[], timeoutMs = 180_000): ReturnType<typeof run> {
    const [bin, ...pre] = this.cmd;
    return run(bin!, [...pre, '-p', this.name, ...this.files, '--profile', 'local', ...args], { cwd: this.dir, timeoutMs });
  }

  async ok(args: readonly string[], timeoutMs?: number): Promise<string> {
    const r = await this.exec(args, timeoutMs);
    if (r.code !== 0) throw new Error(`compose ${args.join(' ')} exited with ${r.code}\n${r.stdout.slice(-3_000)}\n${r.stderr.slice(-3_000)}`);
    return r.stdout;
  }

  /** Asks Suricata over its own control socket, from inside its container. */
  async suricatasc(command: string): Promise<unknown> {
    const out = await this.ok(['exec', '-T', 'suricata', 'suricatasc', '-c', command, '/var/run/suricata/suricata-command.socket'], 30_000);
    const reply = JSON.parse(out) as { return: string; message: unknown };
    if (reply.return !== 'OK') throw new Error(`suricatasc ${command}: ${out}`);
    return reply.message;
  }

  async rulesLoaded(): Promise<number> {
    const stats = (await this.suricatasc('ruleset-stats')) as { rules_loaded: number }[];
    return stats[0]?.rules_loaded ?? -1;
  }

  async collectorEvents(): Promise<EveAlert[]> {
    const r = await this.exec(['exec', '-T', 'collector', 'cat', '/var/lib/etpro-collector/events.ndjson'], 30_000);
    if (r.code !== 0) return [];
    return r.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as EveAlert);
  }

  async logs(): Promise<string> {
    const r = await this.exec(['logs', '--no-color', '--tail', '40'], 60_000);
    return r.stdout + r.stderr;
  }

  async down(): Promise<void> {
    await this.exec(['down', '-v', '--remove-orphans', '--timeout', '20'], 180_000);
    rmSync(join(this.dir, '..'), { recursive: true, force: true });
  }

  async leftovers(): Promise<string> {
    const containers = await runOk('docker', ['ps', '-a', '-q', '--filter', `label=com.docker.compose.project=${this.name}`]);
    const volumes = await runOk('docker', ['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${this.name}`]);
    return (containers + volumes).trim();
  }
}

/** Plain HTTP on loopback that the demo rules match: GET /etpro-demo with the demo user agent. */
async function sendDemoTraffic(port: number, requests: number): Promise<void> {
  for (let i = 0; i < requests; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/etpro-demo?n=${i}`, { headers: { 'user-agent': 'etpro-demo-client', connection: 'close' } });
    await res.text();
  }
}

async function withDiagnostics<T>(project: ComposeProject, what: Promise<T>): Promise<T> {
  try {
    return await what;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- compose logs ---\n${await project.logs()}`);
  }
}

/** Publishes a new rule file on the collector, runs `rules update` in the agent, returns its output. */
async function publishAndUpdate(project: ComposeProject): Promise<string> {
  writeFileSync(
    join(project.dir, 'demo-rules', 'etpro-demo-update.rules'),
    `alert http any any -> any any (msg:"ET DEMO etpro-demo update"; flow:established,to_server; http.uri; content:"/etpro-demo-update"; classtype:misc-activity; sid:${NEW_SID}; rev:1;)\n`,
  );
  const r = await project.exec(['exec', '-T', 'agent-local', 'etpro-sidecar', 'rules', 'update'], 300_000);
  assert.equal(r.code, 0, `rules update failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('docker compose: Suricata, agent and reference collector', () => {
  let web: Server;
  let webPort = 0;

  before(async () => {
    if (compose === null) return;
    await buildAgentImage();
    web = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('etpro demo page\n'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    const a = web.address();
    webPort = typeof a === 'object' && a !== null ? a.port : 0;
  });

  after(async () => {
    if (web) {
      web.closeAllConnections();
      await new Promise<void>((r) => web.close(() => r()));
    }
  });

  const baseEnv = async (): Promise<Record<string, string>> => ({
    SURICATA_INTERFACE: 'lo',
    SURICATA_OPTIONS: '-k none',
    AGENT_IMAGE,
    COLLECTOR_PORT: String(await freePort()),
    ETPRO_STATUS_PORT: String(await freePort()),
    ETPRO_START_AT: 'beginning',
    ETPRO_POLL_INTERVAL_MS: '100',
    ETPRO_HEARTBEAT_ENABLED: 'false',
    ETPRO_LOG_LEVEL: 'debug',
    ETPRO_SHUTDOWN_GRACE_MS: '5000',
  });

  test('ships anonymized alerts from loopback traffic to the collector and reloads a new ruleset over the socket', async (t) => {
    if (!requireOrSkip(t, compose !== null, 'no Docker engine or docker compose (scripts/e2e-prereqs.sh prepares them)')) return;
    const project = new ComposeProject(compose!, 'socket', { ...(await baseEnv()), ETPRO_RELOAD: 'socket' });
    try {
      await project.ok(['up', '-d', '--no-build'], 300_000);
      // The agent installs the collector's demo rules at start and reloads Suricata.
      await withDiagnostics(project, waitFor('the demo rules loaded in Suricata', 180_000, async () => ((await project.rulesLoaded()) >= DEMO_SIDS.length ? true : undefined), 1_000));

      const alerts = await withDiagnostics(
        project,
        waitFor('demo alerts at the collector', 120_000, async () => {
          await sendDemoTraffic(webPort, 3);
          const events = await project.collectorEvents();
          const demo = events.filter((e) => DEMO_SIDS.includes(e.alert?.signature_id ?? 0));
          return demo.length > 0 ? demo : undefined;
        }, 2_000),
      );
      t.diagnostic(`demo alerts received by the collector: ${alerts.length}`);
      for (const a of alerts) {
        // 127.0.0.1 is loopback, a local network: masked to its last octet.
        assert.equal(a.src_ip, 'xxx.xxx.xxx.1');
        assert.equal(a.dest_ip, 'xxx.xxx.xxx.1');
        assert.equal(a.alert?.signature, undefined, 'alert.signature is removed');
        assert.equal(a.alert?.category, undefined, 'alert.category is removed');
        assert.equal(a.http?.http_user_agent, undefined, 'http.http_user_agent is removed');
        assert.equal(a.http?.url, undefined, 'http.url is removed');
      }

      const before = await project.rulesLoaded();
      const out = await publishAndUpdate(project);
      const after = await waitFor('the new rule loaded', 60_000, async () => {
        const n = await project.rulesLoaded();
        return n === before + 1 ? n : undefined;
      }, 1_000).catch((err: Error) => assert.fail(`${err.message}\nrules update said:\n${out}`));
      assert.equal(after, before + 1);
    } finally {
      await project.down();
      assert.equal(await project.leftovers(), '', 'no containers or volumes are left behind');
    }
  });

  test('reloads a new ruleset with SIGUSR2 through the Docker API in the docker variant', async (t) => {
    if (!requireOrSkip(t, compose !== null, 'no Docker engine or docker compose (scripts/e2e-prereqs.sh prepares them)')) return;
    const container = `etpro-e2e-suricata-${uniqueSuffix()}`;
    const project = new ComposeProject(compose!, 'docker', {
      ...(await baseEnv()),
      ETPRO_RELOAD: 'docker',
      DOCKER_GID: String(dockerSocketGid()),
      SURICATA_CONTAINER_NAME: container,
    });
    try {
      await project.ok(['up', '-d', '--no-build'], 300_000);
      await withDiagnostics(project, waitFor('the demo rules loaded in Suricata', 180_000, async () => ((await project.rulesLoaded()) >= DEMO_SIDS.length ? true : undefined), 1_000));
      const before = await project.rulesLoaded();
      const since = Math.floor(Date.now() / 1000) - 1;
      const out = await publishAndUpdate(project);
      await waitFor('the new rule loaded', 60_000, async () => ((await project.rulesLoaded()) === before + 1 ? true : undefined), 1_000).catch((err: Error) =>
        assert.fail(`${err.message}\nrules update said:\n${out}`),
      );
      // The reload came from the Docker engine: it records the SIGUSR2 it delivered.
      const events = await runOk('docker', [
        'events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1),
        '--filter', `container=${container}`, '--filter', 'event=kill', '--format', '{{json .Actor.Attributes}}',
      ], { timeoutMs: 30_000 });
      assert.match(events, /"signal":"(SIGUSR2|12|USR2)"/, `docker events for ${container}:\n${events}`);
    } finally {
      await project.down();
      assert.equal(await project.leftovers(), '', 'no containers or volumes are left behind');
    }
  });
});
