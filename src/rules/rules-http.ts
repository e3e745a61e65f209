import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import axios, { type AxiosInstance } from 'axios';
import { AgentError } from '../errors.js';
import { routeHttpsThroughEnvProxy } from '../util/http-client.js';

/**
 * The small HTTP client of the rules job: GETs with an idle timeout, an overall deadline, a body size
 * cap enforced while streaming (the body is never held beyond the cap), and conditional headers.
 * Expected outcomes are results; transport problems and bad statuses are ERR_RULES_DOWNLOAD.
 */

export interface RulesHttpOptions {
  readonly timeoutMs: number;
  /** Overall deadline for one download (headers + body). */
  readonly deadlineMs: number;
  readonly caFile: string | null;
  readonly userAgent: string;
}

export interface Validators {
  readonly etag?: string | null;
  readonly lastModified?: string | null;
}

export type FetchResult =
  | { readonly kind: 'not-modified' }
  | { readonly kind: 'ok'; readonly body: Buffer; readonly etag: string | null; readonly lastModified: string | null };

export interface GetOptions {
  readonly bearer?: string | null;
  readonly maxBytes: number;
  readonly validators?: Validators | null;
  /** What is fetched, for error messages ("ET Open archive"). */
  readonly what: string;
}

/** Strips credentials and query from a URL for logs and errors. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

export class RulesHttp {
  private readonly client: AxiosInstance;

  constructor(private readonly opts: RulesHttpOptions) {
    // An extra CA is added to the public roots, not instead of them.
    const ca = opts.caFile ? readFileSync(opts.caFile) : undefined;
    // HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured per URL (ET Pro and ET Open are on different hosts).
    this.client = routeHttpsThroughEnvProxy(
      axios.create({
        timeout: opts.timeoutMs,
        maxRedirects: 5,
        responseType: 'stream',
        decompress: true,
        validateStatus: () => true,
        httpAgent: new http.Agent({ keepAlive: false }),
        headers: { 'User-Agent': opts.userAgent },
      }),
      { keepAlive: false, ca: ca ? [...rootCertificates, ca.toString('utf8')] : undefined },
    );
  }

  async get(url: string, o: GetOptions): Promise<FetchResult> {
    const where = safeUrl(url);
    const headers: Record<string, string> = {};
    if (o.bearer) headers['Authorization'] = `Bearer ${o.bearer}`;
    if (o.validators?.etag) headers['If-None-Match'] = o.validators.etag;
    if (o.validators?.lastModified) headers['If-Modified-Since'] = o.validators.lastModified;
    const abort = new AbortController();
    const deadline = setTimeout(() => abort.abort(), this.opts.deadlineMs);
    deadline.unref();
    try {
      let res;
      try {
        res = await this.client.get<Readable>(url, { headers, signal: abort.signal, maxContentLength: o.maxBytes });
      } catch (err) {
        const code = (err as { code?: string }).code;
        const timedOut = abort.signal.aborted || code === 'ECONNABORTED' || code === 'ETIMEDOUT';
        throw new AgentError(
          'ERR_RULES_DOWNLOAD',
          timedOut ? `${o.what}: no answer from ${where} in time.` : `${o.what}: cannot reach ${where} (${code ?? (err as Error).message}).`,
          { url: where, reason: timedOut ? 'timeout' : 'network', syscallCode: code },
          { cause: err },
        );
      }
      const status = res.status;
      if (status === 304) {
        res.data.destroy();
        return { kind: 'not-modified' };
      }
      if (status !== 200) {
        res.data.destroy();
        const hint = status === 401 || status === 403 ? ' The token is likely wrong or revoked.' : '';
        throw new AgentError('ERR_RULES_DOWNLOAD', `${o.what}: ${where} answered HTTP ${status}.${hint}`, { url: where, httpCode: status, reason: 'http-status' });
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > o.maxBytes) {
        res.data.destroy();
        throw tooLarge(o.what, where, o.maxBytes);
      }
      const body = await readCapped(res.data, o.maxBytes, () => tooLarge(o.what, where, o.maxBytes), abort.signal, () =>
        new AgentError('ERR_RULES_DOWNLOAD', `${o.what}: download from ${where} did not finish in time.`, { url: where, reason: 'timeout' }),
      );
      const etag = typeof res.headers['etag'] === 'string' ? res.headers['etag'] : null;
      const lastModified = typeof res.headers['last-modified'] === 'string' ? res.headers['last-modified'] : null;
      return { kind: 'ok', body, etag, lastModified };
    } finally {
      clearTimeout(deadline);
    }
  }
}


function tooLarge(what: string, where: string, max: number): AgentError {
  return new AgentError('ERR_RULES_ARCHIVE', `${what}: ${where} sends more than ${max} bytes (ETPRO_RULES_MAX_MB).`, { url: where, reason: 'too-large', limit: max });
}

function readCapped(stream: Readable, max: number, tooBig: () => Error, signal: AbortSignal, timedOut: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (err) {
        stream.destroy();
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onAbort = (): void => finish(timedOut());
    signal.addEventListener('abort', onAbort);
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) return finish(tooBig());
      chunks.push(c);
    });
    stream.on('end', () => finish(null));
    stream.on('error', (err: Error) => finish(signal.aborted ? timedOut() : new AgentError('ERR_RULES_DOWNLOAD', `Download broke off: ${err.message}.`, { reason: 'network' }, { cause: err })));
  });
}
