import {
  type AnyObject, type TableName, type Tables, TABLE_NAMES, ShoalError, SequenceConflictError, alreadyExists, nameKey, notFound,
} from '@shoal/api';
import { stringifyArraysSliced } from './slices.js';

/**
 * The replicated object store (SwarmKit `manager/state/store`): in-memory tables of cluster objects
 * whose every write goes through Raft.
 *
 * - `view(fn)` runs `fn` against the committed state (synchronous, consistent).
 * - `update(fn)` runs `fn` against a transaction overlay, turns its writes into {@link StoreAction}s,
 *   proposes them through the {@link Proposer} (Raft), and resolves once the entry is committed and
 *   applied here. Objects are stamped with `meta.version` = the Raft log index of the write.
 * - Optimistic concurrency: every update/delete carries the version the transaction read; if the
 *   object changed in between, the whole entry is a no-op on every replica and `update` rejects
 *   with {@link SequenceConflictError} (after `retries` re-runs of `fn`).
 * - Names (`spec.name` of services, networks, secrets, nodes) are indexed case-insensitively, as
 *   SwarmKit's name index is: `byName('services', 'API')` finds `api`, and a service, network or
 *   secret cannot take a name another one has in any case.
 * - Every written object gets `meta.createdAt` (kept from the first write) and `meta.updatedAt`,
 *   stamped by the *proposer* inside the transaction (SwarmKit `touchMeta`, store/memory.go) and
 *   carried in the entry: applying the log is a pure function of the log, so every replica — and a
 *   replica replaying its log after a restart — holds byte-identical objects.
 * - Exactly-once writes: `update(fn, { requestId })` records the request id (and `fn`'s JSON
 *   result) in the replicated state, in the same entry as the write. An entry whose request id is
 *   already recorded changes nothing on any replica, and its proposer gets the first outcome; a
 *   client retrying a write after a leader change therefore runs it at most once. Ids expire
 *   {@link REQUEST_TTL_MS} after their write, by the proposer time carried in later entries.
 * - `watch(fn)` delivers create/update/delete events per applied entry, then a `commit` event.
 *
 * Objects handed out are deep-frozen: never mutate them; copy (`structuredClone`) and write the copy.
 * Inside `update`, `tx.get`/`tx.list` already return mutable copies.
 */

export type ActionKind = 'create' | 'update' | 'delete';

export interface StoreAction {
  kind: ActionKind;
  table: TableName;
  /** Whole object for create/update; for delete only `id` is read. */
  object: AnyObject;
  /** Version the writer read (update/delete). */
  expectVersion?: number;
}

export type StoreEvent =
  | { kind: ActionKind; table: TableName; object: AnyObject; old?: AnyObject }
  | { kind: 'commit'; index: number }
  /** The whole state was replaced from a snapshot: watchers must re-read everything. */
  | { kind: 'restore'; index: number };

/** The Raft side of the store (implemented by `@shoal/replication`'s RaftNode, or `FakeProposer` from `@shoal/testkit` in unit tests). */
export interface Proposer {
  /**
   * Replicates `data`; resolves once it is committed and has been passed to {@link MemoryStore.apply}
   * locally. Rejects when this node cannot commit it (not leader, dropped, timeout).
   */
  propose(data: Uint8Array): Promise<unknown>;
}

export interface ReadTx {
  get<T extends TableName>(table: T, id: string): Tables[T] | undefined;
  list<T extends TableName>(table: T): Tables[T][];
  /**
   * Object whose `spec.name` is `name`, compared case-insensitively (services, networks, secrets,
   * nodes); an exact match wins over one that differs in case only.
   */
  byName<T extends 'services' | 'networks' | 'secrets' | 'configs' | 'nodes'>(table: T, name: string): Tables[T] | undefined;
  tasksByService(serviceId: string): Tables['tasks'][];
  tasksByNode(nodeId: string): Tables['tasks'][];
}

