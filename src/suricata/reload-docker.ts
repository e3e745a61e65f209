import type { Logger } from '../logger.js';
import { describeTarget, type ContainerSignaller, type ContainerTarget } from './docker-signaller.js';
import type { SuricataControl } from './suricata-control.js';
import { confirmSignalledReload, failedResult, realClock, tryReadReloadTime, type Clock, type ReloadExpectation, type ReloadResult, type Reloader } from './reload-verify.js';

export interface DockerReloaderOptions {
  readonly target: ContainerTarget;
  readonly reloadTimeoutMs: number;
  readonly maxFailed: number;
  /** Without a socket: how long the container must stay up after SIGUSR2. */
  readonly settleMs?: number;
}

/**
 * SIGUSR2 to the Suricata container through the Docker Engine. Verified through the control socket
 * when it is mounted, else by watching the container stay up.
 */
export class DockerReloader implements Reloader {
  readonly method = 'docker' as const;

  constructor(
    private readonly signaller: ContainerSignaller,
    private readonly opts: DockerReloaderOptions,
    private readonly control: SuricataControl | null,
    private readonly log: Logger,
    private readonly clock: Clock = realClock,
  ) {}

  async reload(expect: ReloadExpectation): Promise<ReloadResult> {
    const startedAt = this.clock.now();
    const before = await tryReadReloadTime(this.control);
    let id: string;
    try {
      const ref = await this.signaller.find(this.opts.target);
      id = ref.id;
      await this.signaller.signal(id, 'SIGUSR2');
      this.log.debug('Sent SIGUSR2 to the Suricata container.', { container: ref.name, target: describeTarget(this.opts.target) });
    } catch (err) {
      return failedResult('docker', startedAt, this.clock, err);
    }
    return confirmSignalledReload({
      method: 'docker',
      control: this.control,
      before,
      expect,
      maxFailed: this.opts.maxFailed,
      waitMs: this.opts.reloadTimeoutMs,
      startedAt,
      clock: this.clock,
      settleMs: this.opts.settleMs ?? 5_000,
      stillRunning: () => this.signaller.isRunning(id),
      exitedMessage: `The Suricata container ${id.slice(0, 12)} stopped after SIGUSR2.`,
      unverifiedNote: 'SIGUSR2 sent and the container stayed up; rule counts not verified (control socket not mounted).',
    });
  }
}
