import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { EnvHttpProxyAgent } from 'undici';
import { AgentError, errorCode, errorMessage } from '../errors.js';
import { parseRetryAfter } from './retry-policy.js';

/**
 * The edge adapter for the data-plane calls of the ET API (`POST /api/v1/event`, `POST /api/v1/telemetry`).
 * It never throws for an expected outcome: every answer and every network failure becomes a {@link SendResult}.
 *
 * How answers are classified (design.md §2):
 * - any 2xx → `ok` (the ET API answers 201; 200/202/204 also mean the record was taken);
 * - 401, 403 → `auth` (token wrong or revoked: the caller pauses, never skips);
 * - 408, 429, 5xx, timeouts, connection and TLS errors → `retryable` (with the server's Retry-After);
 * - 3xx → `retryable`: a redirect is not followed for a POST and usually means a wrong ETPRO_BASE_URL;
 *   skipping would silently drop every alert, retrying keeps them and shows the code on /status;
 * - any other 4xx → `rejected` with a short excerpt of the body (that one record may be skipped).
 */
export type SendResult =
  | { kind: 'ok'; status: number }
  | { kind: 'retryable'; status: number | null; reason: string; retryAfterMs?: number }
  | { kind: 'auth'; status: 401 | 403 }
  | { kind: 'rejected'; status: number; body: string };

export interface TelemetryClient {
  postEvent(body: string): Promise<SendResult>;
  postTelemetry(body: string): Promise<SendResult>;
  /** Closes the connections; requests still running are aborted (their records stay un-acknowledged). Idempotent. */
  close(): Promise<void>;
}

export interface TelemetryClientOptions {
  /** e.g. `https://opnsense.emergingthreats.net`; a path prefix is kept (`https://host/prefix`). */
  readonly baseUrl: string;
  readonly token: string;
  /** Longest wait for the connection, for the response headers and between body chunks. */
  readonly timeoutMs: number;
  /** Extra PEM bundle trusted in addition to Node's default roots. */
  readonly caFile: string | null;
  /** Keep-alive connections to the collector (at least the shipper's in-flight window). */
  readonly maxConnections: number;
  /** Sent as User-Agent. */
  readonly userAgent?: string;
  /** Clock for Retry-After dates. */
  readonly now?: () => number;
}

/** Longest part of a rejection body kept for the log. */
const BODY_EXCERPT_BYTES = 512;

/**
 * Builds the client: one keep-alive connection pool (undici) per client, TLS verification always on,
 * `caFile` added to the default roots, and HTTPS_PROXY / HTTP_PROXY / NO_PROXY honoured (undici's
 * EnvHttpProxyAgent reads them; without them it connects directly).
 * Throws ERR_CONFIG_INVALID when the base URL or the CA file is unusable.
 */
