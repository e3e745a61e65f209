import type Docker from 'dockerode';
import { AgentError, errorMessage } from '../errors.js';

/** Which container runs Suricata: `ETPRO_SURICATA_CONTAINER` parsed. */
export type ContainerTarget = { readonly kind: 'id'; readonly id: string } | { readonly kind: 'name'; readonly name: string } | { readonly kind: 'label'; readonly key: string; readonly value: string | null };

/**
 * `label=key=value` (or `label=key`), a 12–64 hex digit id, or a container name. Throws
 * ERR_CONFIG_INVALID naming the value when it is none of these.
 */
export function parseContainerTarget(text: string): ContainerTarget {
  const t = text.trim();
  if (t.startsWith('label=')) {
    const rest = t.slice(6);
    const eq = rest.indexOf('=');
    const key = eq < 0 ? rest : rest.slice(0, eq);
    const value = eq < 0 ? null : rest.slice(eq + 1);
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key) || value === '') {
      throw new AgentError('ERR_CONFIG_INVALID', `ETPRO_SURICATA_CONTAINER=${JSON.stringify(text)}: expected label=key=value (or label=key).`);
    }
    return { kind: 'label', key, value };
  }
  if (/^[0-9a-f]{12,64}$/.test(t)) return { kind: 'id', id: t };
  const name = t.replace(/^\//, '');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new AgentError('ERR_CONFIG_INVALID', `ETPRO_SURICATA_CONTAINER=${JSON.stringify(text)} is not a container name, id, or label=key=value.`);
  }
  return { kind: 'name', name };
}

export function describeTarget(t: ContainerTarget): string {
  return t.kind === 'label' ? `label ${t.key}${t.value === null ? '' : `=${t.value}`}` : t.kind === 'id' ? `id ${t.id.slice(0, 12)}` : `name ${t.name}`;
}

export interface ContainerRef {
  readonly id: string;
  readonly name: string;
}

/** The Docker Engine, as far as reloading Suricata needs it. */
export interface ContainerSignaller {
  /** True when the Engine answers. */
  ping(): Promise<boolean>;
  /** The one running container matching the target; ERR_DOCKER when none or several. */
  find(target: ContainerTarget): Promise<ContainerRef>;
  signal(id: string, signal: string): Promise<void>;
  isRunning(id: string): Promise<boolean>;
}

/**
 * ContainerSignaller over dockerode on the Engine's unix socket. dockerode (about 25 MB of
 * resident memory) is loaded on first use, so agents that reload otherwise never pay for it.
 */
export class DockerodeSignaller implements ContainerSignaller {
  private client: Promise<Docker> | null = null;

  constructor(readonly socketPath: string) {}

  private get docker(): Promise<Docker> {
    this.client ??= import('dockerode').then(({ default: DockerCtor }) => new DockerCtor({ socketPath: this.socketPath, timeout: 10_000 }));
    return this.client;
  }

  async ping(): Promise<boolean> {
    try {
      await (await this.docker).ping();
      return true;
    } catch {
      return false;
    }
  }

  async find(target: ContainerTarget): Promise<ContainerRef> {
    try {
      if (target.kind === 'label') {
        const label = target.value === null ? target.key : `${target.key}=${target.value}`;
        const list = await (await this.docker).listContainers({ filters: { label: [label], status: ['running'] } });
        if (list.length !== 1) {
          throw new AgentError('ERR_DOCKER', `${list.length === 0 ? 'No' : `${list.length}`} running containers with label ${label}${list.length > 1 ? ': make the label unique to Suricata' : ''}.`, { label, count: list.length });
        }
        return { id: list[0]!.Id, name: (list[0]!.Names[0] ?? list[0]!.Id).replace(/^\//, '') };
      }
      const ref = target.kind === 'id' ? target.id : target.name;
      const info = await (await this.docker).getContainer(ref).inspect();
      if (!info.State.Running) throw new AgentError('ERR_DOCKER', `Container ${info.Name.replace(/^\//, '')} is not running.`, { container: ref });
      return { id: info.Id, name: info.Name.replace(/^\//, '') };
    } catch (err) {
      if (err instanceof AgentError) throw err;
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) throw new AgentError('ERR_DOCKER', `No container ${describeTarget(target)} (ETPRO_SURICATA_CONTAINER).`, { statusCode: 404 });
      throw new AgentError('ERR_DOCKER', `Docker Engine at ${this.socketPath} failed: ${errorMessage(err)}`, { statusCode: status }, { cause: err });
    }
  }

  async signal(id: string, signal: string): Promise<void> {
    try {
      await (await this.docker).getContainer(id).kill({ signal });
    } catch (err) {
      throw new AgentError('ERR_DOCKER', `Docker could not send ${signal} to container ${id.slice(0, 12)}: ${errorMessage(err)}`, { statusCode: (err as { statusCode?: number }).statusCode }, { cause: err });
    }
  }

  async isRunning(id: string): Promise<boolean> {
    try {
      return (await (await this.docker).getContainer(id).inspect()).State.Running === true;
    } catch {
      return false;
    }
  }
}
