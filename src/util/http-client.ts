import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import axios, { type AxiosInstance } from 'axios';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { AgentError, errorCode } from '../errors.js';

/** What a control-plane client needs from the configuration. */
export interface ControlPlaneHttpOptions {
  readonly baseUrl: string;
  /** Bearer token; null sends no Authorization header. */
  readonly token: string | null;
  readonly timeoutMs: number;
  /** Extra PEM bundle trusted in addition to Node's default roots. */
  readonly caFile: string | null;
  /** Sent as User-Agent, e.g. `etpro-telemetry-sidecar/0.1.0`. */
  readonly userAgent?: string;
}

/**
 * The axios instance for control-plane calls (heartbeat, sensorinfo, ruleset downloads):
 * base URL, bearer token, timeout, keep-alive agents, and `ETPRO_CA_FILE` added to the default
 * roots. Every HTTP status resolves (validateStatus accepts all) so callers branch on the code;
 * only network-level failures reject — classify them with `describeHttpFailure`.
 * Proxies: each request decides from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` (read when it is sent, see
 * `routeHttpsThroughEnvProxy`): an https URL goes through a CONNECT tunnel so TLS, the token and the
 * body stay end-to-end; an http URL uses axios's forward-proxy handling; without a proxy it is direct.
 */
export function createControlPlaneHttp(opts: ControlPlaneHttpOptions): AxiosInstance {
  let ca: string[] | undefined;
  if (opts.caFile !== null) {
    let extra: string;
    try {
      extra = readFileSync(opts.caFile, 'utf8');
    } catch (err) {
      throw new AgentError('ERR_CONFIG_INVALID', `ETPRO_CA_FILE=${opts.caFile} cannot be read (${errorCode(err) ?? 'error'}).`, { caFile: opts.caFile }, { cause: err });
    }
    if (!extra.includes('-----BEGIN CERTIFICATE-----')) {
      throw new AgentError('ERR_CONFIG_INVALID', `ETPRO_CA_FILE=${opts.caFile} holds no PEM certificate.`, { caFile: opts.caFile });
    }
    ca = [...rootCertificates, extra];
  }
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (opts.token !== null) headers['Authorization'] = `Bearer ${opts.token}`;
  if (opts.userAgent) headers['User-Agent'] = opts.userAgent;
  const client = axios.create({
    baseURL: opts.baseUrl,
    timeout: opts.timeoutMs,
    headers,
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 4 }),
    validateStatus: () => true,
    maxRedirects: 5,
    // Control-plane answers are small JSON; the ruleset download sets its own limit per request.
    maxContentLength: 4 * 1_048_576,
    transitional: { clarifyTimeoutError: true },
  });
  return routeHttpsThroughEnvProxy(client, { keepAlive: true, maxSockets: 4, ca });
}

/** TLS and pooling settings shared by the direct https agent and every tunnelling agent. */
export interface HttpsRouteOptions {
  readonly keepAlive: boolean;
  readonly maxSockets?: number;
  /** Trusted roots for the origin (and for an https:// proxy); undefined keeps Node's defaults. */
  readonly ca?: readonly string[] | undefined;
}

/**
 * `HttpsProxyAgent` applies its constructor options to the proxy connection only; the TLS session
 * to the origin inside the tunnel is built from the request's options. This adds the trusted roots
 * there too, so ETPRO_CA_FILE works the same with and without a proxy.
 */
class TunnellingAgent extends HttpsProxyAgent<string> {
  constructor(proxy: string, opts: http.AgentOptions & { ca?: string[] }, private readonly originCa: string[] | undefined) {
    super(proxy, opts);
  }

  override connect(req: http.ClientRequest, opts: Parameters<HttpsProxyAgent<string>['connect']>[1]): ReturnType<HttpsProxyAgent<string>['connect']> {
    if (opts.secureEndpoint && this.originCa) return super.connect(req, { ...opts, ca: this.originCa });
    return super.connect(req, opts);
  }
}

