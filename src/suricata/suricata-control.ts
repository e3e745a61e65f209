import net from 'node:net';
import { AgentError } from '../errors.js';

/** A reply of Suricata's unix-command socket. */
export interface SuricataReply {
  readonly return: 'OK' | 'NOK';
  readonly message: unknown;
}

/**
 * Suricata's control socket, behind an interface so business code never touches a socket.
 * `command` resolves with the reply's `message` on OK and rejects with an AgentError:
 * ERR_SURICATA_NOK (Suricata's own message in `details.message`), ERR_SURICATA_UNAVAILABLE
 * (no socket, or nobody listening: Suricata is not running), ERR_SURICATA_TIMEOUT, ERR_SURICATA_CLOSED.
 */
export interface SuricataControl {
  readonly socketPath: string;
  command(name: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_REPLY_BYTES = 16 * 1_048_576;

/**
 * One short connection per command: connect, send the handshake at once (an idle client blocks
 * Suricata's socket thread for everybody), wait for `{"return":"OK"}\n`, send the command in ONE
 * write ending in `\n`, read one `\n`-terminated reply, close. Commands are serialized.
 */
export class UnixSocketControl implements SuricataControl {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly socketPath: string) {}

  command(name: string, args?: Record<string, unknown>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    const run = (): Promise<unknown> => this.roundTrip(name, args, timeoutMs);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private roundTrip(name: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<unknown> {
    const socketPath = this.socketPath;
    return new Promise((resolve, reject) => {
      const s = net.createConnection(socketPath);
      let buf: Buffer = Buffer.alloc(0);
      let shook = false;
      let done = false;
      const finish = (err: Error | null, value?: unknown): void => {
        if (done) return;
        done = true;
        s.destroy();
        if (err) reject(err);
        else resolve(value);
      };
      const fail = (code: 'ERR_SURICATA_TIMEOUT' | 'ERR_SURICATA_CLOSED' | 'ERR_SURICATA_NOK', message: string, details: Record<string, unknown> = {}): void =>
        finish(new AgentError(code, message, { socket: socketPath, command: name, ...details }));

      s.setTimeout(timeoutMs, () => fail('ERR_SURICATA_TIMEOUT', `Suricata did not answer "${name}" within ${timeoutMs} ms on ${socketPath}.`));
      s.on('connect', () => s.write('{"version":"0.2"}'));
      s.on('data', (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        if (buf.length > MAX_REPLY_BYTES) return fail('ERR_SURICATA_CLOSED', `Suricata's reply to "${name}" exceeds ${MAX_REPLY_BYTES} bytes.`);
        for (let i = buf.indexOf(10); i >= 0 && !done; i = buf.indexOf(10)) {
          const line = buf.subarray(0, i).toString('utf8');
          buf = buf.subarray(i + 1);
          let reply: SuricataReply;
          try {
            reply = JSON.parse(line) as SuricataReply;
          } catch {
            return fail('ERR_SURICATA_CLOSED', `Suricata answered "${name}" with something that is not JSON.`);
          }
          if (!shook) {
            if (reply.return !== 'OK') return fail('ERR_SURICATA_NOK', `Suricata refused the protocol handshake on ${socketPath}.`, { message: reply.message });
            shook = true;
            const cmd = args === undefined ? { command: name } : { command: name, arguments: args };
            s.write(`${JSON.stringify(cmd)}\n`);
            continue;
          }
          if (reply.return === 'OK') return finish(null, reply.message);
          const text = typeof reply.message === 'string' ? reply.message : JSON.stringify(reply.message);
          return fail('ERR_SURICATA_NOK', `Suricata answered NOK to "${name}": ${text}`, { message: reply.message });
        }
      });
      s.on('error', (err: NodeJS.ErrnoException) => {
        const unavailable = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
        finish(
          new AgentError(
            unavailable ? 'ERR_SURICATA_UNAVAILABLE' : 'ERR_SURICATA_CLOSED',
            unavailable
              ? `Suricata is not answering on ${socketPath} (${err.code}): not running, or the socket is not shared with this container.`
              : `Suricata's socket ${socketPath} failed (${err.code ?? err.message}).`,
            { socket: socketPath, command: name, syscallCode: err.code },
            { cause: err },
          ),
        );
      });
      s.on('close', () => fail('ERR_SURICATA_CLOSED', `Suricata closed the connection without answering "${name}".`));
    });
  }
}
