/**
 * Durable Raft storage on LevelDB (`level`), mirrored in a `MemoryStorage` that the core reads
 * synchronously.
 *
 * Records (keys are UTF-8; every value is `crc32 u32 LE · payload`, the CRC taken over the key
 * bytes and then the payload, so a torn, flipped or misplaced record is detected):
 * - `e/<index, 16 digits>` — one log entry (binary, see `codec.ts`);
 * - `hs` — hard state `{term, vote, commit}` (JSON);
 * - `snap/meta` — snapshot metadata `{index, term, confState, size, chunks}` (JSON);
 * - `snap/data/<snapshot index, 16 digits>/<chunk, 8 digits>` — snapshot data in 1 MiB chunks.
 *
 * - `enc` — present when the database is encrypted: `{v, alg, keyId}` (JSON, in the clear), naming
 *   the data encryption key every other record's payload is sealed with (see `cipher.ts`). A
 *   database opened with a cipher must carry that key's id; an unencrypted one with data is first
 *   rewritten (`encrypt.ts`), never mixed.
 *
 * A Ready is one atomic batch (fsynced unless only the commit index changed, etcd `MustSync`).
 * A snapshot's data is first written under its own key prefix in fsynced batches of ≤ 4 MiB
 * (so other writes are never queued behind tens of MiB), then one atomic batch switches
 * `snap/meta` to it and deletes the old chunks and the compacted log prefix. A crash at any point
 * leaves either the old or the new snapshot plus a consistent log tail (Raft thesis §5.1);
 * chunks of a snapshot that never got its meta are deleted on the next open.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Level } from 'level';
import { MemoryStorage } from '@shoal/raft';
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata, Storage } from '@shoal/raft';
import { entrySize, readEntry, writeEntry } from './codec.js';
import { CorruptLogError } from './errors.js';
import { DecryptError, type RecordCipher } from './cipher.js';

/** Snapshot data is stored (and streamed) in chunks of this many bytes. */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20;
/** Snapshot chunks per LevelDB batch while writing a snapshot. */
const CHUNKS_PER_BATCH = 4;

const ENTRY_PREFIX = 'e/';
const ENTRY_END = 'e0'; // '0' sorts right after '/'
const HS_KEY = 'hs';
const SNAP_META_KEY = 'snap/meta';
const SNAP_DATA_PREFIX = 'snap/data/';
const SNAP_DATA_END = 'snap/data0';
/** Set when an open found damage; every later open refuses too. */
export const CORRUPT_KEY = 'corrupt';
/** The encryption record (in the clear): which data key seals the other records. */
export const ENC_KEY = 'enc';

/** What the `enc` record holds. */
export interface EncInfo {
  v: 1;
  alg: 'aes-256-gcm';
  keyId: string;
}

/** The database is encrypted with another data key than the one given (or with one, and none was given). */
export class DataKeyMismatchError extends Error {
  constructor(dir: string, readonly have: string | undefined, readonly want: string | undefined) {
    super(have
      ? `the Raft data in ${dir} is encrypted with data key ${have}${want ? `, not ${want}` : '; open it with that key'}`
      : `the Raft data in ${dir} is not encrypted; rewrite it with the data key first`);
    this.name = 'DataKeyMismatchError';
  }
}

type Op = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

interface StoredSnapMeta extends SnapshotMetadata {
  /** Snapshot data length in bytes. */
  size: number;
  chunks: number;
}

/** LevelDB key of the log entry at `index`. */
export function entryKey(index: number): string {
  return ENTRY_PREFIX + String(index).padStart(16, '0');
}

function chunkPrefix(snapIndex: number): string {
  return SNAP_DATA_PREFIX + String(snapIndex).padStart(16, '0') + '/';
}

function chunkKey(snapIndex: number, i: number): string {
  return chunkPrefix(snapIndex) + String(i).padStart(8, '0');
}

function keyCrc(key: string, payload: Uint8Array): number {
  return crc32(payload, crc32(key));
}

/** A record's stored form: `crc32 · payload`, the payload sealed by `cipher` when given. */
export function sealRecord(key: string, payload: Uint8Array, cipher?: RecordCipher): Buffer {
  const body = cipher ? cipher.seal(key, payload) : payload;
  const buf = Buffer.allocUnsafe(4 + body.byteLength);
  buf.set(body, 4);
  buf.writeUInt32LE(keyCrc(key, body), 0);
  return buf;
}

