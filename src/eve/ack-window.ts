/**
 * The in-flight window of lines handed out but not all acknowledged. Sequence numbers are
 * consecutive from 1; `acked` is the highest seq such that every seq ≤ it has been acknowledged.
 * A ring of `capacity` slots (end offset, file, done flag): O(1) per line, memory fixed.
 */
export class AckWindow<F> {
  private readonly ends: Float64Array;
  private readonly files: (F | undefined)[];
  private readonly done: Uint8Array;
  private last = 0;
  private contiguous = 0;
  private ackedFile: F | undefined;
  private ackedEnd = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`AckWindow capacity must be a positive integer, got ${capacity}`);
    this.ends = new Float64Array(capacity);
    this.files = new Array<F | undefined>(capacity);
    this.done = new Uint8Array(capacity);
  }

  /** Highest seq handed out. */
  get emitted(): number {
    return this.last;
  }

  /** Highest seq with every seq ≤ it acknowledged. */
  get acked(): number {
    return this.contiguous;
  }

  get pending(): number {
    return this.last - this.contiguous;
  }

  /** File and end offset of the line `acked`; undefined file before the first acknowledgement. */
  get ackedPosition(): { file: F | undefined; end: number } {
    return { file: this.ackedFile, end: this.ackedEnd };
  }

  /** Registers the next line; returns its seq. The caller keeps pending below capacity. */
  add(file: F, end: number): number {
    if (this.pending >= this.capacity) throw new RangeError(`AckWindow is full (${this.capacity} lines pending)`);
    const seq = ++this.last;
    const slot = seq % this.capacity;
    this.ends[slot] = end;
    this.files[slot] = file;
    this.done[slot] = 0;
    return seq;
  }

  /** Marks `seq` done. Returns true when `acked` moved. Unknown or repeated seqs are ignored (false). */
  ack(seq: number): boolean {
    if (!Number.isInteger(seq) || seq <= this.contiguous || seq > this.last) return false;
    const cap = this.capacity;
    this.done[seq % cap] = 1;
    if (seq !== this.contiguous + 1) return false;
    let c = this.contiguous;
    while (c < this.last && this.done[(c + 1) % cap] === 1) {
      c++;
      const slot = c % cap;
      this.done[slot] = 0;
      this.ackedEnd = this.ends[slot]!;
      this.ackedFile = this.files[slot];
      this.files[slot] = undefined;
    }
    this.contiguous = c;
    return true;
  }

  /** True when `seq` was handed out and is not acknowledged yet. */
  isPending(seq: number): boolean {
    return seq > this.contiguous && seq <= this.last && this.done[seq % this.capacity] === 0;
  }
}