type HttpsAgentChoice = https.Agent | TunnellingAgent;

/**
 * Makes every https request of `client` pick its agent when it is sent: `getProxyForUrl` (which reads
 * HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY at that moment) names a proxy → a CONNECT-tunnelling
 * `HttpsProxyAgent` for that proxy URL (one per proxy URL, reused), else the direct https agent.
 * Axios's own proxy handling is switched off for these requests (`proxy: false`) so it cannot replace
 * the tunnel; redirects are decided again for their new URL. http URLs are left to axios, which
 * forwards them to HTTP_PROXY itself. Proxy URLs, which may hold credentials, are never logged.
 */
export function routeHttpsThroughEnvProxy(client: AxiosInstance, o: HttpsRouteOptions): AxiosInstance {
  const tls = { keepAlive: o.keepAlive, ...(o.maxSockets !== undefined ? { maxSockets: o.maxSockets } : {}), ...(o.ca ? { ca: [...o.ca] } : {}) };
  const direct = new https.Agent(tls);
  const tunnels = new Map<string, TunnellingAgent>();
  const agentFor = (url: string): HttpsAgentChoice => {
    const proxy = getProxyForUrl(url);
    if (proxy === '') return direct;
    let tunnel = tunnels.get(proxy);
    if (tunnel === undefined) {
      try {
        tunnel = new TunnellingAgent(proxy, tls, tls.ca);
      } catch (err) {
        // The message would echo the proxy URL; name only the variables.
        throw new AgentError('ERR_CONFIG_INVALID', 'HTTPS_PROXY / HTTP_PROXY / ALL_PROXY does not hold a valid proxy URL.', {}, { cause: err });
      }
      tunnels.set(proxy, tunnel);
    }
    return tunnel;
  };
  client.defaults.httpsAgent = direct;
  client.interceptors.request.use((config) => {
    const url = client.getUri(config);
    if (!url.startsWith('https:')) return config;
    config.httpsAgent = agentFor(url);
    config.proxy = false;
    config.beforeRedirect = (options: Record<string, unknown>) => {
      if (options['protocol'] !== 'https:' || typeof options['href'] !== 'string') return;
      const agent = agentFor(options['href']);
      options['agent'] = agent;
      const agents = options['agents'] as { https?: unknown } | undefined;
      if (agents) agents.https = agent;
    };
    return config;
  });
  return client;
}

/** Why a control-plane request could not be answered. Bounded set, safe as a metric label. */
export type HttpFailureKind = 'timeout' | 'dns' | 'tls' | 'connection' | 'other';

export interface HttpFailure {
  readonly kind: HttpFailureKind;
  /** The system or axios error code, e.g. ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED. */
  readonly code: string | null;
  /** One sentence for logs and /status (never contains the token). */
  readonly reason: string;
}

const TLS_CODE = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|DEPTH_ZERO|ERR_OSSL|HOSTNAME_MISMATCH|ALTNAME/i;

/** Classifies a rejected axios request (network level: no HTTP status was received). */
export function describeHttpFailure(err: unknown): HttpFailure {
  const code = errorCode(err) ?? errorCode((err as { cause?: unknown } | null)?.cause) ?? null;
  if (code === 'ETIMEDOUT' || code === 'ECONNABORTED' || code === 'ERR_CANCELED') {
    return { kind: 'timeout', code, reason: 'timed out waiting for the server' };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_FAIL') {
    return { kind: 'dns', code, reason: `DNS lookup failed (${code})` };
  }
  if (code !== null && TLS_CODE.test(code)) {
    return { kind: 'tls', code, reason: `TLS verification failed (${code}); set ETPRO_CA_FILE if a proxy re-signs traffic` };
  }
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EPIPE' || code === 'ERR_NETWORK') {
    return { kind: 'connection', code, reason: `cannot connect to the server (${code})` };
  }
  return { kind: 'other', code, reason: `request failed (${code ?? (err instanceof Error ? err.message : String(err))})` };
}
