import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { UnixSocketControl } from '../../src/suricata/suricata-control.js';

export const PACKAGED_YAML = '/etc/suricata/suricata.yaml';

export interface LiveSuricataOptions {
  /** Rule text written to `<rulesDir>/suricata.rules` before start. */
  readonly rules?: string;
  /** HOME_NET written into the yaml. */
  readonly homeNet?: string;
  /** Extra command-line arguments (e.g. ['-S', file] to test the refusal of live reload). */
  readonly extraArgs?: readonly string[];
  /** stats.interval in seconds (default 1, so stats.log fills quickly). */
  readonly statsIntervalS?: number;
}

/**
 * A real Suricata capturing on `lo` with libpcap (no af-packet fanout, so parallel tests each see
 * all loopback traffic), its own yaml, rules dir, log dir and control socket in a temp dir, and
 * live reload enabled (default-rule-path + rule-files, never -S unless asked).
 */
export class LiveSuricata {
  readonly dir: string;
  readonly rulesDir: string;
  readonly logDir: string;
  readonly yamlPath: string;
  readonly socketPath: string;
  readonly pidfile: string;
  readonly control: UnixSocketControl;
  private proc: ChildProcess | null = null;
  private stderr = '';

  constructor(private readonly opts: LiveSuricataOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'live-suricata-'));
    this.rulesDir = join(this.dir, 'rules');
    this.logDir = join(this.dir, 'log');
    this.yamlPath = join(this.dir, 'suricata.yaml');
    this.socketPath = join(this.dir, 'run', 'suricata-command.socket');
    this.pidfile = join(this.dir, 'run', 'suricata.pid');
    mkdirSync(this.rulesDir);
    mkdirSync(this.logDir);
    mkdirSync(join(this.dir, 'run'));
    this.control = new UnixSocketControl(this.socketPath);
    this.writeYaml();
    writeFileSync(join(this.rulesDir, 'suricata.rules'), opts.rules ?? '');
  }

  get evePath(): string {
    return join(this.logDir, 'eve.json');
  }

  get statsLogPath(): string {
    return join(this.logDir, 'stats.log');
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  private writeYaml(): void {
    const doc = parseDocument(readFileSync(PACKAGED_YAML, 'utf8'));
    doc.setIn(['default-rule-path'], this.rulesDir);
    doc.setIn(['rule-files'], ['suricata.rules']);
    doc.setIn(['unix-command', 'enabled'], 'yes');
    doc.setIn(['unix-command', 'filename'], this.socketPath);
    doc.setIn(['stats', 'interval'], this.opts.statsIntervalS ?? 1);
    if (this.opts.homeNet) doc.setIn(['vars', 'address-groups', 'HOME_NET'], this.opts.homeNet);
    const classification = '/etc/suricata/classification.config';
    if (existsSync(classification)) {
      copyFileSync(classification, join(this.dir, 'classification.config'));
      doc.setIn(['classification-file'], join(this.dir, 'classification.config'));
    }
    writeFileSync(this.yamlPath, doc.toString());
  }

  /** Starts Suricata and resolves once its control socket answers. */
  async start(timeoutMs = 60_000): Promise<void> {
    const args = ['-c', this.yamlPath, '--pcap=lo', '-l', this.logDir, '-k', 'none', '--pidfile', this.pidfile, ...(this.opts.extraArgs ?? [])];
    this.proc = spawn('suricata', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8_000);
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`suricata exited with ${this.proc.exitCode}: ${this.stderr}`);
      try {
        await this.control.command('version', undefined, 2_000);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new Error(`suricata did not answer on ${this.socketPath} within ${timeoutMs} ms: ${this.stderr}`);
  }

  /** Stops the process we started (by its PID), waiting for it to exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  log(): string {
    const file = join(this.logDir, 'suricata.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : this.stderr;
  }
}