/**
 * Verifies a record's checksum and returns its payload (opened by `cipher` when given; otherwise
 * a view, no copy). @throws CorruptLogError on a bad checksum or a payload that does not decrypt.
 */
export function unsealRecord(key: string, value: Buffer, cipher?: RecordCipher): Buffer {
  if (value.byteLength < 4) throw new CorruptLogError(key, `record is ${value.byteLength} bytes, shorter than its checksum`);
  const payload = value.subarray(4);
  const want = value.readUInt32LE(0);
  const got = keyCrc(key, payload);
  if (want !== got) throw new CorruptLogError(key, `checksum mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})`);
  if (!cipher) return payload;
  try {
    return cipher.open(key, payload);
  } catch (err) {
    if (err instanceof DecryptError) throw new CorruptLogError(key, `does not decrypt with data key ${cipher.keyId} (altered, or written with another key)`);
    throw err;
  }
}

const seal = sealRecord;
const unseal = unsealRecord;

function sealEntry(e: Entry, cipher?: RecordCipher): { key: string; value: Buffer } {
  const key = entryKey(e.index);
  if (cipher) {
    const plain = Buffer.allocUnsafe(entrySize(e));
    writeEntry(plain, 0, e);
    return { key, value: seal(key, plain, cipher) };
  }
  const value = Buffer.allocUnsafe(4 + entrySize(e));
  writeEntry(value, 4, e);
  value.writeUInt32LE(keyCrc(key, value.subarray(4)), 0);
  return { key, value };
}

function parseJson<T>(key: string, payload: Buffer): T {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch (err) {
    throw new CorruptLogError(key, `undecodable JSON (${(err as Error).message})`);
  }
}

/** What {@link LevelStorage.open} found on disk. */
export interface LoadedState {
  /** True when the database held no Raft state (a brand-new member). */
  fresh: boolean;
  hardState: HardState;
  snapshot: Snapshot;
  /** Number of log entries loaded after the snapshot. */
  entryCount: number;
}

/**
 * What the Raft host ({@link RaftNode}) needs of its durable storage: the core's {@link Storage}
 * (served from the in-memory mirror `mem`), what was found at open, and the two writes. Production
 * uses {@link LevelStorage}; the in-process cluster harness (`@shoal/testkit/cluster`) passes an
 * in-memory one that keeps its "disk" across restarts of a node.
 *
 * Contract of the writes (both settle after the data is durable, then update `mem`):
 * - {@link save}: one `Ready` — a snapshot replacing the log, then entries (an entry at index i
 *   truncates entries ≥ i), then the hard state — atomically;
 * - {@link saveSnapshot}: a snapshot of the host's own state machine at `index`, then compaction
 *   keeping entries from `compactIndex` on. May run while `save` calls for new entries proceed.
 */
export interface RaftStorage extends Storage {
  /** The in-memory mirror the Raft core reads. Mutate it only through the storage. */
  readonly mem: MemoryStorage;
  /** What the open found. */
  readonly loaded: LoadedState;
  save(hardState: HardState | undefined, entries: readonly Entry[], snapshot?: Snapshot, sync?: boolean): Promise<void>;
  saveSnapshot(index: number, confState: ConfState, data: Uint8Array, compactIndex: number): Promise<Snapshot>;
  close(): Promise<void>;
  /** Called with the seconds each fsynced write took (the host's metrics); storages without disks may ignore it. */
  onSynced?: ((seconds: number) => void) | undefined;
}

/**
 * Raft {@link Storage} persisted in LevelDB. Reads are served from the in-memory mirror
 * (`mem`); writes go to disk first, then to the mirror.
 */
