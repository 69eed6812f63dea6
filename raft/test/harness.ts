/**
 * A deterministic simulated network of RawNodes for scenario tests (the shape of the MIT 6.824
 * tester, in logical time). Everything is driven by one seeded PRNG: the same seed gives the
 * same run.
 *
 * Time is counted in *steps*; every `stepsPerTick` steps each live node gets one `tick()`. A
 * message sent at step t is delivered at step t + 1 (+ a random delay when the network is
 * unreliable, + a long delay for some messages under long reordering). Each node runs the
 * Ready loop exactly as a host must: persist (to its MemoryStorage, which survives crashes),
 * send, apply, advance.
 *
 * The applier checks safety on every apply: entries apply in index order on each node, and no
 * two nodes ever apply different data at the same index.
 */
import {
  type Config,
  decodeConfChange,
  type Entry,
  EntryType,
  type ConfState,
  type ConfChange,
  type Message,
  MessageType,
  MemoryStorage,
  mulberry32,
  RawNode,
  type ReadState,
  type Ready,
  type Snapshot,
  ProposalDroppedError,
  NotLeaderError,
  bootstrap,
} from '../src/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface ClusterOptions {
  /** Number of founding voters (ids n1..nN) unless `ids` is given. */
  n?: number;
  ids?: string[];
  seed?: number;
  stepsPerTick?: number;
  /** Per-node config overrides (id and random are filled by the harness). */
  config?: Partial<Config>;
  /** Take a snapshot (and compact the log) every this many applied entries; 0 = never. */
  snapshotEvery?: number;
  /** Entries kept in the log behind a snapshot. */
  snapshotKeep?: number;
  /** Give each node a random tick phase instead of ticking all nodes on the same step. */
  staggerTicks?: boolean;
  /** Steps between ready() and advance() (async persistence); 0 = synchronous host. */
  persistDelay?: number;
  /** Custom state machine (default: {@link KvStateMachine}). */
  stateMachine?: () => StateMachine;
}

/** The application replicated by Raft in tests. */
export interface StateMachine {
  /** Applies a committed normal entry; returns the command's output. */
  apply(index: number, data: Uint8Array): string;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
  get(key: string): string | undefined;
}

/** Commands are UTF-8 JSON `{op, key, value, id}`; other data is applied as an opaque value. */
export interface KvCommand {
  op: 'put' | 'append' | 'get';
  key: string;
  value?: string;
  /** Unique operation id (client + sequence). */
  id: string;
}

export class KvStateMachine implements StateMachine {
  kv = new Map<string, string>();
  apply(_index: number, data: Uint8Array): string {
    if (data.byteLength === 0 || data[0] !== 0x7b /* { */) return '';
    const c = JSON.parse(dec.decode(data)) as KvCommand;
    const cur = this.kv.get(c.key) ?? '';
    switch (c.op) {
      case 'put':
        this.kv.set(c.key, c.value ?? '');
        return '';
      case 'append':
        this.kv.set(c.key, cur + (c.value ?? ''));
        return '';
      case 'get':
        return cur;
    }
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify([...this.kv]));
  }
  restore(data: Uint8Array): void {
    this.kv = data.byteLength === 0 ? new Map() : new Map(JSON.parse(dec.decode(data)) as [string, string][]);
  }
  get(key: string): string | undefined {
    return this.kv.get(key);
  }
}

export class SafetyError extends Error {}

interface InFlight {
  at: number;
  seq: number;
  m: Message;
}

/** What a live node holds in memory (lost on crash). */
export class SimNode {
  readonly node: RawNode;
  readonly sm: StateMachine;
  applied: number;
  confState: ConfState;
  /** Outputs of applied entries by index (this incarnation), for clients waiting on results. */
  outputs = new Map<number, string>();
  readStates: ReadState[] = [];
  /** A Ready being "persisted" (async host mode). */
  inFlightReady: { rd: Ready; at: number } | undefined;

  constructor(
    readonly id: string,
    readonly storage: MemoryStorage,
    config: Config,
    sm: StateMachine,
  ) {
    const snap = storage.snapshot();
    this.sm = sm;
    this.sm.restore(snap.data);
    this.applied = snap.metadata.index;
    this.confState = snap.metadata.confState;
    this.node = new RawNode(config, storage);
  }
}

export interface Counters {
  rpcs: number;
  /** Rejected MsgAppResp (log inconsistencies found while backtracking). */
  appRejects: number;
  bytes: number;
  byType: Partial<Record<MessageType, number>>;
}