export interface Tx extends ReadTx {
  /** Throws AlreadyExists when the ID (or a service/network/secret name, in any case) is taken. */
  create<T extends TableName>(table: T, object: Tables[T]): void;
  /**
   * Throws NotFound when absent; AlreadyExists when it renames a service/network/secret to a name
   * another one has. The version checked at commit is the one this tx read.
   */
  update<T extends TableName>(table: T, object: Tables[T]): void;
  delete(table: TableName, id: string): void;
}

interface Envelope {
  /** Proposal id, to hand the apply outcome back to the local `update` call. */
  p: string;
  a: StoreAction[];
  /** Proposer time, ms since the epoch: expires recorded request ids (absent in entries of older versions). */
  t?: number;
  /** The client request this entry carries out: its id and the JSON result to answer a retry with. */
  q?: { id: string; r: unknown };
}

/** A client request recorded with its write (see {@link MemoryStore.update}). */
export interface RecordedRequest {
  /** Raft index of the entry that carried it out. */
  index: number;
  /** Proposer time of that entry, ms since the epoch. */
  at: number;
  /** What the write returned (JSON). */
  result: unknown;
}

/**
 * How long a request id is remembered after its write, ms: longer than any client retries a
 * write (the CLI's forwarding gives up after 12 s), short enough to keep the table small.
 */
export const REQUEST_TTL_MS = 10 * 60_000;

/** Options of {@link MemoryStore.update}. */
export interface UpdateOptions {
  /** Re-runs of `fn` after a {@link SequenceConflictError} (default 3). */
  retries?: number;
  /**
   * The client request this write carries out: recorded with the write; a write whose id is
   * already recorded is not run again and returns the recorded result instead.
   */
  requestId?: string;
}

/** The outcome of one applied proposal, for its proposer. */
type Outcome = { err: Error | null; dup?: { result: unknown } };

const enc = new TextEncoder();
const dec = new TextDecoder();
const UNIQUE_NAMES: ReadonlySet<TableName> = new Set(['services', 'networks', 'secrets', 'configs']);
/** Tables whose objects are found by `spec.name`. */
const NAMED: ReadonlySet<TableName> = new Set(['services', 'networks', 'secrets', 'configs', 'nodes']);

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

const nameOf = (o: AnyObject): string | undefined => {
  const n = (o as { spec?: { name?: unknown } }).spec?.name;
  return typeof n === 'string' ? n : undefined;
};

/** Of objects whose names match `name` case-insensitively: the exact match, else the first. */
function pickByName<T extends AnyObject>(candidates: Iterable<T>, name: string): T | undefined {
  let fold: T | undefined;
  for (const o of candidates) {
    if (nameOf(o) === name) return o;
    fold ??= o;
  }
  return fold;
}

/** The AlreadyExists error for `name`, naming the existing object when it differs in case. */
function nameTaken(table: TableName, name: string, existing: AnyObject): ShoalError {
  const other = nameOf(existing) ?? name;
  return alreadyExists(other === name
    ? `${singular(table)} ${name} already exists`
    : `${singular(table)} ${name} already exists as ${other} (names are case-insensitive)`);
}

export class MemoryStore {
  private tables = new Map<TableName, Map<string, AnyObject>>(TABLE_NAMES.map((t) => [t, new Map()]));
  private tasksBySvc = new Map<string, Set<string>>();
  private tasksByNd = new Map<string, Set<string>>();
  /** Named tables: lowercased name → IDs (a set: node names, and names stored before they were unique in any case, may repeat). */
  private names = new Map<TableName, Map<string, Set<string>>>();
  private watchers = new Set<(ev: StoreEvent) => void>();
  private outcomes = new Map<string, Outcome | null>();
  /** Recorded client requests, oldest first (replicated: part of the state and its snapshots). */
  private requests = new Map<string, RecordedRequest>();
  private seq = 0;
  private readonly instance = Math.random().toString(36).slice(2, 10);
  private readonly now: () => number;
  /** Raft index of the last applied entry. */
  appliedIndex = 0;

