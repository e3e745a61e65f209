import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentError, errorCode, errorMessage } from '../errors.js';
import { RateLimitedLog, type Logger } from '../logger.js';
import type { AgentStatus } from './agent-status.js';
import { AgentMetrics } from './metrics.js';

export interface Readiness {
  readonly ready: boolean;
  /** Why not ready, one sentence each (empty when ready). */
  readonly reasons: readonly string[];
}

export interface StatusServerOptions {
  /** ETPRO_STATUS_PORT (0 = any free port). */
  readonly port: number;
  /** ETPRO_STATUS_ADDR. */
  readonly addr: string;
  readonly snapshot: () => AgentStatus;
  /** The follower runs, the config is valid, the collector is not in prolonged failure. */
  readonly readiness: () => Readiness;
}

/**
 * The status surface: `/healthz` (200 while the process and its event loop answer), `/readyz`
 * (200, or 503 with the reasons), `/status` (the AgentStatus as JSON), `/metrics` (Prometheus).
 * GET and HEAD only. start() resolves with the bound port; stop() is idempotent.
 */
export class StatusServer {
  private server: http.Server | null = null;
  private readonly metrics: AgentMetrics;
  private readonly errorLog: RateLimitedLog;

  constructor(
    private readonly opts: StatusServerOptions,
    private readonly log: Logger,
  ) {
    this.metrics = new AgentMetrics(opts.snapshot);
    this.errorLog = new RateLimitedLog(log, 'error', 60_000);
  }

  /** The bound port, or null when not listening. */
  get port(): number | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? (a as AddressInfo).port : null;
  }

  get url(): string | null {
    const p = this.port;
    if (p === null) return null;
    const host = this.opts.addr.includes(':') ? `[${this.opts.addr}]` : this.opts.addr;
    return `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${p}`;
  }

  async start(): Promise<number> {
    if (this.server) return this.port!;
    const server = http.createServer((req, res) => {
      void this.handle(req, res);
    });
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new AgentError('ERR_STATUS_UNAVAILABLE', `Status server cannot listen on ${this.opts.addr}:${this.opts.port} (${err.code ?? err.message}).`, {
            addr: this.opts.addr,
            port: this.opts.port,
          }, { cause: err }),
        );
      };
      server.once('error', onError);
      server.listen(this.opts.port, this.opts.addr, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.server = server;
    this.log.info('Status server listening.', { addr: this.opts.addr, port: this.port });
    return this.port!;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private send(res: http.ServerResponse, code: number, contentType: string, body: string, head: boolean): void {
    res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(head ? undefined : body);
  }

  private json(res: http.ServerResponse, code: number, value: unknown, head: boolean): void {
    this.send(res, code, 'application/json; charset=utf-8', `${JSON.stringify(value, null, 2)}\n`, head);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const head = req.method === 'HEAD';
    const path = (req.url ?? '/').split('?')[0]!;
    try {
      if (req.method !== 'GET' && !head) {
        res.setHeader('Allow', 'GET, HEAD');
        return this.json(res, 405, { error: `method ${String(req.method)} not allowed` }, false);
      }
      switch (path) {
        case '/healthz':
          return this.json(res, 200, { status: 'ok' }, head);
        case '/readyz': {
          const r = this.opts.readiness();
          return this.json(res, r.ready ? 200 : 503, { ready: r.ready, reasons: r.reasons }, head);
        }
        case '/status':
          return this.json(res, 200, this.opts.snapshot(), head);
        case '/metrics': {
          const text = await this.metrics.text();
          return this.send(res, 200, this.metrics.contentType, text, head);
        }
        default:
          return this.json(res, 404, { error: 'not found', paths: ['/healthz', '/readyz', '/status', '/metrics'] }, head);
      }
    } catch (err) {
      this.errorLog.write('Status request failed.', { path, code: errorCode(err), error: errorMessage(err) });
      if (!res.headersSent) this.json(res, 500, { error: 'internal error', code: errorCode(err) ?? 'ERR_INTERNAL' }, head);
      else res.destroy();
    }
  }
}
