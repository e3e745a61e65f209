import { createWriteStream, type WriteStream } from 'node:fs';

/**
 * Appends JSON lines to a file, batching everything written in one turn of the event loop into a
 * single write (one syscall per batch instead of one per record). A batch never exceeds `maxBatch` lines.
 */
export class NdjsonAppender {
  private readonly stream: WriteStream;
  private pending: string[] = [];
  private scheduled = false;
  private closed = false;

  constructor(
    path: string,
    private readonly maxBatch = 10_000,
  ) {
    this.stream = createWriteStream(path, { flags: 'a' });
    // An error surfaces on close(); until then there is nobody to tell but the stream itself.
    this.stream.on('error', () => undefined);
  }

  /** Queues one line (already serialized JSON, without the newline). */
  append(line: string): void {
    if (this.closed) return;
    this.pending.push(line);
    if (this.pending.length >= this.maxBatch) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('\n') + '\n';
    this.pending = [];
    this.stream.write(chunk);
  }

  /** Writes what is queued and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    await new Promise<void>((resolve, reject) => {
      this.stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }
}