export class LevelStorage implements RaftStorage {
  /** The in-memory mirror the Raft core reads. Mutate it only through this class. */
  readonly mem: MemoryStorage;
  /** Lowest and highest entry index held on disk (`diskLast < diskFirst` when none). */
  private diskFirst: number;
  private diskLast: number;
  /** The snapshot `snap/meta` names: its index and chunk count (chunks to delete when replaced). */
  private durableSnap: { index: number; chunks: number };
  private closed = false;
  /** Background range deletes of compacted entries. */
  private clearing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly db: Level<string, Buffer>,
    readonly loaded: LoadedState,
    diskFirst: number,
    diskLast: number,
    durableSnap: { index: number; chunks: number },
    mem: MemoryStorage,
    private readonly cipher: RecordCipher | undefined,
  ) {
    this.mem = mem;
    this.diskFirst = diskFirst;
    this.diskLast = diskLast;
    this.durableSnap = durableSnap;
  }

  /**
   * Opens (creating if needed) the LevelDB database at `dir` and loads snapshot, entries and hard
   * state into the mirror. Every record's checksum is verified. With `cipher` every record is
   * encrypted with it: a new database is marked with its key id, an existing one must carry it.
   * @throws CorruptLogError naming the first bad record; DataKeyMismatchError when the database is
   *   encrypted with another key, or is unencrypted with data while a cipher is given (rewrite it
   *   first, `prepareEncryptedDir`), or is encrypted and no cipher is given.
   */
  static async open(dir: string, opts: { cipher?: RecordCipher } = {}): Promise<LevelStorage> {
    const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    try {
      await LevelStorage.checkRecovery(db, dir);
      await LevelStorage.checkEncryption(db, dir, opts.cipher);
      return await LevelStorage.load(db, opts.cipher);
    } catch (err) {
      await db.close().catch(() => {});
      throw wrapLevelError(err);
    }
  }

  /**
   * LevelDB silently drops a write-ahead-log record whose checksum fails (it only notes it in
   * its `LOG` info file), which would lose fsynced batches without a trace. Refuse to start
   * instead, and leave a sticky marker so later opens refuse too.
   */
  private static async checkRecovery(db: Level<string, Buffer>, dir: string): Promise<void> {
    const marker = await db.get(CORRUPT_KEY);
    if (marker) throw new CorruptLogError(CORRUPT_KEY, `an earlier open found damage: ${marker.toString('utf8')}`);
    let info = '';
    try {
      info = await readFile(join(dir, 'LOG'), 'utf8');
    } catch {
      return;
    }
    const bad = info.split('\n').find((l) => /corruption|dropping \d+ bytes/i.test(l));
    if (!bad) return;
    const reason = `LevelDB recovery dropped damaged data (${bad.replace(/^\S+ \S+ /, '').trim()})`;
    await db.put(CORRUPT_KEY, Buffer.from(reason), { sync: true });
    throw new CorruptLogError('(leveldb write-ahead log)', reason);
  }

  /** Checks the `enc` record against `cipher` (see {@link open}); marks a new database with its key id. */
  private static async checkEncryption(db: Level<string, Buffer>, dir: string, cipher: RecordCipher | undefined): Promise<void> {
    const info = await readEncInfo(db);
    if (!cipher) {
      if (info) throw new DataKeyMismatchError(dir, info.keyId, undefined);
      return;
    }
    if (info) {
      if (info.keyId !== cipher.keyId) throw new DataKeyMismatchError(dir, info.keyId, cipher.keyId);
      return;
    }
    if (await hasRecords(db)) throw new DataKeyMismatchError(dir, undefined, cipher.keyId);
    await db.put(ENC_KEY, encRecord(cipher.keyId), { sync: true });
  }

  private static async load(db: Level<string, Buffer>, cipher: RecordCipher | undefined): Promise<LevelStorage> {
    const hsRaw = await db.get(HS_KEY);
    const metaRaw = await db.get(SNAP_META_KEY);
    let hardState: HardState = { term: 0, vote: '', commit: 0 };
    if (hsRaw) hardState = parseJson<HardState>(HS_KEY, unseal(HS_KEY, hsRaw, cipher));
    let snapshot: Snapshot = { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
    let durableSnap = { index: 0, chunks: 0 };
    const garbage: string[] = [];
    if (metaRaw) {
      const meta = parseJson<StoredSnapMeta>(SNAP_META_KEY, unseal(SNAP_META_KEY, metaRaw, cipher));
      const parts: Buffer[] = [];
      const prefix = chunkPrefix(meta.index);
      for await (const [key, value] of db.iterator({ gte: SNAP_DATA_PREFIX, lt: SNAP_DATA_END })) {
        if (!key.startsWith(prefix)) {
          garbage.push(key); // an older snapshot's chunk, or one whose meta was never written
          continue;
        }
        if (key !== chunkKey(meta.index, parts.length) || parts.length >= meta.chunks) {
          throw new CorruptLogError(key, `unexpected snapshot chunk (want ${chunkKey(meta.index, parts.length)} of ${meta.chunks})`);
        }
        parts.push(unseal(key, value, cipher));
      }
      if (parts.length !== meta.chunks) throw new CorruptLogError(chunkKey(meta.index, parts.length), `snapshot has ${parts.length} of ${meta.chunks} chunks`);
      const data = Buffer.concat(parts);
      if (data.byteLength !== meta.size) throw new CorruptLogError(SNAP_META_KEY, `snapshot data is ${data.byteLength} bytes, metadata says ${meta.size}`);
      snapshot = { metadata: { index: meta.index, term: meta.term, confState: meta.confState }, data };
      durableSnap = { index: meta.index, chunks: meta.chunks };
    } else {
      for await (const key of db.keys({ gte: SNAP_DATA_PREFIX, lt: SNAP_DATA_END })) garbage.push(key);
    }
    if (garbage.length > 0) {
      const b = db.batch();
      for (const k of garbage) b.del(k);
      await b.write();
    }
    const entries: Entry[] = [];
    const snapIndex = snapshot.metadata.index;
    let diskFirst = snapIndex + 1;
    let diskLast = snapIndex;
    let staleMax = -1;
    for await (const [key, value] of db.iterator({ gte: ENTRY_PREFIX, lt: ENTRY_END })) {
      const keyIndex = Number(key.slice(ENTRY_PREFIX.length));
      if (Number.isInteger(keyIndex) && keyIndex <= snapIndex) {
        // Covered by the snapshot: left over from a compaction not yet cleared. Dropped below.
        staleMax = keyIndex;
        continue;
      }
      const payload = unseal(key, value, cipher);
      let e: Entry;
      try {
        const r = readEntry(payload, 0);
        if (r.next !== payload.byteLength) throw new RangeError(`${payload.byteLength - r.next} trailing bytes`);
        e = r.entry;
      } catch (err) {
        throw new CorruptLogError(key, `undecodable entry (${(err as Error).message})`);
      }
      if (key !== entryKey(e.index)) throw new CorruptLogError(key, `holds entry index ${e.index}`);
      const want = diskLast >= diskFirst ? diskLast + 1 : snapIndex + 1;
      if (e.index !== want) throw new CorruptLogError(key, `gap in the log: expected index ${want} after the snapshot at ${snapIndex}`);
      if (diskLast < diskFirst) diskFirst = e.index;
      diskLast = e.index;
      entries.push(e);
    }
    const lastIndex = Math.max(snapIndex, diskLast);
    if (hardState.commit > lastIndex) throw new CorruptLogError(HS_KEY, `commit index ${hardState.commit} is past the last log index ${lastIndex}`);
    if (hardState.commit < snapIndex) hardState = { ...hardState, commit: snapIndex };

    const fresh = !hsRaw && !metaRaw && diskLast < diskFirst && staleMax < 0;
    const mem = new MemoryStorage();
    const storage = new LevelStorage(db, { fresh, hardState, snapshot, entryCount: entries.length }, diskFirst, diskLast, durableSnap, mem, cipher);
    if (staleMax >= 0) storage.clearLater(0, staleMax);
    mem.applySnapshot(snapshot);
    mem.append(entries);
    mem.setHardState(hardState);
    return storage;
  }

  /**
   * Writes a snapshot's data chunks under their own prefix, in fsynced batches of
   * {@link CHUNKS_PER_BATCH} chunks, and returns the ops that make it current (to be written in
   * one atomic batch): `snap/meta` and deletion of the previous snapshot's chunks.
   */
  private async writeSnapshotData(snap: Snapshot): Promise<{ ops: Op[]; chunks: number }> {
    const data = snap.data;
    const index = snap.metadata.index;
    const chunks = Math.ceil(data.byteLength / SNAPSHOT_CHUNK_BYTES);
    for (let i = 0; i < chunks; i += CHUNKS_PER_BATCH) {
      const ops: Op[] = [];
      for (let j = i; j < Math.min(chunks, i + CHUNKS_PER_BATCH); j++) {
        const key = chunkKey(index, j);
        ops.push({ type: 'put', key, value: seal(key, data.subarray(j * SNAPSHOT_CHUNK_BYTES, (j + 1) * SNAPSHOT_CHUNK_BYTES), this.cipher) });
      }
      await this.write(ops, true);
    }
    const ops: Op[] = [];
    const old = this.durableSnap;
    if (old.index !== index) for (let i = 0; i < old.chunks; i++) ops.push({ type: 'del', key: chunkKey(old.index, i) });
    const meta: StoredSnapMeta = { ...snap.metadata, size: data.byteLength, chunks };
    ops.push({ type: 'put', key: SNAP_META_KEY, value: seal(SNAP_META_KEY, Buffer.from(JSON.stringify(meta)), this.cipher) });
    return { ops, chunks };
  }

  /**
   * Called after every fsynced batch with its duration in seconds (write + fsync; the metrics'
   * `shoal_raft_fsync_duration_seconds`). Set by the Raft host.
   */
  onSynced: ((seconds: number) => void) | undefined;

  /** One atomic LevelDB write (a chained batch: ~4× less CPU per op than an array batch). */
  private async write(ops: Op[], sync: boolean): Promise<void> {
    const b = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') b.put(op.key, op.value);
      else b.del(op.key);
    }
    const t0 = sync && this.onSynced ? performance.now() : 0;
    await b.write({ sync });
    if (t0) this.onSynced?.((performance.now() - t0) / 1000);
  }

  /**
   * Deletes entries [from, to] in the background (a native range delete, not atomic). Used for
   * prefixes already covered by a durable snapshot, where leftovers after a crash are harmless.
   */
  private clearLater(from: number, to: number): void {
    if (to < from) return;
    this.clearing = this.clearing
      .then(() => this.db.clear({ gte: entryKey(from), lte: entryKey(to) }))
      .catch(() => {
        /* leftovers are dropped on the next open */
      });
  }

  private deleteEntryOps(ops: Op[], from: number, to: number): void {
    for (let i = from; i <= to; i++) ops.push({ type: 'del', key: entryKey(i) });
  }

  /**
   * Persists one `Ready`: the leader's or follower's snapshot (replacing the whole log), then
   * `entries` (an entry at index i truncates persisted entries ≥ i), then `hardState` — in ONE
   * atomic LevelDB batch, fsynced when `sync` (etcd `MustSync`). Updates the mirror after the
   * write completes. Send the Ready's messages only after this resolves.
   */
  async save(hardState: HardState | undefined, entries: readonly Entry[], snapshot?: Snapshot, sync = true): Promise<void> {
    this.checkOpen();
    let ops: Op[] = [];
    const applySnap = snapshot !== undefined && snapshot.metadata.index > this.mem.snapshot().metadata.index;
    let snapChunks = 0;
    if (applySnap) {
      const w = await this.writeSnapshotData(snapshot);
      ops = w.ops;
      snapChunks = w.chunks;
      // Entries past the snapshot may conflict with it: delete them atomically with the switch.
      // Those it covers are merely stale: clear them afterwards.
      const si = snapshot.metadata.index;
      if (this.diskLast >= Math.max(this.diskFirst, si + 1)) this.deleteEntryOps(ops, Math.max(this.diskFirst, si + 1), this.diskLast);
    }
    const diskLastBefore = applySnap ? snapshot.metadata.index : this.diskLast;
    if (entries.length > 0) {
      const last = entries[entries.length - 1]!.index;
      for (const e of entries) {
        const { key, value } = sealEntry(e, this.cipher);
        ops.push({ type: 'put', key, value });
      }
      if (diskLastBefore > last) this.deleteEntryOps(ops, last + 1, diskLastBefore);
    }
    if (hardState) ops.push({ type: 'put', key: HS_KEY, value: seal(HS_KEY, Buffer.from(JSON.stringify(hardState)), this.cipher) });
    if (ops.length === 0) return;
    await this.write(ops, sync || applySnap);
    if (applySnap) {
      const si = snapshot.metadata.index;
      this.durableSnap = { index: si, chunks: snapChunks };
      if (this.diskLast >= this.diskFirst) this.clearLater(this.diskFirst, Math.min(si, this.diskLast));
      this.diskFirst = si + 1;
      this.diskLast = si;
    }
    if (entries.length > 0) {
      const first = entries[0]!.index;
      if (this.diskLast < this.diskFirst || first < this.diskFirst) this.diskFirst = first;
      this.diskLast = entries[entries.length - 1]!.index;
    }
    if (applySnap) this.mem.applySnapshot(snapshot);
    if (entries.length > 0) this.mem.append(entries);
    if (hardState) this.mem.setHardState(hardState);
  }

  /**
   * Records a snapshot the host took of its own state machine at applied index `index`, and
   * compacts the log so it starts at `compactIndex` (≤ `index`; entries from `compactIndex` on
   * stay available for slow followers). The data goes out in small batches first; the switch to
   * the new snapshot and the prefix deletion are then one atomic, fsynced batch: a crash leaves
   * either the old snapshot and full log or the new snapshot and the tail. May run while `save`
   * calls for new entries proceed, but not concurrently with a `save` carrying a snapshot.
   */
  async saveSnapshot(index: number, confState: ConfState, data: Uint8Array, compactIndex: number): Promise<Snapshot> {
    this.checkOpen();
    if (compactIndex > index) throw new RangeError(`compactIndex ${compactIndex} is past snapshot index ${index}; pass compactIndex <= index`);
    if (index <= this.durableSnap.index) throw new RangeError(`snapshot index ${index} is not past the current snapshot ${this.durableSnap.index}`);
    const term = this.mem.term(index);
    const snap: Snapshot = { metadata: { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } }, data };
    const { ops, chunks } = await this.writeSnapshotData(snap);
    // Compact only when it drops something: the mirror keeps entry `compactIndex` as its first (dummy).
    const compact = compactIndex >= this.mem.firstIndex() && compactIndex <= this.mem.lastIndex();
    const delFrom = this.diskFirst;
    const delTo = compact ? Math.min(compactIndex - 1, this.diskLast) : -1;
    await this.write(ops, true);
    this.durableSnap = { index, chunks };
    if (delTo >= delFrom) {
      this.diskFirst = Math.max(this.diskFirst, delTo + 1);
      this.clearLater(delFrom, delTo);
    }
    this.mem.createSnapshot(index, snap.metadata.confState, data);
    if (compact) this.mem.compact(compactIndex);
    return snap;
  }

  /** Entry indexes held on disk, `[first, last]` (`last < first` when none). For tests and metrics. */
  diskRange(): { first: number; last: number } {
    return { first: this.diskFirst, last: this.diskLast };
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
    if (this.closed) return;
    this.closed = true;
    await this.clearing;
    await this.db.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('LevelStorage is closed; open it again');
  }
}

