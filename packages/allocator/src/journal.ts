/**
 * Undo journal of the allocator's in-memory state. The allocator decides allocations in memory
 * (free subnets, addresses, ports, VIPs — SwarmKit's `allocator/cnmallocator` does the same) while
 * it builds a store transaction; each decision is recorded here with its inverse. When the
 * transaction is retried or fails, {@link UndoJournal.rollback} runs the inverses, newest first, so
 * memory again matches the store; when it commits, {@link UndoJournal.commit} forgets them.
 *
 * Inverses release by owner (task, service or network ID) and tolerate an owner that is gone
 * (`pools.get(id)?.release(…)`): store events delivered between two attempts may already have
 * dropped it.
 */
export class UndoJournal {
  private ops: (() => void)[] = [];

  /** Records the inverse of an allocation just made in memory. */
  record(undo: () => void): void {
    this.ops.push(undo);
  }

  /** Undoes every recorded allocation, newest first, and empties the journal. */
  rollback(): void {
    const ops = this.ops;
    this.ops = [];
    for (let i = ops.length - 1; i >= 0; i--) ops[i]!();
  }

  /** The allocations were committed to the store: keep them, forget their inverses. */
  commit(): void {
    this.ops = [];
  }

  /** Inverses recorded since the last commit or rollback. */
  get size(): number {
    return this.ops.length;
  }
}
