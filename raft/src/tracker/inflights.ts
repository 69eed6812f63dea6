/**
 * A sliding window of in-flight MsgApp messages to one follower, bounded both by message count
 * and by bytes (etcd-io/raft `tracker/inflights.go`). Each slot records the last index a message
 * carried and its size; an acknowledgement for index i frees every slot ≤ i.
 */
export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  private start = 0;
  /** Bytes currently in flight. */
  bytes = 0;

  constructor(
    /** Max messages in flight (≥ 1). */
    readonly maxCount: number,
    /** Max bytes in flight; Infinity for no limit. */
    readonly maxBytes: number = Infinity,
  ) {}

  get count(): number {
    return this.indexes.length - this.start;
  }

  /** Records a message whose last entry is `index` and whose entries weigh `bytes`. */
  add(index: number, bytes: number): void {
    if (this.full()) throw new Error('raft inflights: add() on a full window; check full() first');
    this.indexes.push(index);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every in-flight message whose last index is ≤ `to`. */
  freeLE(to: number): void {
    while (this.start < this.indexes.length && this.indexes[this.start]! <= to) {
      this.bytes -= this.sizes[this.start]!;
      this.start++;
    }
    // Compact lazily so amortised cost stays O(1).
    if (this.start > 64 && this.start * 2 > this.indexes.length) {
      this.indexes.splice(0, this.start);
      this.sizes.splice(0, this.start);
      this.start = 0;
    }
  }

  /** Frees the oldest in-flight message (recovery when every message in the window was lost). */
  freeFirstOne(): void {
    const first = this.indexes[this.start];
    if (first !== undefined) this.freeLE(first);
  }

  full(): boolean {
    return this.count >= this.maxCount || this.bytes >= this.maxBytes;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.start = 0;
    this.bytes = 0;
  }
}