/** Approximate wire size of a message (header + entries + snapshot + context). */
export function messageBytes(m: Message): number {
  let n = 48 + m.to.length + m.from.length + (m.context?.byteLength ?? 0);
  for (const e of m.entries) n += 16 + e.data.byteLength;
  if (m.snapshot) n += 32 + m.snapshot.data.byteLength;
  return n;
}

export class Cluster {
  readonly ids: string[];
  readonly rng: () => number;
  readonly stepsPerTick: number;
  now = 0;
  private seq = 0;
  private queue: InFlight[] = [];
  /** Durable state ("disk") per node; survives crashes. */
  readonly storages = new Map<string, MemoryStorage>();
  /** Live nodes; absent = crashed. */
  readonly live = new Map<string, SimNode>();
  private readonly connected = new Set<string>();
  /** Directed links cut in addition to per-node disconnection: "a>b". */
  private readonly cut = new Set<string>();
  unreliable = false;
  longReordering = false;
  counters: Counters = { rpcs: 0, appRejects: 0, bytes: 0, byType: {} };
  /** Tester's record of what each node applied at each index (survives crashes, like MIT's). */
  readonly logs = new Map<string, Map<number, string>>();
  /** Every value ever applied at each index on any node; two different values = safety bug. */
  readonly committedAt = new Map<number, string>();
  maxIndex = 0;
  private readonly opts: Required<Omit<ClusterOptions, 'ids' | 'n' | 'config' | 'stateMachine'>> & {
    config: Partial<Config>;
    stateMachine: () => StateMachine;
  };
  /** Hooks for tests: called after each entry is applied on a node. */
  onApply?: (id: string, e: Entry, output: string) => void;

  constructor(o: ClusterOptions = {}) {
    this.ids = o.ids ?? Array.from({ length: o.n ?? 3 }, (_, i) => `n${i + 1}`);
    const seed = o.seed ?? 1;
    this.rng = mulberry32(seed);
    this.stepsPerTick = o.stepsPerTick ?? 5;
    this.opts = {
      seed,
      stepsPerTick: this.stepsPerTick,
      config: o.config ?? {},
      snapshotEvery: o.snapshotEvery ?? 0,
      snapshotKeep: o.snapshotKeep ?? 0,
      persistDelay: o.persistDelay ?? 0,
      staggerTicks: o.staggerTicks ?? false,
      stateMachine: o.stateMachine ?? (() => new KvStateMachine()),
    };
    for (const id of this.ids) {
      const storage = new MemoryStorage();
      bootstrap(storage, this.ids);
      this.storages.set(id, storage);
      this.logs.set(id, new Map());
      this.startNode(id);
    }
  }

  // ------------------------------------------------------------------ membership of the sim

  /** Adds a brand-new node (empty storage) to the simulation; it must be added via a conf change. */
  addNode(id: string): void {
    if (this.storages.has(id)) throw new Error(`sim: node ${id} exists`);
    this.ids.push(id);
    this.storages.set(id, new MemoryStorage());
    this.logs.set(id, new Map());
    this.startNode(id);
  }

  private readonly phases = new Map<string, number>();

  private nodeConfig(id: string): Config {
    if (!this.phases.has(id)) this.phases.set(id, Math.floor(this.rng() * this.stepsPerTick));
    return {
      electionTick: 10,
      heartbeatTick: 1,
      ...this.opts.config,
      id,
      random: mulberry32(Math.floor(this.rng() * 2 ** 32)),
    };
  }

  /** Crashes `id`: in-memory state is lost, storage survives; messages to it are dropped. */
  crash(id: string): void {
    this.live.delete(id);
  }

  disconnect(id: string): void {
    this.connected.delete(id);
  }

  connect(id: string): void {
    this.connected.add(id);
  }

  isConnected(id: string): boolean {
    return this.connected.has(id);
  }

  /** Cuts every link between the two groups (both directions); nodes stay "connected". */
  partition(a: string[], b: string[]): void {
    for (const x of a) for (const y of b) {
      this.cut.add(`${x}>${y}`);
      this.cut.add(`${y}>${x}`);
    }
  }

  heal(): void {
    this.cut.clear();
    for (const id of this.ids) this.connected.add(id);
  }

  private linkUp(from: string, to: string): boolean {
    return this.connected.has(from) && this.connected.has(to) && !this.cut.has(`${from}>${to}`);
  }

  // ------------------------------------------------------------------ the host loop

