import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { AgentError, errorMessage } from './errors.js';
import { AddressSet } from './telemetry/address-set.js';

/**
 * Configuration: environment variables only, `ETPRO_` prefix, units in names, empty means unset.
 * `loadConfig(env)` is a pure function of its argument (plus reading `*_FILE` secrets) and reports
 * every bad variable at once. Nothing outside this file reads `process.env`.
 */

export type StartAt = { kind: 'end' } | { kind: 'beginning' } | { kind: 'lookback'; ms: number; text: string };
export type ReloadMethod = 'auto' | 'socket' | 'docker' | 'signal' | 'none';
export type Platform = 'docker' | 'kubernetes' | 'host';

export interface Config {
  /** Bearer token, trimmed; null when none is configured. Never log it. */
  readonly token: string | null;
  /** True when trimming the token changed it (a warning is logged at start). */
  readonly tokenWasTrimmed: boolean;
  readonly baseUrl: string;
  readonly caFile: string | null;
  readonly httpTimeoutMs: number;
  readonly stateDir: string;
  readonly logLevel: 'error' | 'warn' | 'info' | 'debug';
  readonly logFormat: 'json' | 'text';
  readonly shutdownGraceMs: number;
  readonly platform: Platform;

  readonly eve: {
    readonly path: string;
    readonly startAt: StartAt;
    readonly maxLineBytes: number;
    readonly pollIntervalMs: number;
    /** Lines read but not yet acknowledged before the follower stops reading. */
    readonly maxPendingLines: number;
  };

  readonly privacy: {
    readonly suricataYaml: string;
    readonly homeNet: readonly string[];
    readonly maskInterfaceNetworks: boolean;
    readonly maskPrivateRanges: boolean;
  };

  readonly shipper: {
    readonly maxInFlight: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly authRetryMs: number;
  };

  readonly heartbeat: {
    readonly enabled: boolean;
    readonly spreadS: number;
    readonly statsLog: string;
  };

  readonly status: {
    readonly port: number;
    readonly addr: string;
    readonly pollS: number;
  };

  readonly suricata: {
    readonly socket: string;
    readonly pidfile: string;
    readonly container: string | null;
    readonly dockerSocket: string;
    readonly version: string | null;
  };

  readonly rules: {
    readonly dir: string;
    readonly updateEnabled: boolean;
    readonly schedule: string;
    readonly spreadS: number;
    readonly rulesetPath: string;
    readonly etOpenUrl: string;
    readonly maxMb: number;
    readonly categories: readonly string[] | 'all';
    readonly disableFile: string | null;
    readonly enableFile: string | null;
    readonly modifyFile: string | null;
    readonly reload: ReloadMethod;
    readonly reloadTimeoutMs: number;
    readonly maxFailed: number;
  };
}

/** One documented variable: its name, default (as text, for the README) and meaning. */
export interface VariableDoc {
  readonly name: string;
  readonly default: string;
  readonly description: string;
}

export const DEFAULT_BASE_URL = 'https://opnsense.emergingthreats.net';
export const DEFAULT_ET_OPEN_URL = 'https://rules.emergingthreats.net/open/suricata-%v/emerging.rules.tar.gz';

