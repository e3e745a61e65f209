import { promises as fs } from 'node:fs';
import type { ReloadMethod } from '../config.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { DockerodeSignaller, parseContainerTarget, type ContainerSignaller, type ContainerTarget } from './docker-signaller.js';
import { DockerReloader } from './reload-docker.js';
import { SignalReloader } from './reload-signal.js';
import { SocketReloader } from './reload-socket.js';
import { realClock, type Clock, type ReloadExpectation, type ReloadResult, type Reloader } from './reload-verify.js';
import type { SuricataControl } from './suricata-control.js';

export type { Reloader, ReloadResult, ReloadExpectation } from './reload-verify.js';

export interface ReloaderDeps {
  readonly control: SuricataControl;
  readonly pidfile: string;
  readonly dockerSocket: string;
  /** ETPRO_SURICATA_CONTAINER (name, id or label=key=value); null = docker unusable. */
  readonly container: string | null;
  readonly reloadTimeoutMs: number;
  readonly maxFailed: number;
  readonly log: Logger;
  /** Builds the Docker client on first use (default: dockerode on `dockerSocket`). */
  readonly signaller?: () => ContainerSignaller;
  readonly clock?: Clock;
  /** Settle time for unverifiable signal/docker reloads (tests shorten it). */
  readonly settleMs?: number;
}

/** Writing files only: Suricata picks them up on its next start or reload. */
export class NoneReloader implements Reloader {
  readonly method = 'none' as const;
  constructor(private readonly note = 'ETPRO_RELOAD=none: rules written, Suricata not reloaded.') {}
  async reload(): Promise<ReloadResult> {
    return { method: 'none', ok: true, verified: false, loaded: null, failed: null, skipped: null, durationMs: 0, note: this.note };
  }
}

function target(deps: ReloaderDeps): ContainerTarget {
  return parseContainerTarget(deps.container ?? '');
}

function signallerOf(deps: ReloaderDeps): ContainerSignaller {
  return deps.signaller ? deps.signaller() : new DockerodeSignaller(deps.dockerSocket);
}

async function isSocketFile(path: string): Promise<boolean> {
  try {
    return (await fs.stat(path)).isSocket();
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * `auto`, decided at every reload (Suricata may have restarted, volumes may have appeared):
 * the control socket if it answers, else Docker if the Engine answers AND the Suricata container
 * is found there, else SIGUSR2 via the pidfile if it exists, else none with a warning. Why a method
 * was passed over goes into the result's note.
 */
export class AutoReloader implements Reloader {
  readonly method = 'auto' as const;
  private signaller: ContainerSignaller | null = null;

  constructor(private readonly deps: ReloaderDeps) {}

  /** The strategy `auto` would use now, and why. */
  async choose(): Promise<{ reloader: Reloader; why: string }> {
    const d = this.deps;
    const clock = d.clock ?? realClock;
    try {
      await d.control.command('version', undefined, 3_000);
      return { reloader: new SocketReloader(d.control, d, d.log, clock), why: `control socket ${d.control.socketPath} answers` };
    } catch {
      // Not answering: try the next method.
    }
    let docker = d.container === null ? 'no Suricata container set for Docker' : 'no Docker Engine';
    if (d.container !== null && (await isSocketFile(d.dockerSocket))) {
      this.signaller ??= signallerOf(d);
      if (await this.signaller.ping()) {
        // An answering Engine is not enough: the Suricata container must be there to be signalled.
        try {
          const t = target(d);
          const ref = await this.signaller.find(t);
          return {
            reloader: new DockerReloader(this.signaller, { target: t, reloadTimeoutMs: d.reloadTimeoutMs, maxFailed: d.maxFailed, ...(d.settleMs !== undefined ? { settleMs: d.settleMs } : {}) }, null, d.log, clock),
            why: `control socket not answering; Docker Engine on ${d.dockerSocket} has container ${ref.name}`,
          };
        } catch (err) {
          docker = `Docker Engine answers but the Suricata container is not usable (${errorMessage(err)})`;
        }
      }
    }
    if (await exists(d.pidfile)) {
      return {
        reloader: new SignalReloader({ pidfile: d.pidfile, reloadTimeoutMs: d.reloadTimeoutMs, maxFailed: d.maxFailed, ...(d.settleMs !== undefined ? { settleMs: d.settleMs } : {}) }, null, d.log, clock),
        why: `control socket not answering, ${docker}; pidfile ${d.pidfile} exists`,
      };
    }
    return {
      reloader: new NoneReloader(`ETPRO_RELOAD=auto found no way to reload Suricata (no answering control socket, ${docker}, no pidfile): rules written only.`),
      why: `no control socket, ${docker}, no pidfile`,
    };
  }

  async reload(expect: ReloadExpectation): Promise<ReloadResult> {
    const { reloader, why } = await this.choose();
    if (reloader.method === 'none') this.deps.log.warn('No way to reload Suricata found; rules are written but not loaded.', { socket: this.deps.control.socketPath, dockerSocket: this.deps.dockerSocket, pidfile: this.deps.pidfile, why });
    else this.deps.log.debug('Reload method chosen.', { method: reloader.method, why });
    const result = await reloader.reload(expect);
    return result.note ? (result.method === 'none' ? result : { ...result, note: `${result.note} (auto: ${why})` }) : { ...result, note: `auto: ${why}` };
  }
}

/** The reload strategy for ETPRO_RELOAD. Throws ERR_CONFIG_INVALID for docker with an unusable container target. */
export function createReloader(method: ReloadMethod, deps: ReloaderDeps): Reloader {
  const clock = deps.clock ?? realClock;
  const settle = deps.settleMs !== undefined ? { settleMs: deps.settleMs } : {};
  switch (method) {
    case 'socket':
      return new SocketReloader(deps.control, deps, deps.log, clock);
    case 'docker':
      return new DockerReloader(signallerOf(deps), { target: target(deps), reloadTimeoutMs: deps.reloadTimeoutMs, maxFailed: deps.maxFailed, ...settle }, deps.control, deps.log, clock);
    case 'signal':
      return new SignalReloader({ pidfile: deps.pidfile, reloadTimeoutMs: deps.reloadTimeoutMs, maxFailed: deps.maxFailed, ...settle }, deps.control, deps.log, clock);
    case 'none':
      return new NoneReloader();
    case 'auto':
      return new AutoReloader(deps);
  }
}
