/**
 * The Raft log as the core sees it: the host's stable {@link Storage} followed by the
 * {@link Unstable} tail, plus the commit and applied indexes. (Raft paper §5.3; etcd-io/raft
 * `log.go`.)
 */
import { CompactedError, UnavailableError } from './errors.js';
import { Unstable } from './log_unstable.js';
import type { Entry, Snapshot, Storage } from './types.js';
import { entrySize, limitSize } from './util.js';

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be committed (stored on a quorum). */
  committed: number;
  /** Highest index the host reported applied to its state machine. */
  applied: number;
  /** Cap (bytes) on the committed entries handed out in one Ready. */
  readonly maxApplyingSize: number;

  constructor(storage: Storage, maxApplyingSize: number = Infinity) {
    this.storage = storage;
    this.maxApplyingSize = maxApplyingSize;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * Term of entry `i`. Index `firstIndex()-1` (the snapshot point) is answerable. Throws
   * CompactedError below that, UnavailableError above the last index.
   */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(i, dummy + 1);
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    return this.storage.term(i);
  }

  /** Term of entry `i`, or 0 when it is compacted or beyond the log. */
  zeroTermOnOutOfBounds(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return 0;
      throw e;
    }
  }

  matchTerm(i: number, t: number): boolean {
    try {
      return this.term(i) === t;
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return false;
      throw e;
    }
  }

  /**
   * Follower side of AppendEntries (Raft paper Figure 2, receiver rules 2–5): if the entry at
   * `index` has term `logTerm`, append `ents` (truncating from the first conflicting entry only,
   * never on a mere duplicate), advance the commit index to min(`committed`, last new index) and
   * return the last new index. Returns undefined when the consistency check fails.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`raft: entry ${ci} conflicts with committed entry (committed ${this.committed}); the log is corrupt`);
      }
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries after truncating from their first index; returns the new last index. */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new Error(`raft: append after index ${after} would overwrite committed index ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry in `ents` whose term differs from ours, or of the first entry we do
   * not have; 0 when every entry is already present with the same term.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking (Raft thesis §5.3 optimisation, etcd `findConflictByTerm`): the largest
   * index ≤ `index` whose term is ≤ `term`, with that term. Returns `[index, 0]` when the term is
   * unknown (compacted) so the caller probes from there.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      let t: number;
      try {
        t = this.term(index);
      } catch (e) {
        if (e instanceof CompactedError || e instanceof UnavailableError) return [index, 0];
        throw e;
      }
      if (t <= term) return [index, t];
    }
    return [0, 0];
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Committed entries not yet applied, capped by `maxApplyingSize` (at least one). */
  nextCommittedEnts(): Entry[] {
    if (this.unstable.snapshot) return []; // apply the snapshot first
    const lo = Math.max(this.applied + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, this.maxApplyingSize);
  }

  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot) return false;
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  /** The snapshot to send to a follower that needs compacted entries. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return; // never decrease
    if (toCommit > this.lastIndex()) {
      throw new Error(`raft: commit index ${toCommit} is out of range [last index ${this.lastIndex()}]; the log was truncated or lost`);
    }
    this.committed = toCommit;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) {
      throw new Error(`raft: applied index ${i} is out of range [prev applied ${this.applied}, committed ${this.committed}]`);
    }
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Entries from `i` to the end, at most `maxSize` bytes (at least one). */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** Entries in [lo, hi) at most `maxSize` bytes. Throws CompactedError if lo is compacted. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    const last = this.lastIndex();
    if (hi > last + 1) throw new UnavailableError(hi - 1, last);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uo = this.unstable.offset;
    if (lo < uo) {
      const stored = this.storage.entries(lo, Math.min(hi, uo), maxSize);
      // Storage stopped early (size cap): do not add unstable entries after a gap.
      if (stored.length < Math.min(hi, uo) - lo) return stored;
      ents = stored;
    }
    if (hi > uo) {
      // Cap the unstable part before copying it (a follower far behind may need few of them).
      const from = Math.max(lo, uo);
      let budget = maxSize;
      for (const e of ents) budget -= entrySize(e);
      let to = from;
      while (to < hi) {
        const e = this.unstable.entries[to - uo]!;
        budget -= entrySize(e);
        if (budget < 0 && (to > from || ents.length > 0)) break;
        to++;
      }
      if (to === from) return ents;
      const un = this.unstable.slice(from, to);
      ents = ents.length > 0 ? ents.concat(un) : un;
    }
    return limitSize(ents, maxSize);
  }

  /**
   * Election restriction (Raft paper §5.4.1): a candidate's log ending at (`lastIndex`, `term`)
   * is at least as up-to-date as ours — compare last terms first, then last indexes.
   */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Leader commit rule (Raft paper §5.4.2, Figure 8): advance to `maxIndex` only if that entry is
   * from the leader's current `term`. Earlier-term entries commit indirectly.
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTermOnOutOfBounds(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Resets the log to a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