  /**
   * @param proposer the Raft side (set later with {@link setProposer} when Raft opens after the store).
   * @param opts.now the proposer's clock, ms since the epoch (default `Date.now`): stamps `meta` times.
   */
  constructor(private proposer?: Proposer, opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  setProposer(p: Proposer): void {
    this.proposer = p;
  }

  view<R>(fn: (tx: ReadTx) => R): R {
    return fn(this.reader(false));
  }

  /**
   * Runs `fn` in a transaction and commits its writes through Raft.
   * @throws SequenceConflictError when a read object changed concurrently `retries + 1` times;
   *   AlreadyExists / NotFound from `fn`; whatever the proposer rejects with (e.g. NotLeaderError).
   */
  async update<R>(fn: (tx: Tx) => R, opts: UpdateOptions = {}): Promise<R> {
    const retries = opts.retries ?? 3;
    const id = opts.requestId;
    for (let attempt = 0; ; attempt++) {
      if (id !== undefined) {
        const seen = this.requests.get(id);
        if (seen) return seen.result as R;
      }
      const now = this.now();
      const { tx, actions } = this.writer(new Date(now).toISOString());
      const result = fn(tx);
      if (actions.length === 0) return result;
      try {
        const dup = await this.commit(actions, { t: now, ...(id !== undefined ? { q: { id, r: result ?? null } } : {}) });
        return dup ? (dup.result as R) : result;
      } catch (e) {
        if (e instanceof SequenceConflictError && attempt < retries) continue;
        throw e;
      }
    }
  }

  /**
   * Proposes raw actions (already validated and stamped by a transaction).
   * @returns the first outcome when `extra.q` names a request already carried out, else undefined.
   */
  async commit(actions: StoreAction[], extra: { t?: number; q?: Envelope['q'] } = {}): Promise<{ result: unknown } | undefined> {
    if (!this.proposer) throw new ShoalError('Unavailable', 'store has no proposer (Raft not started)');
    const p = `${this.instance}.${++this.seq}`;
    const data = enc.encode(JSON.stringify({ p, a: actions, ...extra } satisfies Envelope));
    this.outcomes.set(p, null);
    try {
      await this.proposer.propose(data);
      const out = this.outcomes.get(p);
      if (!out) throw new ShoalError('Internal', 'proposal committed but never applied');
      if (out.err) throw out.err;
      return out.dup;
    } finally {
      this.outcomes.delete(p);
    }
  }

  /** The recorded outcome of client request `id`, if it was carried out (and has not expired). */
  request(id: string): RecordedRequest | undefined {
    return this.requests.get(id);
  }

  /** Subscribes to applied changes. Returns the unsubscribe function. */
  watch(fn: (ev: StoreEvent) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** Raft applier: apply one committed entry. Deterministic on every replica. */
  apply(entry: { index: number; data: Uint8Array }): void {
    this.appliedIndex = Math.max(this.appliedIndex, entry.index);
    if (entry.data.length === 0) return; // leader no-op
    let env: Envelope;
    try {
      env = JSON.parse(dec.decode(entry.data)) as Envelope;
    } catch {
      return; // not a store entry (e.g. a membership change payload)
    }
    if (!Array.isArray(env.a)) return;
    if (typeof env.t === 'number') this.expireRequests(env.t);
    const seen = env.q ? this.requests.get(env.q.id) : undefined;
    if (seen) {
      // The same client request, carried out by an earlier entry (a retry through another leader):
      // nothing changes; the proposer answers with the first outcome.
      if (this.outcomes.has(env.p)) this.outcomes.set(env.p, { err: null, dup: { result: seen.result } });
      return;
    }
    const err = this.check(env.a);
    if (this.outcomes.has(env.p)) this.outcomes.set(env.p, { err });
    if (err) return;
    if (env.q) this.requests.set(env.q.id, { index: entry.index, at: env.t ?? 0, result: env.q.r });
    const events: StoreEvent[] = [];
    for (const act of env.a) {
      const table = this.tables.get(act.table)!;
      const old = table.get(act.object.id);
      if (act.kind === 'delete') {
        if (!old) continue;
        table.delete(old.id);
        this.unindex(act.table, old);
        events.push({ kind: 'delete', table: act.table, object: old });
        continue;
      }
      const obj = act.object;
      // Times come from the proposer (in the entry); only the version is the apply's: the log index.
      // Entries of versions that stamped at apply carry no times: keep what is known, never a clock.
      obj.meta = {
        version: entry.index,
        createdAt: obj.meta?.createdAt || old?.meta.createdAt || '',
        updatedAt: obj.meta?.updatedAt || old?.meta.updatedAt || '',
      };
      deepFreeze(obj);
      if (old) this.unindex(act.table, old);
      table.set(obj.id, obj);
      this.index(act.table, obj);
      events.push(old ? { kind: 'update', table: act.table, object: obj, old } : { kind: 'create', table: act.table, object: obj });
    }
    events.push({ kind: 'commit', index: entry.index });
    for (const ev of events) this.emit(ev);
  }

  /** Forgets request ids recorded more than {@link REQUEST_TTL_MS} before proposer time `t` (ms). */
  private expireRequests(t: number): void {
    for (const [id, r] of this.requests) {
      if (t - r.at <= REQUEST_TTL_MS) break; // insertion order = log order ≈ time order
      this.requests.delete(id);
    }
  }

  /** Raft applier: serialize the whole state (JSON bytes). */
  snapshot(): Uint8Array {
    const out: Record<string, AnyObject[]> = {};
    for (const [t, m] of this.tables) out[t] = [...m.values()];
    return enc.encode(JSON.stringify({ index: this.appliedIndex, tables: out, requests: [...this.requests] }));
  }

  /**
   * Every table and the recorded requests as canonical JSON text (tables in a fixed order, rows by
   * ID): equal on two replicas exactly when their states are. For replica comparisons in tests.
   */
  dump(): string {
    const tables: Record<string, AnyObject[]> = {};
    for (const t of TABLE_NAMES) tables[t] = [...this.tables.get(t)!.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const requests = [...this.requests].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return JSON.stringify({ tables, requests });
  }

  /**
   * Raft applier: captures the state now (objects are frozen, so references are enough) and
   * serializes it later in slices; same bytes as {@link snapshot}.
   */
  snapshotLater(): () => Promise<Uint8Array> {
    const index = this.appliedIndex;
    const arrays: [string, AnyObject[]][] = [...this.tables].map(([t, m]) => [t, [...m.values()]]);
    const requests = [...this.requests];
    return () => stringifyArraysSliced({ index }, 'tables', arrays, { requests });
  }

  /** Raft applier: replace the whole state with a snapshot taken at `index`. */
  restore(data: Uint8Array, index: number): void {
    const snap = data.length
      ? (JSON.parse(dec.decode(data)) as { tables: Record<string, AnyObject[]>; requests?: [string, RecordedRequest][] })
      : { tables: {} };
    this.tables = new Map(TABLE_NAMES.map((t) => [t, new Map()]));
    this.requests = new Map(snap.requests ?? []);
    this.tasksBySvc.clear();
    this.tasksByNd.clear();
    this.names.clear();
    for (const t of TABLE_NAMES) {
      for (const o of snap.tables[t] ?? []) {
        deepFreeze(o);
        this.tables.get(t)!.set(o.id, o);
        this.index(t, o);
      }
    }
    this.appliedIndex = index;
    this.emit({ kind: 'restore', index });
  }

  private emit(ev: StoreEvent): void {
    for (const w of this.watchers) {
      try {
        w(ev);
      } catch {
        // a watcher's bug must not break replication
      }
    }
  }

  private check(actions: StoreAction[]): Error | null {
    const seen = new Map<string, AnyObject | null>();
    // Who holds `name` at this point of the entry: an object written earlier in it (a rename frees
    // the old name, as a stack's replaced config does), else a committed one not touched by it.
    const holderOf = (table: TableName, name: string): AnyObject | undefined => {
      for (const [k, o] of seen) {
        const n = o ? nameOf(o) : undefined;
        if (n !== undefined && k.startsWith(`${table}/`) && nameKey(n) === nameKey(name)) return o!;
      }
      return pickByName(this.named(table, name).filter((o) => !seen.has(`${table}/${o.id}`)), name);
    };
    for (const act of actions) {
      const key = `${act.table}/${act.object.id}`;
      const cur = seen.has(key) ? seen.get(key)! : this.tables.get(act.table)?.get(act.object.id) ?? null;
      if (!this.tables.has(act.table)) return new ShoalError('InvalidArgument', `unknown table ${act.table}`);
      if (act.kind === 'create') {
        if (cur) return alreadyExists(`${act.table} ${act.object.id} already exists`);
        const name = nameOf(act.object);
        if (UNIQUE_NAMES.has(act.table) && name !== undefined) {
          const other = holderOf(act.table, name);
          if (other && other.id !== act.object.id) return nameTaken(act.table, name, other);
        }
      } else {
        if (act.kind === 'update' && cur && UNIQUE_NAMES.has(act.table)) {
          // A rename must not take another object's name (keeping one's own name is always fine).
          const name = nameOf(act.object);
          const was = nameOf(cur);
          if (name !== undefined && (was === undefined || nameKey(was) !== nameKey(name))) {
            const other = holderOf(act.table, name);
            if (other && other.id !== act.object.id) return nameTaken(act.table, name, other);
          }
        }
        if (!cur) {
          if (act.kind === 'delete') continue;
          return new SequenceConflictError(`${singular(act.table)} ${act.object.id} was deleted`);
        }
        if (act.expectVersion !== undefined && !seen.has(key) && cur.meta.version !== act.expectVersion) {
          return new SequenceConflictError(`${singular(act.table)} ${act.object.id}`);
        }
      }
      seen.set(key, act.kind === 'delete' ? null : act.object);
    }
    return null;
  }

  /** Committed objects whose name matches `name` case-insensitively. */
  private named(table: TableName, name: string): AnyObject[] {
    const ids = this.names.get(table)?.get(nameKey(name));
    if (!ids) return [];
    const rows = this.tables.get(table)!;
    return [...ids].map((id) => rows.get(id)!).filter(Boolean);
  }

  private findByName(table: TableName, name: string): AnyObject | undefined {
    return pickByName(this.named(table, name), name);
  }

  private index(table: TableName, o: AnyObject): void {
    if (NAMED.has(table)) {
      const name = nameOf(o);
      if (name !== undefined) {
        let m = this.names.get(table);
        if (!m) this.names.set(table, (m = new Map()));
        addTo(m, nameKey(name), o.id);
      }
      return;
    }
    if (table !== 'tasks') return;
    const t = o as Tables['tasks'];
    addTo(this.tasksBySvc, t.serviceId, t.id);
    if (t.nodeId) addTo(this.tasksByNd, t.nodeId, t.id);
  }

  private unindex(table: TableName, o: AnyObject): void {
    if (NAMED.has(table)) {
      const name = nameOf(o);
      const m = this.names.get(table);
      const ids = name === undefined ? undefined : m?.get(nameKey(name));
      if (ids) {
        ids.delete(o.id);
        if (ids.size === 0) m!.delete(nameKey(name!));
      }
      return;
    }
    if (table !== 'tasks') return;
    const t = o as Tables['tasks'];
    this.tasksBySvc.get(t.serviceId)?.delete(t.id);
    if (t.nodeId) this.tasksByNd.get(t.nodeId)?.delete(t.id);
  }

  private reader(copy: boolean): ReadTx {
    const c = <T>(o: T): T => (copy && o ? structuredClone(o) : o);
    const tasksIn = (ids: Set<string> | undefined) =>
      [...(ids ?? [])].map((id) => c(this.tables.get('tasks')!.get(id) as Tables['tasks']));
    return {
      get: (table, id) => c(this.tables.get(table)!.get(id) as never),
      list: (table) => [...this.tables.get(table)!.values()].map((o) => c(o)) as never,
      byName: (table, name) => c(this.findByName(table, name) as never),
      tasksByService: (id) => tasksIn(this.tasksBySvc.get(id)),
      tasksByNode: (id) => tasksIn(this.tasksByNd.get(id)),
    };
  }

  /** A transaction overlay whose writes are stamped with `now` (ISO-8601, the proposer's time). */
  private writer(now: string): { tx: Tx; actions: StoreAction[] } {
    const actions: StoreAction[] = [];
    const base = this.reader(true);
    // Overlay of this transaction's own writes, so reads after writes see them.
    const overlay = new Map<string, AnyObject | null>();
    const key = (t: TableName, id: string) => `${t}/${id}`;
    const readVersion = (t: TableName, id: string) => this.tables.get(t)!.get(id)?.meta.version;
    const pending = (t: TableName) => [...overlay.entries()].filter(([k]) => k.startsWith(`${t}/`));
    // Base rows (already filtered by `pred`) with this transaction's pending writes laid over them.
    const merged = <T extends TableName>(t: T, list: Tables[T][], pred: (o: Tables[T]) => boolean = () => true): Tables[T][] => {
      const ov = pending(t);
      if (ov.length === 0) return list;
      const byId = new Map(list.map((o) => [o.id, o]));
      for (const [k, v] of ov) {
        const id = k.slice(t.length + 1);
        if (v && pred(v as Tables[T])) byId.set(id, structuredClone(v) as Tables[T]);
        else byId.delete(id);
      }
      return [...byId.values()];
    };
    const tx: Tx = {
      get: (t, id) => {
        const k = key(t, id);
        if (overlay.has(k)) return (overlay.get(k) ? structuredClone(overlay.get(k)) : undefined) as never;
        return base.get(t, id);
      },
      list: (t) => merged(t, base.list(t)),
      byName: (t, name) => {
        // This transaction's pending writes over the committed name index.
        const folded = nameKey(name);
        const ov = pending(t);
        const touched = new Set(ov.map(([k]) => k.slice(t.length + 1)));
        const hits: AnyObject[] = [];
        for (const [, v] of ov) {
          const n = v ? nameOf(v) : undefined;
          if (n !== undefined && nameKey(n) === folded) hits.push(v!);
        }
        for (const o of this.named(t, name)) if (!touched.has(o.id)) hits.push(o);
        const hit = pickByName(hits, name);
        return (hit ? structuredClone(hit) : undefined) as never;
      },
      tasksByService: (id) => merged('tasks', base.tasksByService(id), (x) => x.serviceId === id),
      tasksByNode: (id) => merged('tasks', base.tasksByNode(id), (x) => x.nodeId === id),
      create: (t, o) => {
        if (tx.get(t, o.id)) throw alreadyExists(`${singular(t)} ${o.id} already exists`);
        const name = nameOf(o);
        const other = UNIQUE_NAMES.has(t) && name !== undefined ? tx.byName(t as 'services', name) : undefined;
        if (other) throw nameTaken(t, name!, other);
        // A writer may set createdAt itself (e.g. a task copied from another); else it is now.
        o.meta = { version: 0, createdAt: o.meta?.createdAt || now, updatedAt: now };
        overlay.set(key(t, o.id), o);
        actions.push({ kind: 'create', table: t, object: o });
      },
      update: (t, o) => {
        const was = tx.get(t, o.id);
        if (!was) throw notFound(`${singular(t)} ${o.id} not found`);
        const name = nameOf(o);
        const wasName = nameOf(was);
        if (UNIQUE_NAMES.has(t) && name !== undefined && (wasName === undefined || nameKey(wasName) !== nameKey(name))) {
          const other = tx.byName(t as 'services', name);
          if (other && other.id !== o.id) throw nameTaken(t, name, other);
        }
        o.meta = { version: was.meta.version, createdAt: was.meta.createdAt || o.meta?.createdAt || now, updatedAt: now };
        overlay.set(key(t, o.id), o);
        const v = readVersion(t, o.id);
        actions.push({ kind: 'update', table: t, object: o, ...(v !== undefined ? { expectVersion: v } : {}) });
      },
      delete: (t, id) => {
        const cur = tx.get(t, id);
        if (!cur) return;
        overlay.set(key(t, id), null);
        const v = readVersion(t, id);
        actions.push({ kind: 'delete', table: t, object: { id } as AnyObject, ...(v !== undefined ? { expectVersion: v } : {}) });
      },
    };
    return { tx, actions };
  }
}

function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function singular(t: TableName): string {
  return t === 'nodes' ? 'node' : t.replace(/s$/, '');
}
