import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandWorks } from '../helpers/requirements.js';

/** The repository root: the nearest directory above this file holding package.json and Dockerfile. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!(existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'Dockerfile')))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found above the test file');
    dir = up;
  }
  return dir;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion and returns its exit code and output (never throws on exit code). */
export function run(cmd: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err !== null && typeof (err as { code?: unknown }).code !== 'number' ? `\n${err.message}` : '') });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run, but throws with the output when the exit code is not 0. */
export async function runOk(cmd: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}\n${r.stdout.slice(-4_000)}\n${r.stderr.slice(-4_000)}`);
  return r.stdout;
}

export const hasDocker = (): boolean => commandWorks('docker', ['info']);

/** `docker compose` (v2) or `docker-compose` (v1), whichever this machine has; null when neither. */
export function composeCommand(): readonly string[] | null {
  if (commandWorks('docker', ['compose', 'version'])) return ['docker', 'compose'];
  if (commandWorks('docker-compose', ['version'])) return ['docker-compose'];
  return null;
}

export const AGENT_IMAGE = 'etpro-telemetry-sidecar:e2e';

/**
 * Builds the agent image from the repository's Dockerfile (cached layers make a second build
 * quick). Docker's own build runs on the host network: the machine has no bridge.
 */
export async function buildAgentImage(): Promise<void> {
  await runOk('docker', ['build', '--network', 'host', '-t', AGENT_IMAGE, repoRoot()], { timeoutMs: 600_000 });
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for containers on the host network). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns a value other than undefined, or fails with `what` after the deadline. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message ?? String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A short unique suffix for names of containers, volumes and projects made by one test run. */
export function uniqueSuffix(): string {
  return `${process.pid.toString(36)}${Date.now().toString(36)}`;
}

/** The group id of the Docker socket (for group_add in the docker reload variant). */
export function dockerSocketGid(): number {
  return Number(execFileSync('stat', ['-c', '%g', '/var/run/docker.sock']).toString().trim());
}