/** Every variable the agent reads. The README's table must list each of them (a test checks). */
export const VARIABLES: readonly VariableDoc[] = [
  { name: 'ETPRO_TOKEN', default: '(none)', description: 'ET Pro Telemetry bearer token. Without one no events are sent and ET Open is used.' },
  { name: 'ETPRO_TOKEN_FILE', default: '(none)', description: 'File holding the token (Kubernetes/Docker secret); used when ETPRO_TOKEN is unset.' },
  { name: 'ETPRO_BASE_URL', default: DEFAULT_BASE_URL, description: 'Base URL of the ET telemetry API.' },
  { name: 'ETPRO_CA_FILE', default: '(none)', description: 'Extra CA bundle (PEM) trusted for HTTPS, e.g. for a TLS-inspecting proxy.' },
  { name: 'ETPRO_HTTP_TIMEOUT_MS', default: '15000', description: 'Timeout of one HTTP request.' },
  { name: 'ETPRO_STATE_DIR', default: '/var/lib/etpro-sidecar', description: 'Checkpoint, sensor id, last-known-good rules.' },
  { name: 'ETPRO_LOG_LEVEL', default: 'info', description: 'error, warn, info or debug.' },
  { name: 'ETPRO_LOG_FORMAT', default: 'json', description: 'json (one object a line) or text.' },
  { name: 'ETPRO_SHUTDOWN_GRACE_MS', default: '10000', description: 'Time SIGTERM allows for draining in-flight events.' },
  { name: 'ETPRO_PLATFORM', default: '(detected)', description: 'docker, kubernetes or host, reported in the heartbeat.' },
  { name: 'ETPRO_EVE_PATH', default: '/var/log/suricata/eve.json', description: "Suricata's eve.json to follow." },
  { name: 'ETPRO_START_AT', default: '1d', description: 'First start without a checkpoint: end, beginning, or a look-back such as 30m, 2h, 1d.' },
  { name: 'ETPRO_MAX_LINE_BYTES', default: '1048576', description: 'Longer eve lines are counted, logged and skipped.' },
  { name: 'ETPRO_POLL_INTERVAL_MS', default: '250', description: 'How often the follower checks eve.json for growth and rotation.' },
  { name: 'ETPRO_MAX_PENDING_LINES', default: '20000', description: 'Lines read but not yet acknowledged before reading pauses (memory bound).' },
  { name: 'ETPRO_SURICATA_YAML', default: '/etc/suricata/suricata.yaml', description: 'suricata.yaml read for HOME_NET, rule files and IPS mode.' },
  { name: 'ETPRO_HOME_NET', default: '(none)', description: 'Extra local networks to mask, comma-separated CIDRs or addresses.' },
  { name: 'ETPRO_MASK_INTERFACE_NETWORKS', default: 'true', description: "Mask addresses in the host's interface networks." },
  { name: 'ETPRO_MASK_PRIVATE_RANGES', default: 'true', description: 'Mask private, loopback, link-local, CGNAT and ULA addresses.' },
  { name: 'ETPRO_MAX_IN_FLIGHT', default: '32', description: 'Concurrent event POSTs over keep-alive connections.' },
  { name: 'ETPRO_RETRY_BASE_MS', default: '500', description: 'First retry delay for 408/429/5xx/network errors (doubles, with jitter).' },
  { name: 'ETPRO_RETRY_MAX_MS', default: '60000', description: 'Longest retry delay.' },
  { name: 'ETPRO_AUTH_RETRY_MS', default: '300000', description: 'Retry delay after 401/403 (wrong or revoked token).' },
  { name: 'ETPRO_HEARTBEAT_ENABLED', default: 'true', description: 'Send the hourly heartbeat.' },
  { name: 'ETPRO_HEARTBEAT_SPREAD_S', default: '1800', description: 'Random delay spreading each hourly heartbeat.' },
  { name: 'ETPRO_STATS_LOG', default: '/var/log/suricata/stats.log', description: "Suricata's stats.log (heartbeat counters)." },
  { name: 'ETPRO_STATUS_PORT', default: '9300', description: 'Port of /healthz, /readyz, /status, /metrics (0 = any free port).' },
  { name: 'ETPRO_STATUS_ADDR', default: '127.0.0.1', description: 'Address the status server binds to.' },
  { name: 'ETPRO_STATUS_POLL_S', default: '900', description: 'How often the subscription status (sensorinfo) is polled.' },
  { name: 'ETPRO_SURICATA_SOCKET', default: '/var/run/suricata/suricata-command.socket', description: "Suricata's unix-command socket." },
  { name: 'ETPRO_SURICATA_PIDFILE', default: '/var/run/suricata/suricata.pid', description: "Suricata's pidfile (reload method signal)." },
  { name: 'ETPRO_SURICATA_CONTAINER', default: 'suricata', description: 'Suricata container for reload method docker: a name, an id, or label=key=value.' },
  { name: 'ETPRO_DOCKER_SOCKET', default: '/var/run/docker.sock', description: 'Docker Engine API socket (reload method docker).' },
  { name: 'ETPRO_SURICATA_VERSION', default: '(asked)', description: 'Suricata version for the ET Open URL when the socket cannot be asked.' },
  { name: 'ETPRO_RULES_DIR', default: '/var/lib/suricata/rules', description: 'Shared rules volume: suricata.rules, telemetry_sids.txt, telemetry_version.json.' },
  { name: 'ETPRO_RULES_UPDATE_ENABLED', default: 'true', description: 'Download and install rules at start and daily.' },
  { name: 'ETPRO_RULES_SCHEDULE', default: '0 3 * * *', description: 'Cron expression of the daily rules update (spread by ETPRO_RULES_SPREAD_S).' },
  { name: 'ETPRO_RULES_SPREAD_S', default: '3600', description: 'Random delay spreading each rules update.' },
  { name: 'ETPRO_RULESET_PATH', default: '/api/v1/ruleset/engine/suricata/5', description: 'Path of the ET Pro ruleset archive under ETPRO_BASE_URL.' },
  { name: 'ETPRO_ET_OPEN_URL', default: DEFAULT_ET_OPEN_URL, description: 'ET Open archive (%v = Suricata x.y.z), used when DISABLED or without token.' },
  { name: 'ETPRO_RULES_MAX_MB', default: '256', description: 'Size cap for the downloaded archive and for its unpacked content.' },
  { name: 'ETPRO_CATEGORIES', default: 'all', description: 'all, or comma-separated rule file names without .rules (e.g. emerging-malware).' },
  { name: 'ETPRO_DISABLE', default: '(none)', description: "File in suricata-update's disable.conf syntax." },
  { name: 'ETPRO_ENABLE', default: '(none)', description: "File in suricata-update's enable.conf syntax." },
  { name: 'ETPRO_MODIFY', default: '(none)', description: "File in suricata-update's modify.conf syntax." },
  { name: 'ETPRO_RELOAD', default: 'auto', description: 'How Suricata reloads rules: auto, socket, docker, signal or none.' },
  { name: 'ETPRO_RELOAD_TIMEOUT_MS', default: '180000', description: 'Longest wait for a rule reload.' },
  { name: 'ETPRO_RULES_MAX_FAILED', default: '0', description: 'Failed rules tolerated after a reload before rolling back.' },
];