/** The `enc` record's stored form for data key `keyId`. */
export function encRecord(keyId: string): Buffer {
  const info: EncInfo = { v: 1, alg: 'aes-256-gcm', keyId };
  return seal(ENC_KEY, Buffer.from(JSON.stringify(info)));
}

/** The `enc` record of an open database, if it has one. @throws CorruptLogError when it is damaged. */
export async function readEncInfo(db: Level<string, Buffer>): Promise<EncInfo | undefined> {
  const raw = await db.get(ENC_KEY);
  return raw ? parseJson<EncInfo>(ENC_KEY, unseal(ENC_KEY, raw)) : undefined;
}

/** True when the database holds any record besides `enc` and `corrupt`. */
export async function hasRecords(db: Level<string, Buffer>): Promise<boolean> {
  for await (const key of db.keys()) if (key !== ENC_KEY && key !== CORRUPT_KEY) return true;
  return false;
}

/** LevelDB reports its own corruption (bad block checksum, bad compressed block) with this code. */
function wrapLevelError(err: unknown): unknown {
  const e = err as { code?: string; message?: string; cause?: { message?: string } };
  if (e && (e.code === 'LEVEL_CORRUPTION' || /corrupt/i.test(e.message ?? '') || /corrupt/i.test(e.cause?.message ?? ''))) {
    if (err instanceof CorruptLogError) return err;
    return new CorruptLogError('(leveldb)', `LevelDB reports: ${e.cause?.message ?? e.message}`);
  }
  return err;
}
