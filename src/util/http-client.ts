import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import axios, { type AxiosInstance } from 'axios';
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
 * Proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` are honoured by axios itself.
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
  return axios.create({
    baseURL: opts.baseUrl,
    timeout: opts.timeoutMs,
    headers,
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 4 }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 4, ...(ca ? { ca } : {}) }),
    validateStatus: () => true,
    maxRedirects: 5,
    // Control-plane answers are small JSON; the ruleset download sets its own limit per request.
    maxContentLength: 4 * 1_048_576,
    transitional: { clarifyTimeoutError: true },
  });
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