type Env = Readonly<Record<string, string | undefined>>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v;
  }

  str(name: string, def: string): string {
    return this.raw(name)?.trim() ?? def;
  }

  optStr(name: string): string | null {
    return this.raw(name)?.trim() ?? null;
  }

  int(name: string, def: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    const t = v.trim();
    if (!/^-?\d+$/.test(t)) {
      this.problems.push(`${name}=${JSON.stringify(v)} is not a whole number`);
      return def;
    }
    const n = Number(t);
    if (n < min || n > max) {
      this.problems.push(`${name}=${t} is out of range (${min} to ${max})`);
      return def;
    }
    return n;
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return def;
    const t = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(t)) return true;
    if (['0', 'false', 'no', 'off'].includes(t)) return false;
    this.problems.push(`${name}=${JSON.stringify(v)} is not a boolean (true/false)`);
    return def;
  }

  oneOf<T extends string>(name: string, def: T, allowed: readonly T[]): T {
    const v = this.raw(name);
    if (v === undefined) return def;
    const t = v.trim().toLowerCase() as T;
    if (!allowed.includes(t)) {
      this.problems.push(`${name}=${JSON.stringify(v)} must be one of ${allowed.join(', ')}`);
      return def;
    }
    return t;
  }

  /** An IP address to bind to (or `localhost`). */
  ipAddress(name: string, def: string): string {
    const v = this.str(name, def);
    if (v !== 'localhost' && isIP(v) === 0) {
      this.problems.push(`${name}=${JSON.stringify(v)} is not an IP address to bind to (e.g. 127.0.0.1, 0.0.0.0, ::)`);
      return def;
    }
    return v;
  }

  list(name: string): string[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    return v
      .split(/[,\s]+/)
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  url(name: string, def: string, kind: 'base' | 'file' = 'file'): string {
    const v = this.str(name, def);
    let u: URL;
    try {
      u = new URL(v.replace('%v', '0.0.0'));
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
    } catch {
      this.problems.push(`${name}=${JSON.stringify(v)} is not an http(s) URL`);
      return def;
    }
    if (u.username !== '' || u.password !== '') {
      this.problems.push(`${name} must not carry credentials in the URL (the token is sent as a bearer token)`);
      return def;
    }
    if (kind === 'base' && (u.search !== '' || u.hash !== '')) {
      this.problems.push(`${name}=${JSON.stringify(v)} must be a base URL without ?query or #fragment (API paths are appended to it)`);
      return def;
    }
    return v.replace(/\/+$/, '');
  }
}

const DURATION_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses `30s`, `15m`, `2h`, `1d`, `1w` into milliseconds; null when it is not such a duration. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)\s*([smhdw])$/i.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!;
}

export function parseStartAt(text: string): StartAt | null {
  const t = text.trim().toLowerCase();
  if (t === 'end') return { kind: 'end' };
  if (t === 'beginning' || t === 'start') return { kind: 'beginning' };
  const ms = parseDuration(t);
  return ms === null ? null : { kind: 'lookback', ms, text: t };
}

