/**
 * In-memory Raft storage with a "disk" that outlives the member: {@link FakeDisk} is a node's
 * `<data-dir>/raft` (it survives a kill and a restart of the node, and is wiped when the node
 * stops being a manager); {@link FakeRaftStorage} is `LevelStorage` over it — the same
 * `RaftStorage` contract (`@shoal/replication`), the same mirror updates, no I/O. A write is
 * durable once its promise resolves (the next microtask), so a killed node keeps everything it
 * saved, as an fsynced LevelDB batch would.
 *
 * Chosen over LevelDB in a temp dir for the harness: no thread-pool I/O means no timing-dependent
 * interleavings, so a scenario run twice is the same run — and it is faster. LevelDB itself is
 * covered by `@shoal/replication`'s own tests and the whole-node tests.
 */
import { EntryType, MemoryStorage, decodeConfChange, type ConfState, type Entry, type HardState, type Snapshot } from '@shoal/raft';
import type { LoadedState, RaftStorage } from '@shoal/replication';

const emptySnapshot = (): Snapshot => ({ metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) });

/** What a node's Raft directory holds: the durable hard state, snapshot and log. */
export class FakeDisk {
  hardState: HardState = { term: 0, vote: '', commit: 0 };
  snapshot: Snapshot = emptySnapshot();
  /** Entries after the snapshot, in index order. */
  entries: Entry[] = [];
  /** Atomic writes so far. */
  writes = 0;

  /** True when nothing was ever written (a fresh member). */
  get empty(): boolean {
    return this.writes === 0;
  }

  /** Removes everything (`wipeRaft`). */
  wipe(): void {
    this.hardState = { term: 0, vote: '', commit: 0 };
    this.snapshot = emptySnapshot();
    this.entries = [];
    this.writes = 0;
  }

  /** The durable entry at `index`, if the log holds it (not compacted). */
  entry(index: number): Entry | undefined {
    const first = this.entries[0]?.index;
    return first === undefined ? undefined : this.entries[index - first];
  }

  /** Committed conf-change entries held in the log, by index (for checkers). */
  committedConfChanges(): { index: number; term: number; type: string; nodeId: string }[] {
    const out: { index: number; term: number; type: string; nodeId: string }[] = [];
    for (const e of this.entries) {
      if (e.index > this.hardState.commit) break;
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      out.push({ index: e.index, term: e.term, type: cc.type, nodeId: cc.nodeId });
    }
    return out;
  }
}

const copyEntry = (e: Entry): Entry => ({ ...e, data: new Uint8Array(e.data) });
const copySnap = (s: Snapshot): Snapshot => ({
  metadata: { index: s.metadata.index, term: s.metadata.term, confState: { voters: [...s.metadata.confState.voters], learners: [...s.metadata.confState.learners] } },
  data: new Uint8Array(s.data),
});

/** `RaftStorage` over a {@link FakeDisk}. */
export class FakeRaftStorage implements RaftStorage {
  readonly mem = new MemoryStorage();
  readonly loaded: LoadedState;
  private closed = false;

  private constructor(private readonly disk: FakeDisk) {
    const snapshot = copySnap(disk.snapshot);
    const entries = disk.entries.filter((e) => e.index > snapshot.metadata.index).map(copyEntry);
    let hardState = { ...disk.hardState };
    if (hardState.commit < snapshot.metadata.index) hardState = { ...hardState, commit: snapshot.metadata.index };
    this.loaded = { fresh: disk.empty, hardState, snapshot, entryCount: entries.length };
    this.mem.applySnapshot(snapshot);
    this.mem.append(entries);
    this.mem.setHardState(hardState);
  }

  /** Opens the storage of a node's disk (what `LevelStorage.open` does with a directory). */
  static async open(disk: FakeDisk): Promise<FakeRaftStorage> {
    await Promise.resolve();
    return new FakeRaftStorage(disk);
  }

  async save(hardState: HardState | undefined, entries: readonly Entry[], snapshot?: Snapshot, _sync = true): Promise<void> {
    this.checkOpen();
    await Promise.resolve();
    if (this.closed) return;
    const d = this.disk;
    const applySnap = snapshot !== undefined && snapshot.metadata.index > this.mem.snapshot().metadata.index;
    if (!applySnap && entries.length === 0 && !hardState) return;
    if (applySnap) {
      d.snapshot = copySnap(snapshot);
      d.entries = [];
    }
    if (entries.length > 0) {
      const first = entries[0]!.index;
      d.entries = d.entries.filter((e) => e.index < first).concat(entries.map(copyEntry));
    }
    if (hardState) d.hardState = { ...hardState };
    d.writes++;
    if (applySnap) this.mem.applySnapshot(snapshot);
    if (entries.length > 0) this.mem.append(entries);
    if (hardState) this.mem.setHardState(hardState);
  }

  async saveSnapshot(index: number, confState: ConfState, data: Uint8Array, compactIndex: number): Promise<Snapshot> {
    this.checkOpen();
    if (compactIndex > index) throw new RangeError(`compactIndex ${compactIndex} is past snapshot index ${index}; pass compactIndex <= index`);
    if (index <= this.disk.snapshot.metadata.index) throw new RangeError(`snapshot index ${index} is not past the current snapshot ${this.disk.snapshot.metadata.index}`);
    const term = this.mem.term(index);
    const snap: Snapshot = { metadata: { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } }, data };
    await Promise.resolve();
    const compact = compactIndex >= this.mem.firstIndex() && compactIndex <= this.mem.lastIndex();
    this.disk.snapshot = copySnap(snap);
    if (compact) this.disk.entries = this.disk.entries.filter((e) => e.index >= compactIndex);
    this.disk.writes++;
    this.mem.createSnapshot(index, snap.metadata.confState, data);
    if (compact) this.mem.compact(compactIndex);
    return snap;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    return this.mem.entries(lo, hi, maxSizeBytes);
  }
  term(i: number): number {
    return this.mem.term(i);
  }
  lastIndex(): number {
    return this.mem.lastIndex();
  }
  firstIndex(): number {
    return this.mem.firstIndex();
  }
  snapshot(): Snapshot {
    return this.mem.snapshot();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('FakeRaftStorage is closed; open it again');
  }
}