  /**
   * Runs the Ready loop of `sn` until it has nothing more to do. With `persistDelay` > 0 each
   * Ready is persisted `persistDelay` steps later (like an fsync), and the node keeps stepping
   * messages and ticks in the meantime — the way an async host (the LevelDB driver) runs it.
   */
  process(sn: SimNode): void {
    const node = sn.node;
    if (this.opts.persistDelay > 0) {
      if (sn.inFlightReady === undefined && node.hasReady()) {
        sn.inFlightReady = { rd: node.ready(), at: this.now + this.opts.persistDelay };
      }
      return;
    }
    while (node.hasReady()) this.handleReady(sn, node.ready());
  }

  /** Completes an async node's Ready whose persistence finished by now. */
  private completeReadies(): void {
    for (const sn of [...this.live.values()]) {
      const p = sn.inFlightReady;
      if (p === undefined || p.at > this.now) continue;
      sn.inFlightReady = undefined;
      this.handleReady(sn, p.rd);
      if (this.live.get(sn.id) === sn) this.process(sn);
    }
  }

  private handleReady(sn: SimNode, rd: Ready): void {
    const node = sn.node;
    {
      // 1. persist
      if (rd.snapshot) sn.storage.applySnapshot(rd.snapshot);
      sn.storage.append(rd.entries);
      if (rd.hardState) sn.storage.setHardState(rd.hardState);
      // 2. send
      for (const m of rd.messages) this.send(m);
      // 3. apply
      if (rd.snapshot) this.applySnapshot(sn, rd.snapshot);
      for (const e of rd.committedEntries) this.applyEntry(sn, e);
      for (const rs of rd.readStates) sn.readStates.push(rs);
      node.advance();
      this.maybeSnapshot(sn);
    }
  }

  private applySnapshot(sn: SimNode, snap: Snapshot): void {
    if (snap.metadata.index <= sn.applied) {
      throw new SafetyError(`${sn.id}: snapshot at ${snap.metadata.index} does not advance applied ${sn.applied}`);
    }
    sn.sm.restore(snap.data);
    sn.applied = snap.metadata.index;
    sn.confState = snap.metadata.confState;
  }

