/**
 * The unstable part of the log: entries (and possibly a snapshot) the core has accepted but the
 * host has not yet reported persisted. `entries[i]` has index `offset + i`. (etcd-io/raft
 * `log_unstable.go`.)
 */
import type { Entry, Snapshot } from './types.js';

export class Unstable {
  /** Incoming snapshot, if any, not yet persisted. */
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** First index known only from the unstable snapshot, if one is pending. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  /** Last index, from the unstable entries or else the unstable snapshot. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  /** Term of entry `i` if this part of the log knows it. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /** The host persisted entries up to `(i, t)`: drop them from here (if the term still matches). */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || i < this.offset) return;
    // If the entry at i was overwritten by a newer leader since the Ready, it is not stable yet.
    if (gt === t) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const fromIndex = ents[0]!.index;
    if (fromIndex === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (fromIndex <= this.offset) {
      // Replace everything unstable; the host will overwrite its stored suffix from fromIndex.
      this.offset = fromIndex;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, fromIndex - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  /** Entries in [lo, hi); the caller guarantees offset ≤ lo ≤ hi ≤ offset + len. */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi || lo < this.offset || hi > this.offset + this.entries.length) {
      throw new RangeError(`raft unstable: slice [${lo}, ${hi}) out of bounds [${this.offset}, ${this.offset + this.entries.length}]`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
