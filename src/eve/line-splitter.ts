/** Receives what the splitter finds; offsets are byte offsets in the file. */
export interface LineSink {
  /** A complete line (without `\n` and a trailing `\r`), starting at `start`, its `\n` ending just before `end`. */
  line(text: string, start: number, end: number): void;
  /** A line longer than the limit; its bytes were dropped as they arrived. */
  tooLong(start: number, end: number): void;
  /** An empty line: nothing to hand out. */
  blank(start: number, end: number): void;
  /**
   * Optional: asked with a line's bytes before it is decoded. `false` skips the line (it goes to
   * `blank`), so lines the consumer has no use for never become strings.
   */
  wants?(bytes: Buffer, start: number, end: number): boolean;
}

const NL = 10;
const CR = 13;

/**
 * Splits a byte stream read from one file into `\n`-terminated lines, keeping the partial
 * tail until its newline arrives. A line longer than `maxLineBytes` is never held in memory:
 * its bytes are discarded until the next newline. Tracks `pos` (the next byte to read) and
 * `lineStart` (where the line being assembled starts).
 */
export class LineSplitter {
  /** File offset of the next byte the caller must feed. */
  pos = 0;
  /** File offset of the first byte of the line not yet complete. */
  lineStart = 0;
  private tail: Buffer[] = [];
  private tailLen = 0;
  private discarding = false;

  constructor(private readonly maxLineBytes: number) {}

  /** Starts over at `offset`, which must be a line start. */
  reset(offset: number): void {
    this.pos = offset;
    this.lineStart = offset;
    this.tail = [];
    this.tailLen = 0;
    this.discarding = false;
  }

  /** Bytes of an incomplete line seen so far (0 when the stream ends on a newline). */
  get partialBytes(): number {
    return this.pos - this.lineStart;
  }

  /**
   * Feeds `chunk`, the bytes at [pos, pos + chunk.length). At most `limit` lines go to
   * `sink.line`; when the limit stops it early, `pos` moves back to the first line not handed
   * out, and the caller re-reads from there later. Returns the number of lines handed out.
   */
  push(chunk: Buffer, limit: number, sink: LineSink): number {
    const base = this.pos;
    const n = chunk.length;
    let i = 0;
    let emitted = 0;
    while (i < n) {
      const nl = chunk.indexOf(NL, i);
      if (nl < 0) {
        if (!this.discarding) {
          if (this.tailLen + (n - i) > this.maxLineBytes) {
            this.discarding = true;
            this.tail = [];
            this.tailLen = 0;
          } else {
            this.tail.push(Buffer.from(chunk.subarray(i))); // a copy: the caller reuses its buffer
            this.tailLen += n - i;
          }
        }
        break;
      }
      const start = this.lineStart;
      const end = base + nl + 1;
      if (this.discarding) {
        this.discarding = false;
        sink.tooLong(start, end);
      } else {
        let len = this.tailLen + (nl - i);
        if (len > this.maxLineBytes) {
          sink.tooLong(start, end);
        } else {
          if (len > 0 && (nl > i ? chunk[nl - 1] : this.lastTailByte()) === CR) len--;
          if (len === 0) {
            sink.blank(start, end);
          } else {
            if (emitted >= limit) {
              // Give the rest back: it is read again once there is room.
              this.pos = start;
              this.tail = [];
              this.tailLen = 0;
              return emitted;
            }
            let bytes: Buffer;
            let from: number;
            if (this.tailLen === 0) {
              bytes = chunk;
              from = i;
            } else {
              this.tail.push(chunk.subarray(i, nl));
              bytes = Buffer.concat(this.tail, this.tailLen + (nl - i));
              from = 0;
            }
            if (sink.wants !== undefined && !sink.wants(bytes, from, from + len)) {
              sink.blank(start, end);
            } else {
              sink.line(bytes.toString('utf8', from, from + len), start, end);
              emitted++;
            }
          }
        }
      }
      this.tail = [];
      this.tailLen = 0;
      this.lineStart = end;
      i = nl + 1;
    }
    this.pos = base + n;
    return emitted;
  }

  private lastTailByte(): number | undefined {
    const last = this.tail[this.tail.length - 1];
    return last === undefined ? undefined : last[last.length - 1];
  }
}
