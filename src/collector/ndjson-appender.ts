import { createWriteStream, type WriteStream } from 'node:fs';

/**
 * Appends JSON lines to a file in batches: lines gather for up to `flushMs` (or until `maxBatchBytes`)
 * and go out in one write — one syscall per batch instead of one per record, which is what lets the
 * collector take tens of thousands of events a second. close() writes whatever is pending.
 */
export class NdjsonAppender {
  private readonly stream: WriteStream;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    path: string,
    onError: (err: Error) => void,
    private readonly flushMs = 20,
    private readonly maxBatchBytes = 1_048_576,
  ) {
    this.stream = createWriteStream(path, { flags: 'a' });
    let reported = false;
    this.stream.on('error', (err) => {
      if (reported) return;
      reported = true;
      onError(err);
    });
  }

  /** Queues one line (already serialized JSON, without the newline). */
  append(line: string): void {
    if (this.closed) return;
    this.pending.push(line);
    this.pendingBytes += line.length + 1;
    if (this.pendingBytes >= this.maxBatchBytes) this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  private flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('\n') + '\n';
    this.pending = [];
    this.pendingBytes = 0;
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
