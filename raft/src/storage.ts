/**
 * In-memory {@link Storage}: the log, hard state and latest snapshot held in arrays. The host
 * appends what each `Ready` asks it to persist (after persisting it durably elsewhere, if it has
 * a disk), and the core reads it back. Shape and semantics follow etcd-io/raft `MemoryStorage`.
 */
import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import type { ConfState, Entry, HardState, Snapshot, Storage } from './types.js';
import { EntryType, NONE } from './types.js';
import { entrySize } from './util.js';

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  private snap: Snapshot;
  /**
   * `ents[0]` is a dummy entry carrying the snapshot's index and term; real entries follow, so
   * `ents[i]` has log index `ents[0].index + i`.
   */
  private ents: Entry[];

  /**
   * @param confState the initial membership for a new cluster (every founding member passes the
   *   same voters); omit it for a node that joins an existing cluster and learns its
   *   configuration from the leader's snapshot.
   */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.snap = {
      metadata: { index: 0, term: 0, confState: cloneConfState(confState) },
      data: new Uint8Array(0),
    };
    this.ents = [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  /** Records the durable hard state (term, vote, commit) from a `Ready`. */
  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  hardStateSnapshot(): HardState {
    return { ...this.hardState };
  }

  entries(lo: number, hi: number, maxSizeBytes: number = Infinity): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (lo > hi) throw new RangeError(`raft storage: entries(${lo}, ${hi}) has lo > hi; pass lo <= hi`);
    // Only the dummy entry: nothing to return.
    if (this.ents.length === 1) return [];
    // Find the size-capped end first so only what is returned gets copied.
    let end = lo - offset + 1;
    let size = entrySize(this.ents[lo - offset]!);
    while (end < hi - offset) {
      size += entrySize(this.ents[end]!);
      if (size > maxSizeBytes) break;
      end++;
    }
    return this.ents.slice(lo - offset, end);
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i - offset >= this.ents.length) throw new UnavailableError(i, this.lastIndex());
    return this.ents[i - offset]!.term;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Replaces the whole log with `snap` (a follower installing the leader's snapshot). Throws
   * {@link SnapshotOutOfDateError} if `snap` is older than the snapshot held.
   */
  applySnapshot(snap: Snapshot): void {
    const cur = this.snap.metadata.index;
    if (snap.metadata.index < cur) throw new SnapshotOutOfDateError(snap.metadata.index, cur);
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  /**
   * Records a snapshot of the state machine as of applied index `i` (≤ last index), with the
   * configuration in effect at `i`. Does not drop entries: call {@link compact} for that.
   * Throws {@link SnapshotOutOfDateError} when `i` is not newer than the held snapshot.
   */
  createSnapshot(i: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new SnapshotOutOfDateError(i, this.snap.metadata.index);
    if (i > this.lastIndex()) {
      throw new UnavailableError(i, this.lastIndex());
    }
    this.snap = {
      metadata: {
        index: i,
        term: this.term(i),
        confState: cloneConfState(confState ?? this.snap.metadata.confState),
      },
      data,
    };
    return this.snap;
  }

  /**
   * Discards entries up to and including `compactIndex` (which becomes the new dummy entry,
   * keeping its term). Compact only up to the snapshot index: a follower that needs an entry
   * between the snapshot and the first index could never catch up. Throws
   * {@link CompactedError} if already compacted past it, {@link UnavailableError} if beyond the
   * last index, RangeError if past the snapshot.
   */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex, offset + 1);
    if (compactIndex > this.lastIndex()) throw new UnavailableError(compactIndex, this.lastIndex());
    if (compactIndex > this.snap.metadata.index) {
      throw new RangeError(
        `raft storage: compact(${compactIndex}) is past the snapshot index ${this.snap.metadata.index}; createSnapshot at or after ${compactIndex} first`,
      );
    }
    const i = compactIndex - offset;
    const first = this.ents[i]!;
    this.ents = [{ term: first.term, index: first.index, type: EntryType.Normal, data: new Uint8Array(0) }, ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries from a `Ready`, truncating any existing entries at or after the first new
   * index (a new leader overwrote them). Entries already compacted are skipped. Entries must be
   * contiguous and start at most one past the last index.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // all compacted
    let ents = entries as Entry[];
    if (first > ents[0]!.index) ents = ents.slice(first - ents[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    if (offset > this.ents.length) {
      throw new RangeError(
        `raft storage: append at index ${ents[0]!.index} leaves a gap after last index ${this.lastIndex()}; append contiguous entries`,
      );
    }
    // Truncate in place (a conflicting suffix), then append: O(new entries), not O(log).
    this.ents.length = offset;
    for (const e of ents) this.ents.push(e);
  }
}

export function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

/**
 * Bootstraps a new cluster's storage like etcd's `Bootstrap`: the founding configuration becomes
 * a run of committed `addNode` conf-change entries at term 1 (indexes 1..n), so nodes that join
 * later learn it from the log (or a snapshot). Every founding member calls this with the same
 * `voters`. The host applies these entries from the first Ready (calling `applyConfChange`);
 * until then the node does not campaign. Throws if the storage is not empty.
 */
export function bootstrap(storage: MemoryStorage, voters: readonly string[], contexts: Readonly<Record<string, string>> = {}): void {
  if (storage.lastIndex() !== 0 || storage.hardStateSnapshot().term !== 0) {
    throw new RangeError('raft bootstrap: storage is not empty; bootstrap only a brand-new node');
  }
  if (voters.length === 0) throw new RangeError('raft bootstrap: voters is empty; pass the founding member ids');
  const enc = new TextEncoder();
  storage.append(
    voters.map((nodeId, i) => {
      const cc: { type: 'addNode'; nodeId: string; context?: string } = { type: 'addNode', nodeId };
      const ctx = contexts[nodeId];
      if (ctx !== undefined) cc.context = ctx;
      return { term: 1, index: i + 1, type: EntryType.ConfChange, data: enc.encode(JSON.stringify(cc)) };
    }),
  );
  storage.setHardState({ term: 1, vote: NONE, commit: voters.length });
}