function readToken(r: Reader, env: Env): { token: string | null; trimmed: boolean } {
  let raw = env['ETPRO_TOKEN'];
  if (raw === undefined || raw === '') {
    const file = r.optStr('ETPRO_TOKEN_FILE');
    if (file !== null) {
      try {
        raw = readFileSync(file, 'utf8');
      } catch (err) {
        r.problems.push(`ETPRO_TOKEN_FILE=${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        return { token: null, trimmed: false };
      }
      // A trailing newline in a secret file is normal, not worth a warning.
      raw = raw.replace(/\r?\n$/, '');
    }
  }
  if (raw === undefined) return { token: null, trimmed: false };
  const token = raw.trim();
  if (token === '') return { token: null, trimmed: false };
  if (/\s/.test(token)) r.problems.push('ETPRO_TOKEN contains white space inside it (value not shown)');
  return { token, trimmed: token !== raw };
}

function detectPlatform(env: Env): Platform {
  if (env['KUBERNETES_SERVICE_HOST']) return 'kubernetes';
  try {
    readFileSync('/.dockerenv');
    return 'docker';
  } catch {
    return 'host';
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export function loadConfig(env: Env): Config {
  const r = new Reader(env);
  const { token, trimmed } = readToken(r, env);

  const startAtText = r.str('ETPRO_START_AT', '1d');
  const startAt = parseStartAt(startAtText);
  if (startAt === null) r.problems.push(`ETPRO_START_AT=${JSON.stringify(startAtText)} must be end, beginning or a look-back such as 1d`);

  const homeNet = r.list('ETPRO_HOME_NET');
  for (const n of homeNet) {
    try {
      AddressSet.fromTerm(n);
    } catch (err) {
      r.problems.push(`ETPRO_HOME_NET entry ${JSON.stringify(n)} is not an address, CIDR or range (${errorMessage(err)})`);
    }
  }

  const categoriesRaw = r.list('ETPRO_CATEGORIES');
  const categories: readonly string[] | 'all' =
    categoriesRaw.length === 0 || categoriesRaw.some((c) => c.toLowerCase() === 'all')
      ? 'all'
      : categoriesRaw.map((c) => c.replace(/\.rules$/, ''));

  const schedule = r.str('ETPRO_RULES_SCHEDULE', '0 3 * * *');
  if (schedule.split(/\s+/).length < 5 || schedule.split(/\s+/).length > 6) {
    r.problems.push(`ETPRO_RULES_SCHEDULE=${JSON.stringify(schedule)} is not a cron expression (5 or 6 fields)`);
  }

  const platformText = r.optStr('ETPRO_PLATFORM');
  const platform = platformText === null ? detectPlatform(env) : r.oneOf('ETPRO_PLATFORM', 'host', ['docker', 'kubernetes', 'host'] as const);

  const config: Config = {
    token,
    tokenWasTrimmed: trimmed,
    baseUrl: r.url('ETPRO_BASE_URL', DEFAULT_BASE_URL, 'base'),
    caFile: r.optStr('ETPRO_CA_FILE'),
    httpTimeoutMs: r.int('ETPRO_HTTP_TIMEOUT_MS', 15_000, 100, 600_000),
    stateDir: r.str('ETPRO_STATE_DIR', '/var/lib/etpro-sidecar'),
    logLevel: r.oneOf('ETPRO_LOG_LEVEL', 'info', ['error', 'warn', 'info', 'debug'] as const),
    logFormat: r.oneOf('ETPRO_LOG_FORMAT', 'json', ['json', 'text'] as const),
    shutdownGraceMs: r.int('ETPRO_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    platform,
    eve: {
      path: r.str('ETPRO_EVE_PATH', '/var/log/suricata/eve.json'),
      startAt: startAt ?? { kind: 'lookback', ms: 86_400_000, text: '1d' },
      maxLineBytes: r.int('ETPRO_MAX_LINE_BYTES', 1_048_576, 1_024, 64 * 1_048_576),
      pollIntervalMs: r.int('ETPRO_POLL_INTERVAL_MS', 250, 10, 60_000),
      maxPendingLines: r.int('ETPRO_MAX_PENDING_LINES', 20_000, 100, 10_000_000),
    },
    privacy: {
      suricataYaml: r.str('ETPRO_SURICATA_YAML', '/etc/suricata/suricata.yaml'),
      homeNet,
      maskInterfaceNetworks: r.bool('ETPRO_MASK_INTERFACE_NETWORKS', true),
      maskPrivateRanges: r.bool('ETPRO_MASK_PRIVATE_RANGES', true),
    },
    shipper: {
      maxInFlight: r.int('ETPRO_MAX_IN_FLIGHT', 32, 1, 1_024),
      retryBaseMs: r.int('ETPRO_RETRY_BASE_MS', 500, 1, 600_000),
      retryMaxMs: r.int('ETPRO_RETRY_MAX_MS', 60_000, 1, 3_600_000),
      authRetryMs: r.int('ETPRO_AUTH_RETRY_MS', 300_000, 10, 86_400_000),
    },
    heartbeat: {
      enabled: r.bool('ETPRO_HEARTBEAT_ENABLED', true),
      spreadS: r.int('ETPRO_HEARTBEAT_SPREAD_S', 1_800, 0, 3_599),
      statsLog: r.str('ETPRO_STATS_LOG', '/var/log/suricata/stats.log'),
    },
    status: {
      port: r.int('ETPRO_STATUS_PORT', 9_300, 0, 65_535),
      addr: r.ipAddress('ETPRO_STATUS_ADDR', '127.0.0.1'),
      pollS: r.int('ETPRO_STATUS_POLL_S', 900, 1, 86_400),
    },
    suricata: {
      socket: r.str('ETPRO_SURICATA_SOCKET', '/var/run/suricata/suricata-command.socket'),
      pidfile: r.str('ETPRO_SURICATA_PIDFILE', '/var/run/suricata/suricata.pid'),
      container: r.optStr('ETPRO_SURICATA_CONTAINER') ?? 'suricata',
      dockerSocket: r.str('ETPRO_DOCKER_SOCKET', '/var/run/docker.sock'),
      version: r.optStr('ETPRO_SURICATA_VERSION'),
    },
    rules: {
      dir: r.str('ETPRO_RULES_DIR', '/var/lib/suricata/rules'),
      updateEnabled: r.bool('ETPRO_RULES_UPDATE_ENABLED', true),
      schedule,
      spreadS: r.int('ETPRO_RULES_SPREAD_S', 3_600, 0, 86_400),
      rulesetPath: r.str('ETPRO_RULESET_PATH', '/api/v1/ruleset/engine/suricata/5'),
      etOpenUrl: r.url('ETPRO_ET_OPEN_URL', DEFAULT_ET_OPEN_URL),
      maxMb: r.int('ETPRO_RULES_MAX_MB', 256, 1, 4_096),
      categories,
      disableFile: r.optStr('ETPRO_DISABLE'),
      enableFile: r.optStr('ETPRO_ENABLE'),
      modifyFile: r.optStr('ETPRO_MODIFY'),
      reload: r.oneOf('ETPRO_RELOAD', 'auto', ['auto', 'socket', 'docker', 'signal', 'none'] as const),
      reloadTimeoutMs: r.int('ETPRO_RELOAD_TIMEOUT_MS', 180_000, 1_000, 3_600_000),
      maxFailed: r.int('ETPRO_RULES_MAX_FAILED', 0, 0, 1_000_000),
    },
  };

  if (config.shipper.retryBaseMs > config.shipper.retryMaxMs) {
    r.problems.push(`ETPRO_RETRY_BASE_MS (${config.shipper.retryBaseMs}) is larger than ETPRO_RETRY_MAX_MS (${config.shipper.retryMaxMs})`);
  }
  if (!config.rules.rulesetPath.startsWith('/')) r.problems.push('ETPRO_RULESET_PATH must start with /');

  for (const name of Object.keys(env)) {
    if (name.startsWith('ETPRO_') && !VARIABLES.some((v) => v.name === name) && !name.startsWith('ETPRO_TEST_')) {
      r.problems.push(`${name} is not a known setting (misspelt?)`);
    }
  }

  if (r.problems.length > 0) {
    throw new AgentError('ERR_CONFIG_INVALID', `Invalid configuration: ${r.problems.join('; ')}`, { problems: r.problems });
  }
  return deepFreeze(config);
}

/** The effective config for logs and /status: the token replaced by whether one is set. */
export function redactConfig(config: Config): Record<string, unknown> {
  const { token, tokenWasTrimmed: _trimmed, ...rest } = config;
  return { ...rest, token: token === null ? '(not set)' : '(set, redacted)' };
}