export function createTelemetryClient(opts: TelemetryClientOptions): TelemetryClient {
  let url: URL;
  try {
    url = new URL(opts.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
  } catch {
    throw new AgentError('ERR_CONFIG_INVALID', `Telemetry base URL ${JSON.stringify(opts.baseUrl)} is not an http(s) URL.`, { baseUrl: opts.baseUrl });
  }
  if (!Number.isInteger(opts.maxConnections) || opts.maxConnections < 1) {
    throw new AgentError('ERR_CONFIG_INVALID', `Telemetry client maxConnections must be a positive whole number, got ${opts.maxConnections}.`);
  }
  const ca = readCa(opts.caFile);
  const tls = ca === undefined ? {} : { ca };
  const dispatcher = new EnvHttpProxyAgent({
    connections: opts.maxConnections,
    keepAliveTimeout: 30_000,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connect: { timeout: opts.timeoutMs, rejectUnauthorized: true, ...tls },
    // Through a proxy: TLS to the collector (requestTls) and to an https proxy (proxyTls) trust the same roots.
    requestTls: { rejectUnauthorized: true, ...tls },
    proxyTls: { rejectUnauthorized: true, ...tls },
  });
  const origin = url.origin;
  const prefix = url.pathname.replace(/\/+$/, '');
  const headers: Record<string, string> = {
    authorization: `Bearer ${opts.token}`,
    'content-type': 'application/json',
    accept: 'application/json',
  };
  if (opts.userAgent) headers['user-agent'] = opts.userAgent;
  const now = opts.now ?? Date.now;
  let closing: Promise<void> | null = null;

  async function post(path: string, body: string): Promise<SendResult> {
    if (closing !== null) return { kind: 'retryable', status: null, reason: 'client closed' };
    let res;
    try {
      res = await dispatcher.request({ origin, path: prefix + path, method: 'POST', headers, body });
    } catch (err) {
      return { kind: 'retryable', status: null, reason: describeNetworkError(err) };
    }
    const status = res.statusCode;
    try {
      if (status >= 200 && status < 300) {
        await res.body.dump();
        return { kind: 'ok', status };
      }
      if (status === 401 || status === 403) {
        await res.body.dump();
        return { kind: 'auth', status };
      }
      if (status === 408 || status === 429 || status >= 500 || status < 200) {
        await res.body.dump();
        const header = res.headers['retry-after'];
        const retryAfterMs = parseRetryAfter(Array.isArray(header) ? header[0] : header, now());
        return { kind: 'retryable', status, reason: `HTTP ${status}`, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
      }
      if (status >= 300 && status < 400) {
        await res.body.dump();
        return { kind: 'retryable', status, reason: `HTTP ${status} (redirect not followed; check the base URL)` };
      }
      return { kind: 'rejected', status, body: await excerpt(res.body) };
    } catch (err) {
      // The answer's status is known but its body broke off: treat like any network failure.
      return { kind: 'retryable', status: null, reason: describeNetworkError(err) };
    }
  }

  return {
    postEvent: (body) => post('/api/v1/event', body),
    postTelemetry: (body) => post('/api/v1/telemetry', body),
    close: () => {
      closing ??= dispatcher.destroy().catch(() => undefined);
      return closing;
    },
  };
}

function readCa(caFile: string | null): string[] | undefined {
  if (caFile === null) return undefined;
  let extra: string;
  try {
    extra = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new AgentError('ERR_CONFIG_INVALID', `ETPRO_CA_FILE=${caFile} cannot be read (${errorCode(err) ?? 'error'}).`, { caFile }, { cause: err });
  }
  if (!extra.includes('-----BEGIN CERTIFICATE-----')) {
    throw new AgentError('ERR_CONFIG_INVALID', `ETPRO_CA_FILE=${caFile} holds no PEM certificate.`, { caFile });
  }
  return [...rootCertificates, extra];
}

/** Past this, the rest of a rejection body is not read: the connection is dropped instead. */
const BODY_READ_LIMIT = 65_536;

/** The first {@link BODY_EXCERPT_BYTES} of a body as text; the rest is read and discarded (up to a limit). */
async function excerpt(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < BODY_EXCERPT_BYTES) chunks.push(chunk);
    size += chunk.length;
    // Leaving the loop destroys the body stream, and undici closes that connection.
    if (size > BODY_READ_LIMIT) break;
  }
  const text = Buffer.concat(chunks).subarray(0, BODY_EXCERPT_BYTES).toString('utf8');
  return size > BODY_EXCERPT_BYTES ? `${text}…` : text;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'ABORT_ERR']);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$)/;

/**
 * A short, stable name for a network failure: `timeout`, `TLS: <code>`, or the system/undici code
 * (`ECONNREFUSED`, `ECONNRESET`, `ENOTFOUND`, `UND_ERR_SOCKET`...). Looks through `cause` chains.
 */
export function describeNetworkError(err: unknown): string {
  const codes: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const c = errorCode(e);
    if (c !== undefined) codes.push(c);
    // AggregateError (happy-eyeballs over IPv4 and IPv6) keeps the real failures in `errors`.
    const agg = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(agg)) for (const sub of agg) { const sc = errorCode(sub); if (sc !== undefined) codes.push(sc); }
    e = (e as { cause?: unknown }).cause;
  }
  if (codes.some((c) => TIMEOUT_CODES.has(c))) return 'timeout';
  const tls = codes.find((c) => TLS_CODE.test(c));
  if (tls !== undefined) return `TLS: ${tls}`;
  // A socket error wraps the system error; the system code says more.
  const system = codes.find((c) => /^E[A-Z]+$/.test(c));
  if (system !== undefined) return system;
  if (codes.includes('UND_ERR_SOCKET')) return 'connection closed by peer';
  if (codes.length > 0) return codes[0]!;
  return errorMessage(err).slice(0, 120) || 'network error';
}