  private applyEntry(sn: SimNode, e: Entry): void {
    if (e.index !== sn.applied + 1) {
      throw new SafetyError(`${sn.id}: applied index ${e.index} out of order (applied ${sn.applied})`);
    }
    sn.applied = e.index;
    let key: string;
    let output = '';
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      sn.confState = sn.node.applyConfChange(cc);
      key = `cc:${dec.decode(e.data)}`;
    } else {
      key = e.data.byteLength === 0 ? '' : dec.decode(e.data);
      if (e.data.byteLength > 0) output = sn.sm.apply(e.index, e.data);
    }
    const prev = this.committedAt.get(e.index);
    if (prev !== undefined && prev !== key) {
      throw new SafetyError(`index ${e.index}: ${sn.id} applied ${JSON.stringify(key)} but another node applied ${JSON.stringify(prev)}`);
    }
    this.committedAt.set(e.index, key);
    this.logs.get(sn.id)!.set(e.index, key);
    if (e.index > this.maxIndex) this.maxIndex = e.index;
    sn.outputs.set(e.index, output);
    this.onApply?.(sn.id, e, output);
  }

  private maybeSnapshot(sn: SimNode): void {
    const every = this.opts.snapshotEvery;
    if (every <= 0) return;
    const snapIndex = sn.storage.snapshot().metadata.index;
    if (sn.applied - snapIndex < every) return;
    sn.storage.createSnapshot(sn.applied, sn.confState, sn.sm.snapshot());
    const compactTo = sn.applied - this.opts.snapshotKeep;
    if (compactTo > snapIndex && compactTo >= sn.storage.firstIndex()) sn.storage.compact(compactTo);
  }

  // ------------------------------------------------------------------ network

  private send(m: Message): void {
    this.counters.rpcs++;
    this.counters.bytes += messageBytes(m);
    this.counters.byType[m.type] = (this.counters.byType[m.type] ?? 0) + 1;
    if (m.type === MessageType.AppResp && m.reject) this.counters.appRejects++;
    if (!this.linkUp(m.from, m.to)) {
      this.snapshotOutcome(m, false);
      return;
    }
    let delay = 1;
    if (this.unreliable) {
      if (this.rng() < 0.1) {
        this.snapshotOutcome(m, false);
        return; // dropped
      }
      delay += Math.floor(this.rng() * 4);
      if (this.rng() < 0.05) this.enqueue(m, delay + Math.floor(this.rng() * 4)); // duplicate
    }
    if (this.longReordering && this.rng() < 0.1) {
      delay += 10 + Math.floor(this.rng() * 200);
    }
    this.enqueue(m, delay);
  }

  /** The host reports snapshot delivery; here "delivered" means enqueued on a live link. */
  private snapshotOutcome(m: Message, ok: boolean): void {
    if (m.type !== MessageType.Snap) return;
    const sender = this.live.get(m.from);
    if (!sender) return;
    // Report asynchronously (on the next step), like a transport callback.
    this.deferred.push(() => {
      const s = this.live.get(m.from);
      if (s !== sender) return;
      s.node.reportSnapshot(m.to, ok);
      this.process(s);
    });
  }

  private deferred: (() => void)[] = [];

  private enqueue(m: Message, delay: number): void {
    this.queue.push({ at: this.now + delay, seq: this.seq++, m });
  }

  /** Delivers one message (a copy: the receiver may mutate it). */
  private deliver(f: InFlight): void {
    const m = f.m;
    const to = this.live.get(m.to);
    if (!to || !this.linkUp(m.from, m.to)) {
      this.snapshotOutcome(m, false);
      return;
    }
    const copy: Message = { ...m, entries: m.entries.slice() };
    to.node.step(copy);
    this.process(to);
    if (m.type === MessageType.Snap) this.snapshotOutcome(m, true);
  }

  /** Advances time by `n` steps. */
  run(n: number): void {
    for (let i = 0; i < n; i++) this.stepOnce();
  }

  /** Advances time by `n` ticks. */
  runTicks(n: number): void {
    this.run(n * this.stepsPerTick);
  }

  private stepOnce(): void {
    this.now++;
    if (this.opts.persistDelay > 0) this.completeReadies();
    if (this.deferred.length > 0) {
      const d = this.deferred;
      this.deferred = [];
      for (const f of d) f();
    }
    if (this.queue.length > 0) {
      const due: InFlight[] = [];
      const rest: InFlight[] = [];
      for (const f of this.queue) (f.at <= this.now ? due : rest).push(f);
      if (due.length > 0) {
        this.queue = rest;
        // Same-step messages are delivered in a random order (another source of reordering).
        if (this.unreliable) shuffle(due, this.rng);
        else due.sort((a, b) => a.at - b.at || a.seq - b.seq);
        for (const f of due) this.deliver(f);
      }
    }
    for (const id of this.ids) {
      // Each node's clock ticks at its own phase when staggerTicks is set (real processes'
      // timers are not aligned); otherwise all tick together.
      const phase = this.opts.staggerTicks ? this.phases.get(id) ?? 0 : 0;
      if ((this.now + phase) % this.stepsPerTick !== 0) continue;
      const sn = this.live.get(id);
      if (!sn) continue;
      sn.node.tick();
      this.process(sn);
    }
  }

  /** Drops every message in flight. */
  clearQueue(): void {
    this.queue = [];
  }

  get inFlight(): number {
    return this.queue.length;
  }

  resetCounters(): void {
    this.counters = { rpcs: 0, appRejects: 0, bytes: 0, byType: {} };
  }

  // ------------------------------------------------------------------ tester helpers (MIT style)

  node(id: string): SimNode {
    const sn = this.live.get(id);
    if (!sn) throw new Error(`sim: node ${id} is not running`);
    return sn;
  }

  /** Leaders among live, connected nodes, by term. */
  leaders(): Map<number, string[]> {
    const byTerm = new Map<number, string[]>();
    for (const [id, sn] of this.live) {
      if (!this.connected.has(id)) continue;
      const st = sn.node.raft;
      if (st.state === 'leader') byTerm.set(st.term, [...(byTerm.get(st.term) ?? []), id]);
    }
    return byTerm;
  }

  /**
   * Waits (up to `rounds` × 1 election timeout) for exactly one leader among connected nodes;
   * fails if two nodes lead the same term. Returns the leader of the highest term.
   */
  checkOneLeader(rounds = 10): string {
    const et = (this.opts.config.electionTick ?? 10) * 2;
    for (let r = 0; r < rounds; r++) {
      this.runTicks(et);
      const byTerm = this.leaders();
      let best = -1;
      for (const [term, ls] of byTerm) {
        if (ls.length > 1) throw new SafetyError(`term ${term} has ${ls.length} leaders: ${ls.join(', ')}`);
        if (term > best) best = term;
      }
      if (best >= 0) return byTerm.get(best)![0]!;
    }
    throw new Error('expected one leader, got none');
  }

  /** All connected live nodes agree on the term; returns it. */
  checkTerms(): number {
    let term = -1;
    for (const [id, sn] of this.live) {
      if (!this.connected.has(id)) continue;
      const t = sn.node.raft.term;
      if (term === -1) term = t;
      else if (t !== term) throw new Error(`servers disagree on term: ${term} vs ${t} (${id})`);
    }
    return term;
  }

  checkNoLeader(): void {
    for (const [id, sn] of this.live) {
      if (this.connected.has(id) && sn.node.raft.state === 'leader') {
        throw new Error(`expected no leader among connected servers, but ${id} claims to be leader`);
      }
    }
  }

  /** How many nodes applied index `i`, and the value (throws on disagreement). */
  nCommitted(i: number): { count: number; value: string | undefined } {
    let count = 0;
    let value: string | undefined;
    for (const id of this.ids) {
      const v = this.logs.get(id)!.get(i);
      if (v === undefined) continue;
      if (count > 0 && v !== value) throw new SafetyError(`committed values at ${i} differ: ${value} vs ${v}`);
      value = v;
      count++;
    }
    return { count, value };
  }

  /**
   * Proposes `cmd` at `id` if it is the leader; returns the index it was given, or undefined
   * if `id` is not leader (or dropped it).
   */
  propose(id: string, cmd: string): number | undefined {
    const sn = this.live.get(id);
    if (!sn || sn.node.raft.state !== 'leader') return undefined;
    try {
      sn.node.propose(enc.encode(cmd));
    } catch (e) {
      if (e instanceof ProposalDroppedError || e instanceof NotLeaderError) return undefined;
      throw e;
    }
    const index = sn.node.raft.raftLog.lastIndex();
    this.process(sn);
    return index;
  }

  /** (Re)starts `id` from its persisted storage (a no-op if it is running). */
  startNode(id: string): void {
    if (this.live.has(id)) return;
    const storage = this.storages.get(id)!;
    const sn = new SimNode(id, storage, this.nodeConfig(id), this.opts.stateMachine());
    this.live.set(id, sn);
    this.connected.add(id);
    this.process(sn);
  }

  /** Proposes a conf change at `id` if it is the leader; returns the entry index or undefined. */
  proposeConfChange(id: string, cc: ConfChange): number | undefined {
    const sn = this.live.get(id);
    if (!sn || sn.node.raft.state !== 'leader') return undefined;
    try {
      sn.node.proposeConfChange(cc);
    } catch (e) {
      if (e instanceof ProposalDroppedError) return undefined;
      throw e;
    }
    const index = sn.node.raft.raftLog.lastIndex();
    this.process(sn);
    return index;
  }

  /** Runs until `pred` holds, up to `maxTicks`; returns whether it held. */
  runUntil(pred: () => boolean, maxTicks = 200): boolean {
    const deadline = this.now + maxTicks * this.stepsPerTick;
    while (this.now < deadline) {
      if (pred()) return true;
      this.run(1);
    }
    return pred();
  }

  /**
   * MIT `one()`: submits `cmd` to whichever node is leader, waits until at least `expected`
   * nodes applied it at one index, retrying for up to `timeoutTicks`. Returns the index.
   */
  one(cmd: string, expected: number, retry = true, timeoutTicks = 200): number {
    const deadline = this.now + timeoutTicks * this.stepsPerTick;
    let next = 0;
    while (this.now < deadline) {
      let index: number | undefined;
      for (let k = 0; k < this.ids.length; k++) {
        const id = this.ids[(next + k) % this.ids.length]!;
        if (!this.connected.has(id)) continue;
        index = this.propose(id, cmd);
        if (index !== undefined) {
          next = (next + k + 1) % this.ids.length;
          break;
        }
      }
      if (index !== undefined) {
        // Wait up to ~2 election timeouts for agreement.
        const wait = this.now + 40 * this.stepsPerTick;
        while (this.now < wait) {
          this.run(1);
          const { count, value } = this.nCommitted(index);
          if (count >= expected && value === cmd) return index;
        }
        if (!retry) throw new Error(`one(${cmd}) failed to reach agreement`);
      } else {
        this.runTicks(1);
      }
    }
    throw new Error(`one(${cmd}) failed to reach agreement within ${timeoutTicks} ticks`);
  }

  /** Persisted log bytes of a node (entries still in its storage). */
  persistedLogBytes(id: string): number {
    const s = this.storages.get(id)!;
    const lo = s.firstIndex();
    const hi = s.lastIndex();
    if (hi < lo) return 0;
    let n = 0;
    for (const e of s.entries(lo, hi + 1, Infinity)) n += 16 + e.data.byteLength;
    return n;
  }
}

export function shuffle<T>(a: T[], rng: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

export function randInt(rng: () => number, n: number): number {
  return Math.floor(rng() * n);
}
