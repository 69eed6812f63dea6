/**
 * `RaftNode`: hosts the pure Raft core (`@shoal/raft` RawNode) with durable LevelDB storage, a
 * gRPC transport, a tick timer and one serialized Ready loop:
 *
 *   persist (one fsynced LevelDB batch) → send messages → apply snapshot → apply committed
 *   entries → advance   (etcd-io/raft README "Usage"; Raft thesis §10.2.1)
 *
 * Proposals arriving while a Ready is being persisted join the next Ready, so one fsync covers
 * many proposals (group commit).
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { EntryType, NotLeaderError, ProposalDroppedError, RawNode, decodeConfChange } from '@shoal/raft';
import type { ConfChange, ConfState, Entry, Logger as CoreLogger, Message, NodeId, Ready, Snapshot, SoftState, Status } from '@shoal/raft';
import { LATENCY_BUCKETS, nopLogger, nopMetrics, systemClock, type Clock, type Logger, type Metrics, type TimerHandle } from '@shoal/runtime';
import { LevelStorage, type RaftStorage } from './level-storage.js';
import type { RecordCipher } from './cipher.js';
import { prepareEncryptedDir } from './encrypt.js';
import { GrpcTransport, type Transport, type TransportCredentials, type TransportHandler } from './transport.js';
import { MemberRemovedError, NodeClosedError, TimeoutError } from './errors.js';
import { frameProposal, parseProposal, unwrapSnapshot, type PeerMap } from './envelope.js';
import { Membership, forceNewClusterChanges, type Member } from './membership.js';
import { Proposals } from './proposals.js';
import { Snapshotter } from './snapshotter.js';

/** The replicated state machine the driver feeds (e.g. the store). Calls are serialized. */
export interface Applier {
  /** Applies one committed entry, in log order. A throw rejects that entry's proposal (on the proposer) and is otherwise logged. */
  apply(entry: { index: number; term: number; data: Uint8Array }): void;
  /** Serializes the whole state as of the last applied entry. */
  snapshot(): Uint8Array;
  /**
   * Optional, preferred by the node for its periodic snapshots: captures the state as of the last
   * applied entry NOW (cheaply — e.g. references to immutable objects) and returns a function that
   * serializes that capture later, in slices that yield to the event loop, to the same bytes
   * {@link snapshot} would have given. Large states then no longer stall replication while they
   * are serialized (the stall showed as the p99 commit latency under load).
   */
  snapshotLater?(): () => Promise<Uint8Array>;
  /** Replaces the whole state with `data` (from {@link snapshot}), as of log index `index`. */
  restore(data: Uint8Array, index: number): void;
}

/** The runtime logger (`@shoal/runtime`, pino-compatible), under the name this package always exported. */
export type DriverLogger = Logger;

export interface PeerAddr {
  id: NodeId;
  /** `host:port` of the peer's Raft gRPC server. */
  addr: string;
  /** The cluster node it runs on (default: its Raft ID). */
  nodeId?: string;
}

export interface RaftNodeOptions {
  /**
   * This member's Raft ID: non-empty, stable across restarts, and never used by another membership
   * (a node that rejoins the group gets a fresh one; see membership.ts).
   */
  id: NodeId;
  /** The cluster node this member runs on (recorded with its membership; default: `id`). */
  nodeId?: string;
  /** Directory for durable state; Raft uses `<dataDir>/raft` (a LevelDB database). Unused when `storage` is given. */
  dataDir: string;
  /**
   * Durable storage, already opened, instead of the LevelDB database under `dataDir` (the
   * in-process cluster harness passes an in-memory one). The node closes it.
   */
  storage?: RaftStorage;
  /**
   * Time source of ticks, deadlines and retries (default {@link systemClock}); the in-process
   * cluster harness passes a fake clock that drives every node.
   */
  clock?: Clock;
  /**
   * Randomness of the election timeouts, in [0, 1) (default `Math.random`); the harness passes a
   * seeded generator so runs repeat.
   */
  random?: () => number;
  /** The peer transport, already started (`await transport.start()`). The caller closes it. */
  transport?: Transport;
  /** Instead of `transport`: `host:port` for a transport the node creates, starts and closes. */
  listen?: string;
  /** Address peers reach the transport created from `listen` at (default: `listen`); required when listening on 0.0.0.0. */
  advertise?: string;
  /** Credentials for the transport created from `listen` (default insecure). */
  credentials?: TransportCredentials;
  /** Tick interval in ms (default 100). */
  tickMs?: number;
  /**
   * Election timeout in ticks (default 5): a follower campaigns after a randomized
   * [electionTick, 2·electionTick) ticks without a leader — 0.5–1 s with the default tick.
   */
  electionTick?: number;
  /** Heartbeat interval in ticks (default 1). */
  heartbeatTick?: number;
  applier: Applier;
  /** Take a snapshot after this many applied entries (default 10,000). */
  snapshotEvery?: number;
  /** Log entries kept behind a snapshot for slow followers (default 500). */
  keepEntries?: number;
  /**
   * New cluster: the founding voters (every founding member passes the same list, including
   * itself). Used only when `<dataDir>/raft` is empty. Default when neither `bootstrap` nor
   * `join` is given: a single-voter cluster of this node.
   */
  bootstrap?: { peers: PeerAddr[] };
  /**
   * Join an existing cluster: start with no configuration and wait for the leader (after the
   * leader ran `addLearner`/`addVoter` for this id). `peers` are address hints for existing
   * members. Used only when `<dataDir>/raft` is empty.
   */
  join?: { peers: PeerAddr[] };
  /**
   * Restart as a single-voter cluster keeping all committed state (`swarm init
   * --force-new-cluster`): uncommitted entries are dropped and conf changes removing every other
   * member are appended and committed locally.
   */
  forceNewCluster?: boolean;
  /**
   * How `readIndex` confirms leadership (default `'safe'`: a heartbeat round to a quorum;
   * `'lease'`: the leader's check-quorum lease, no round trip, relies on bounded clock drift).
   */
  readOnly?: 'safe' | 'lease';
  /** Cluster id checked on every envelope by the transport created from `listen`. */
  clusterId?: string;
  /**
   * Encryption at rest (docs/SECURITY.md): every record is sealed with `cipher` (the member's data
   * encryption key). Unencrypted data, or data sealed with a key in `previous`, is rewritten under
   * `cipher` before it is opened (`encrypt.ts`). Absent: records are stored in the clear.
   */
  encryption?: { cipher: RecordCipher; previous?: RecordCipher[] };
  /** Largest proposal payload in bytes (default 8 MiB). */
  maxProposalBytes?: number;
  /** Default deadline of propose/readIndex/membership calls, ms (default 10,000). */
  defaultTimeoutMs?: number;
  logger?: DriverLogger;
  /** Where the member's metrics go (see {@link RaftMetrics}). Default {@link nopMetrics}. */
  metrics?: Metrics;
}

/**
 * The Raft metrics of one member: counters and histograms updated as things happen, gauges read at
 * scrape time. `etcd_server_*` / SwarmKit `swarm_raft_*` in spirit; names per Prometheus practice.
 */
class RaftMetrics {
  readonly leaderChanges;
  readonly proposals;
  readonly proposalFailures;
  readonly snapshots;
  readonly snapshotBytes;
  readonly snapshotSeconds;
  readonly fsyncSeconds;
  private readonly gauges;

  constructor(private readonly m: Metrics) {
    this.leaderChanges = m.counter({ name: 'shoal_raft_leader_changes_total', help: 'Leader changes this member has seen (a new, known leader).' });
    this.proposals = m.histogram({
      name: 'shoal_raft_proposal_duration_seconds', help: 'Time from proposing an entry to applying it on the proposer (leader), for proposals that committed.', buckets: LATENCY_BUCKETS,
    });
    this.proposalFailures = m.counter({ name: 'shoal_raft_proposals_failed_total', help: 'Proposals that failed (not leader, dropped, timed out, refused by the state machine).' });
    this.snapshots = m.counter({ name: 'shoal_raft_snapshots_total', help: 'Snapshots: source="local" taken here, source="leader" installed from the leader.', labelNames: ['source'] });
    this.snapshotBytes = m.gauge({ name: 'shoal_raft_snapshot_size_bytes', help: 'Size of the last snapshot taken or installed here, bytes.' });
    this.snapshotSeconds = m.histogram({ name: 'shoal_raft_snapshot_duration_seconds', help: 'Time to capture, serialize and persist a local snapshot.', buckets: LATENCY_BUCKETS });
    this.fsyncSeconds = m.histogram({ name: 'shoal_raft_fsync_duration_seconds', help: 'Duration of one fsynced LevelDB batch of the Raft log (write + fsync).', buckets: LATENCY_BUCKETS });
    this.gauges = {
      term: m.gauge({ name: 'shoal_raft_term', help: 'Current Raft term of this member.' }),
      commit: m.gauge({ name: 'shoal_raft_commit_index', help: 'Highest log index this member knows to be committed.' }),
      applied: m.gauge({ name: 'shoal_raft_applied_index', help: 'Highest log index applied to the store on this member.' }),
      snapshotIndex: m.gauge({ name: 'shoal_raft_snapshot_index', help: 'Log index of the last durable snapshot of this member.' }),
      leader: m.gauge({ name: 'shoal_raft_is_leader', help: '1 when this member is the Raft leader, else 0 (SwarmKit swarm_manager_leader).' }),
      hasLeader: m.gauge({ name: 'shoal_raft_has_leader', help: '1 when this member knows a leader, else 0.' }),
      members: m.gauge({ name: 'shoal_raft_members', help: 'Members of the Raft group as this member sees it, by kind (voter, learner).', labelNames: ['kind'] }),
    };
  }

  /** Reads `status` at every scrape until the returned function is called (which zeroes the gauges). */
  collect(status: () => { term: number; commit: number; applied: number; snapshotIndex: number; leader: boolean; hasLeader: boolean; voters: number; learners: number }): () => void {
    const g = this.gauges;
    const off = this.m.onCollect(() => {
      const st = status();
      g.term.set(st.term);
      g.commit.set(st.commit);
      g.applied.set(st.applied);
      g.snapshotIndex.set(st.snapshotIndex);
      g.leader.set(st.leader ? 1 : 0);
      g.hasLeader.set(st.hasLeader ? 1 : 0);
      g.members.set(st.voters, { kind: 'voter' });
      g.members.set(st.learners, { kind: 'learner' });
    });
    return () => {
      off();
      for (const x of Object.values(g)) x.reset();
    };
  }
}

export interface NodeStatus {
  id: NodeId;
  /** Leader id, `''` if none known. */
  leader: NodeId;
  role: SoftState['role'];
  term: number;
  commit: number;
  applied: number;
  snapshotIndex: number;
  confState: ConfState;
  /** Known member addresses (including this node's). */
  peers: PeerMap;
  /** Raft IDs removed from the group. */
  removed: NodeId[];
  /** The core's status (leader: per-peer progress). */
  raft: Status;
}

/** Internal event: the node closed or failed (wakes waits inside open()). */
const STOPPED = Symbol('stopped');

function coreLogger(l: DriverLogger): CoreLogger {
  return {
    debug: (msg, f) => l.debug(f ?? {}, msg),
    info: (msg, f) => l.info(f ?? {}, msg),
    warn: (msg, f) => l.warn(f ?? {}, msg),
    error: (msg, f) => l.error(f ?? {}, msg),
  };
}

/**
 * A Raft member. Events:
 * - `'leader-change' (leaderId: string ('' = none), isLocalLeader: boolean)`. When this node
 *   becomes leader the event (with `true`) fires once it has applied an entry of its own term,
 *   i.e. everything committed before its term is applied — start leader-only work then;
 * - `'removed' ()` — this member was removed from the group (it applied its own removal, or a
 *   member refused its messages as a removed member's); once. The node stops taking part: the
 *   host should close it and wipe its Raft data (a later membership uses a fresh Raft ID);
 * - `'error' (err)` — fatal (disk write failed); the node has stopped. Emitted only when a
 *   listener exists, logged otherwise.
 */
export class RaftNode extends EventEmitter {
  readonly id: NodeId;
  /** The cluster node this member runs on. */
  readonly nodeId: string;
  private raw!: RawNode;
  private readonly storage: RaftStorage;
  private readonly clock: Clock;
  private readonly transport: Transport | undefined;
  private readonly ownsTransport: boolean;
  private readonly applier: Applier;
  private readonly log: DriverLogger;
  private readonly tickMs: number;
  private readonly snapshotEvery: number;
  private readonly maxProposalBytes: number;
  private readonly defaultTimeoutMs: number;
  /** Random per process start: tags this node's proposals (see envelope.ts). */
  private readonly instance: number;
  private seq = 0;
  private readonly waiting: Proposals;
  private readonly membership = new Membership();
  private readonly snapshots: Snapshotter;
  private applyWaiters: { index: number; resolve(): void }[] = [];
  private applied = 0;
  /** `applied` as of the last advance() (what the core counts as applied). */
  private advancedApplied = 0;
  private lead: NodeId = '';
  private role: SoftState['role'] = 'follower';
  private curTerm = 0;
  private commit = 0;
  private lastAppliedTerm = 0;
  /** Became leader; 'leader-change' (self, true) is pending until our no-op is applied. */
  private announceLeader = false;
  /** Term and vote as last written to disk. */
  private durableTerm = 0;
  private durableVote: NodeId = '';
  private ticker: TimerHandle | undefined;
  private wakeFn: (() => void) | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private closed = false;
  private failure: Error | undefined;
  /** 'removed' was emitted (once). */
  private wasRemoved = false;
  /** Raft IDs whose refused messages were already logged (each once). */
  private readonly loggedRefusals = new Set<NodeId>();
  private readonly metrics: RaftMetrics;
  private uncollect: (() => void) | undefined;

  private constructor(opts: RaftNodeOptions, storage: RaftStorage, transport: Transport | undefined, ownsTransport: boolean) {
    super();
    this.id = opts.id;
    this.clock = opts.clock ?? systemClock;
    this.instance = opts.random ? Math.floor(opts.random() * 2 ** 32) >>> 0 : randomInt(0, 2 ** 32 - 1);
    this.waiting = new Proposals(this.clock);
    this.nodeId = opts.nodeId ?? opts.id;
    this.storage = storage;
    this.transport = transport;
    this.ownsTransport = ownsTransport;
    this.applier = opts.applier;
    this.log = opts.logger ?? nopLogger;
    this.tickMs = opts.tickMs ?? 100;
    this.snapshotEvery = opts.snapshotEvery ?? 10_000;
    this.maxProposalBytes = opts.maxProposalBytes ?? 8 << 20;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 10_000;
    this.metrics = new RaftMetrics(opts.metrics ?? nopMetrics);
    storage.onSynced = (seconds) => this.metrics.fsyncSeconds.observe(seconds);
    this.snapshots = new Snapshotter({
      storage, source: opts.applier, keepEntries: opts.keepEntries ?? 500,
      log: { info: (o, msg) => this.log.info({ id: this.id, ...o }, msg) },
      onFatal: (err) => this.fatal(err),
      onSettled: () => this.wake(),
      onTaken: (bytes, seconds) => {
        this.metrics.snapshots.inc({ source: 'local' });
        this.metrics.snapshotBytes.set(bytes);
        this.metrics.snapshotSeconds.observe(seconds);
      },
    });
  }

  /**
   * Opens (or creates) the member's durable state, restores the snapshot, replays committed log
   * entries into `applier`, and starts ticking. Resolves once the replay is done; a single-voter
   * cluster is leader (writable) by then.
   * @throws CorruptLogError when a persisted record fails its checksum.
   * @throws RangeError on invalid options (naming the option).
   */
  static async open(opts: RaftNodeOptions): Promise<RaftNode> {
    validate(opts);
    const dir = join(opts.dataDir, 'raft');
    if (!opts.storage) await mkdir(dir, { recursive: true });
    let transport = opts.transport;
    let owns = false;
    if (!transport && opts.listen) {
      const t = new GrpcTransport({
        id: opts.id,
        listen: opts.listen,
        ...(opts.advertise ? { advertise: opts.advertise } : {}),
        ...(opts.clusterId ? { clusterId: opts.clusterId } : {}),
        ...(opts.credentials ? { credentials: opts.credentials } : {}),
      });
      await t.start();
      transport = t;
      owns = true;
    }
    let storage: RaftStorage;
    try {
      if (opts.storage) storage = opts.storage;
      else {
        const enc = opts.encryption;
        if (enc) await prepareEncryptedDir(dir, enc.cipher, enc.previous ?? [], opts.logger);
        storage = await LevelStorage.open(dir, enc ? { cipher: enc.cipher } : {});
      }
    } catch (err) {
      if (owns) await transport!.close();
      throw err;
    }
    const node = new RaftNode(opts, storage, transport, owns);
    try {
      await node.init(opts);
    } catch (err) {
      await node.close().catch(() => {});
      throw err;
    }
    return node;
  }

  private async init(opts: RaftNodeOptions): Promise<void> {
    const selfAddr = this.transport?.address() ?? '';
    if (this.storage.loaded.fresh && !opts.join) {
      const founders = opts.bootstrap?.peers ?? [{ id: this.id, addr: selfAddr, nodeId: this.nodeId }];
      if (!founders.some((p) => p.id === this.id)) {
        throw new RangeError(`bootstrap.peers does not list this node (${this.id}); include every founding member, this one too`);
      }
      // Like etcd's Bootstrap: the founding configuration is a run of committed ConfChange
      // entries at term 1, so members that join later learn it from the log or a snapshot.
      const ents: Entry[] = founders.map((p, i) => ({
        term: 1,
        index: i + 1,
        type: EntryType.ConfChange,
        data: Buffer.from(JSON.stringify({
          type: 'addNode', nodeId: p.id, context: JSON.stringify({ addr: p.addr, nodeId: p.nodeId ?? p.id }),
        } satisfies ConfChange)),
      }));
      await this.storage.save({ term: 1, vote: '', commit: ents.length }, ents);
    }
    for (const p of opts.join?.peers ?? []) {
      this.transport?.addPeer(p.id, p.addr);
      this.membership.setAddr(p.id, p.addr);
    }
    if (opts.forceNewCluster) await this.forceNewCluster(selfAddr);

    const snap = this.storage.snapshot();
    this.restoreSnapshot(snap, false);
    const hs = this.storage.mem.hardStateSnapshot();
    this.curTerm = hs.term;
    this.commit = hs.commit;
    this.durableTerm = hs.term;
    this.durableVote = hs.vote;
    this.raw = new RawNode(
      {
        id: this.id,
        electionTick: opts.electionTick ?? 5,
        heartbeatTick: opts.heartbeatTick ?? 1,
        preVote: true,
        checkQuorum: true,
        applied: snap.metadata.index,
        disableProposalForwarding: true,
        readOnlyOption: opts.readOnly ?? 'safe',
        maxSizePerMsg: 1 << 20,
        maxInflightMsgs: 256,
        // Bound memory: bytes in flight per follower, and uncommitted bytes while no quorum answers
        // (further proposals get ProposalDroppedError).
        maxInflightBytes: 32 << 20,
        maxUncommittedEntriesSize: 64 << 20,
        random: opts.random ?? Math.random,
        logger: coreLogger(this.log),
      },
      this.storage,
    );
    this.transport?.setHandler(this.handler);
    this.uncollect = this.metrics.collect(() => {
      const conf = this.membership.conf();
      return {
        term: this.curTerm, commit: this.commit, applied: this.applied, snapshotIndex: this.snapshots.index,
        leader: this.lead === this.id, hasLeader: this.lead !== '', voters: conf.voters.length, learners: conf.learners.length,
      };
    });
    this.loopDone = this.run();
    this.startTicking();
    // Replay committed entries before reporting the node open.
    await this.waitApplied(hs.commit);
    if (this.failure) throw this.failure;
    const conf = this.membership.conf();
    if (conf.voters.length === 1 && conf.voters[0] === this.id) {
      // Sole voter: no one to wait for, elect ourselves now instead of after a timeout.
      this.raw.campaign();
      this.wake();
      // Wait for our no-op to be applied (bounded: never hang open()).
      await new Promise<void>((resolve) => {
        if (this.closed || this.failure) return resolve();
        const done = (): void => {
          this.clock.clearTimeout(timer);
          this.off('leader-change', on);
          this.off(STOPPED, done);
          resolve();
        };
        const on = (_lead: NodeId, local: boolean): void => void (local && done());
        const timer = this.clock.setTimeout(done, 2 * (opts.electionTick ?? 5) * this.tickMs);
        this.on('leader-change', on);
        this.once(STOPPED, done);
      });
      if (this.failure) throw this.failure;
    }
  }

  /**
   * See {@link RaftNodeOptions.forceNewCluster}: appends, as committed entries of the last term,
   * conf changes that leave this member the only voter ({@link forceNewClusterChanges}). The
   * removed members are remembered as removed like any others: when they come back, every member
   * refuses their messages and tells them so.
   */
  private async forceNewCluster(selfAddr: string): Promise<void> {
    const mem = this.storage.mem;
    const hs = mem.hardStateSnapshot();
    const snap = mem.snapshot();
    const committed = hs.commit > snap.metadata.index
      ? mem.entries(snap.metadata.index + 1, hs.commit + 1, Infinity).filter((e) => e.type === EntryType.ConfChange).map((e) => e.data)
      : [];
    const changes = forceNewClusterChanges(snap.metadata.confState, committed, { id: this.id, addr: selfAddr, nodeId: this.nodeId });
    if (changes.length === 0) return; // already alone; an uncommitted tail is kept (as sole voter we commit it)
    const term = mem.term(hs.commit);
    const ents: Entry[] = changes.map((cc, i) => ({
      term,
      index: hs.commit + 1 + i,
      type: EntryType.ConfChange,
      data: Buffer.from(JSON.stringify(cc)),
    }));
    this.log.warn({ id: this.id, removed: changes.filter((c) => c.type === 'removeNode').map((c) => c.nodeId) }, 'raft: forcing a new single-voter cluster');
    await this.storage.save({ ...hs, commit: hs.commit + ents.length }, ents);
  }

  // ------------------------------------------------------------------ public API

  /**
   * Replicates `data` through the log. Resolves with the entry's log index once it is committed
   * AND has been passed to `applier.apply` on this node.
   * @param timeoutMs deadline in ms (default `defaultTimeoutMs`, 10 s).
   * @throws NotLeaderError (`leader` = hint) when this node is not the leader — send it there.
   * @throws ProposalDroppedError when the core refuses it (leadership transfer in progress, ...).
   * @throws TimeoutError after `timeoutMs` (outcome unknown). Leadership loss while pending
   *   rejects with NotLeaderError (outcome unknown: the entry may still commit).
   * @throws RangeError when `data` exceeds `maxProposalBytes`.
   */
  propose(data: Uint8Array, timeoutMs = this.defaultTimeoutMs): Promise<{ index: number }> {
    if (this.closed || this.failure) return Promise.reject(this.failure ?? new NodeClosedError('propose'));
    if (this.wasRemoved) return Promise.reject(new MemberRemovedError('propose'));
    if (data.byteLength > this.maxProposalBytes) {
      return Promise.reject(new RangeError(`proposal is ${data.byteLength} bytes, above maxProposalBytes ${this.maxProposalBytes}; split it`));
    }
    if (this.lead !== this.id) return Promise.reject(new NotLeaderError(this.lead));
    const seq = this.nextSeq();
    try {
      this.raw.propose(frameProposal(this.instance, seq, data));
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.wake();
    const t0 = performance.now();
    return this.waiting.track(seq, 'propose', timeoutMs).then(
      (r) => {
        this.metrics.proposals.observe((performance.now() - t0) / 1000);
        return r;
      },
      (err: unknown) => {
        this.metrics.proposalFailures.inc();
        throw err;
      },
    );
  }

  /**
   * Linearizable read barrier (Raft thesis §6.4, ReadIndex): resolves once this node has applied
   * everything committed before the call, as confirmed by a leader heartbeat round. Works on
   * followers too (the request goes to the leader).
   * @throws ProposalDroppedError when no leader is known; NotLeaderError if the leader changed
   *   before confirming; TimeoutError after `timeoutMs`.
   */
  readIndex(timeoutMs = this.defaultTimeoutMs): Promise<void> {
    if (this.closed || this.failure) return Promise.reject(this.failure ?? new NodeClosedError('readIndex'));
    if (this.wasRemoved) return Promise.reject(new MemberRemovedError('readIndex'));
    const seq = this.nextSeq();
    const ctx = Buffer.allocUnsafe(8);
    ctx.writeUInt32LE(this.instance, 0);
    ctx.writeUInt32LE(seq, 4);
    try {
      this.raw.readIndex(ctx);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.wake();
    return this.waiting.trackRead(seq, timeoutMs);
  }

  isLeader(): boolean {
    return this.lead === this.id;
  }

  /** Current leader's Raft ID, `''` if none is known. */
  leaderId(): NodeId {
    return this.lead;
  }

  /** Address of a member (`host:port`), if known. */
  peerAddr(id: NodeId): string | undefined {
    return this.transport?.peerAddr(id) ?? this.membership.addr(id);
  }

  term(): number {
    return this.curTerm;
  }

  /** Index of the last entry passed to the applier. */
  appliedIndex(): number {
    return this.applied;
  }

  status(): NodeStatus {
    const peers: PeerMap = {};
    for (const m of this.members()) if (m.addr) peers[m.id] = m.addr;
    return {
      id: this.id,
      leader: this.lead,
      role: this.role,
      term: this.curTerm,
      commit: this.commit,
      applied: this.applied,
      snapshotIndex: this.snapshots.index,
      confState: this.membership.conf(),
      peers,
      removed: this.membership.removed(),
      raft: this.raw.status(),
    };
  }

  /** Members: voters and learners, with the cluster nodes they run on and their addresses. */
  members(): Member[] {
    return this.membership.members((id) => this.peerAddr(id));
  }

  /**
   * True once this member learned it was removed from the group (also during `open`, when the
   * replayed log or a snapshot already says so — before a host could listen for `'removed'`).
   */
  get removedFromGroup(): boolean {
    return this.wasRemoved;
  }

  /** True when `id` was removed from the group (it may never take part again). */
  isRemoved(id: NodeId): boolean {
    return this.membership.isRemoved(id);
  }

  /**
   * Adds `id` (running on cluster node `nodeId`) as a learner (non-voter) reachable at `addr`; it
   * catches up from the log or a snapshot. Leader only. Resolves when the change is applied here.
   * Raft thesis §4.2.1.
   * @throws NotLeaderError, ProposalDroppedError (another change pending), TimeoutError,
   *   RangeError when `id` was removed before (Raft IDs are never reused).
   */
  addLearner(id: NodeId, addr: string, timeoutMs?: number, nodeId?: string): Promise<{ index: number }> {
    return this.proposeConf({ type: 'addLearner', nodeId: id }, addr, timeoutMs, nodeId);
  }

  /** Promotes learner `id` to voter (address already known). Leader only. */
  promote(id: NodeId, timeoutMs?: number): Promise<{ index: number }> {
    const m = this.members().find((x) => x.id === id);
    return this.proposeConf({ type: 'addNode', nodeId: id }, this.peerAddr(id) ?? '', timeoutMs, m?.nodeId || undefined);
  }

  /**
   * Adds (or promotes) `id` as a voter at `addr`. Prefer `addLearner` + wait for catch-up +
   * `promote`, so the quorum does not wait on an empty member.
   */
  addVoter(id: NodeId, addr: string, timeoutMs?: number, nodeId?: string): Promise<{ index: number }> {
    return this.proposeConf({ type: 'addNode', nodeId: id }, addr, timeoutMs, nodeId);
  }

  /**
   * Joins a new voter safely (Raft thesis §4.2.1): adds it as a learner, waits until its log
   * matches the leader's commit index as of the add, then promotes it. Leader only.
   * @param timeoutMs overall deadline in ms (default 60 s; a large snapshot takes a while).
   * @throws NotLeaderError, ProposalDroppedError, TimeoutError (the member stays a learner).
   */
  async addMember(id: NodeId, addr: string, timeoutMs = 60_000, nodeId?: string): Promise<{ index: number }> {
    const deadline = this.clock.now() + timeoutMs;
    const existing = this.members().find((m) => m.id === id);
    if (existing?.voter) return { index: this.applied };
    const added = existing ? { index: this.applied } : await this.addLearner(id, addr, timeoutMs, nodeId);
    const target = Math.max(added.index, this.commit);
    for (;;) {
      if (this.closed) throw new NodeClosedError('addMember');
      if (this.lead !== this.id) throw new NotLeaderError(this.lead);
      const pr = this.raw.status().progress[id];
      if (pr && pr.match >= target) break;
      if (this.clock.now() > deadline) throw new TimeoutError(`addMember ${id} (catching up as a learner)`, timeoutMs);
      await this.pause(Math.min(this.tickMs, 50));
    }
    return this.promote(id, Math.max(1, deadline - this.clock.now()));
  }

  /** Removes a voter or learner. Removing the leader itself makes it step down once applied. */
  removeMember(id: NodeId, timeoutMs?: number): Promise<{ index: number }> {
    return this.proposeConf({ type: 'removeNode', nodeId: id }, '', timeoutMs);
  }

  /**
   * Hands leadership to `to` (default: the most up-to-date other voter) with TimeoutNow (Raft
   * thesis §3.10). Resolves when this node sees `to` as leader.
   * @throws NotLeaderError, RangeError (no other voter), TimeoutError (default 5 s).
   */
  async transferLeadership(to?: NodeId, timeoutMs = 5_000): Promise<void> {
    if (this.lead !== this.id) throw new NotLeaderError(this.lead);
    const voters = this.membership.conf().voters;
    let target = to;
    if (!target) {
      const progress = this.raw.status().progress;
      let best = -1;
      for (const v of voters) {
        if (v === this.id) continue;
        const m = progress[v]?.match ?? 0;
        if (m > best) (best = m), (target = v);
      }
    }
    if (!target) throw new RangeError('transferLeadership: there is no other voter to hand leadership to; add one first');
    if (!voters.includes(target)) throw new RangeError(`transferLeadership: ${target} is not a voter; pass a voter id`);
    const dest = target;
    const done = new Promise<void>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.off('leader-change', on);
        reject(new TimeoutError(`transferLeadership to ${dest}`, timeoutMs));
      }, timeoutMs);
      const on = (lead: NodeId): void => {
        if (lead === dest) {
          this.clock.clearTimeout(timer);
          this.off('leader-change', on);
          resolve();
        }
      };
      this.on('leader-change', on);
    });
    this.raw.transferLeader(dest);
    this.wake();
    return done;
  }

  /**
   * Takes a snapshot of the applier now (instead of waiting for `snapshotEvery` entries) and
   * compacts the log keeping `keepEntries`. Resolves with the snapshot's index.
   */
  snapshotNow(): Promise<number> {
    if (this.closed || this.failure) return Promise.reject(this.failure ?? new NodeClosedError('snapshotNow'));
    const p = this.snapshots.request();
    this.wake();
    return p;
  }

  /** Resolves once this node has applied at least `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.advancedApplied >= index || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.applyWaiters.push({ index, resolve }));
  }

  /** Stops ticking and the Ready loop, rejects pending calls, closes storage (and an owned transport). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.uncollect?.();
    this.uncollect = undefined;
    this.stopTicking();
    this.emit(STOPPED);
    this.wake();
    await this.loopDone.catch(() => {});
    await this.snapshots.running;
    this.failAll(new NodeClosedError('operation'));
    for (const w of this.applyWaiters) w.resolve();
    this.applyWaiters = [];
    if (this.transport) {
      if (this.ownsTransport) await this.transport.close();
      else this.transport.setHandler(idleHandler);
    }
    await this.storage.close();
  }

  // ------------------------------------------------------------------ internals

  /** Ticks the core every `tickMs` on the clock until {@link stopTicking}. */
  private startTicking(): void {
    const arm = (): void => {
      const h: TimerHandle = this.clock.setTimeout(() => {
        if (this.closed || this.ticker !== h) return;
        try {
          this.raw.tick();
        } catch (err) {
          // The core signals impossible situations by throwing; one must never end the daemon.
          this.log.error({ id: this.id, err: (err as Error).message }, 'raft: tick failed');
        }
        this.wake();
        if (this.ticker === h) arm();
      }, this.tickMs);
      this.ticker = h;
    };
    arm();
  }

  private stopTicking(): void {
    if (this.ticker) this.clock.clearTimeout(this.ticker);
    this.ticker = undefined;
  }

  /** Resolves after `ms` on the clock. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => void this.clock.setTimeout(resolve, ms));
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /**
   * Proposes one membership change and resolves once it is applied here. A change refused only
   * because an earlier one has not applied yet (a new leader's pending index, or a change in flight)
   * is proposed again every tick until `timeoutMs` (ms) passes, instead of failing the caller.
   */
  private async proposeConf(cc: ConfChange, addr: string, timeoutMs = this.defaultTimeoutMs, nodeId?: string): Promise<{ index: number }> {
    const deadline = this.clock.now() + timeoutMs;
    if (this.closed || this.failure) throw this.failure ?? new NodeClosedError('membership change');
    if (!cc.nodeId) throw new RangeError('membership change: node id is empty; pass the member id');
    if (cc.type !== 'removeNode' && !addr) {
      throw new RangeError(`membership change for ${cc.nodeId}: no address known; pass its host:port`);
    }
    if (cc.type !== 'removeNode' && this.membership.isRemoved(cc.nodeId)) {
      throw new RangeError(`membership change for ${cc.nodeId}: that Raft ID was removed from the group; a member that comes back joins under a fresh Raft ID`);
    }
    const seq = this.nextSeq();
    const ctx: { addr?: string; nodeId?: string; req: string } = { req: `${this.instance}:${seq}` };
    if (addr) ctx.addr = addr;
    if (nodeId) ctx.nodeId = nodeId;
    for (;;) {
      if (this.closed || this.failure) throw this.failure ?? new NodeClosedError('membership change');
      if (this.lead !== this.id) throw new NotLeaderError(this.lead);
      try {
        this.raw.proposeConfChange({ ...cc, context: JSON.stringify(ctx) });
        break;
      } catch (err) {
        if (!(err instanceof ProposalDroppedError && err.confPending) || this.clock.now() >= deadline) throw err;
      }
      await this.pause(Math.min(this.tickMs, 50));
    }
    if (addr) this.transport?.addPeer(cc.nodeId, addr);
    this.wake();
    return this.waiting.track(seq, `${cc.type} ${cc.nodeId}`, Math.max(1, deadline - this.clock.now()));
  }

  /**
   * Which peer messages this member takes (etcd `rafthttp` checks removed IDs the same way):
   * - a removed member's messages are refused, and the sender told (so it stops, rather than
   *   campaign or lead a configuration that no longer exists — the force-new-cluster case);
   * - a message addressed to another Raft ID is dropped: an earlier membership of this node listened
   *   at the same address, and a member that has not yet applied its removal still writes to it;
   * - everything else is taken, also from IDs outside this member's configuration: a member that
   *   has not yet applied the entry adding a new member must take that member's appends as leader,
   *   and grant it a vote (Raft thesis §4.2.3 — refusing would leave a majority of the current
   *   configuration unable to elect anyone while the lagging member cannot learn the change).
   *   Removed IDs never count: they are refused above.
   */
  private admit(m: Message): 'ok' | 'removed' | 'drop' {
    if (this.membership.isRemoved(m.from)) {
      this.logRefusal(m.from, 'raft: refused a message from a removed member and told it so');
      return 'removed';
    }
    if (m.to !== this.id) {
      this.logRefusal(`to:${m.to}`, 'raft: dropped messages addressed to another Raft ID (an earlier membership at this address)');
      return 'drop';
    }
    return 'ok';
  }

  private logRefusal(from: NodeId, msg: string): void {
    if (this.loggedRefusals.has(from)) return;
    this.loggedRefusals.add(from);
    this.log.warn({ id: this.id, from }, msg);
  }

  /**
   * This member is out of the group: it goes inert at once — no ticks (so no campaigns), no
   * messages taken, pending calls refused — so it can neither disturb the group nor lead the rest
   * of a configuration that no longer exists (its followers then campaign, reach a current member
   * and are told they were removed too). Says so once; the host closes the node.
   */
  private markRemoved(how: string): void {
    if (this.wasRemoved) return;
    this.wasRemoved = true;
    this.stopTicking();
    this.lead = '';
    this.role = 'follower';
    this.waiting.failAll(new MemberRemovedError('pending operation'));
    this.log.warn({ id: this.id, how }, 'raft: this member was removed from the Raft group');
    this.emit('removed');
  }

  private readonly handler: TransportHandler = {
    onMessage: (m) => {
      if (this.closed || this.wasRemoved) return;
      const verdict = this.admit(m);
      if (verdict === 'removed') return 'removed';
      if (verdict === 'drop') return;
      try {
        this.raw.step(m);
      } catch (err) {
        this.log.debug({ id: this.id, type: m.type, from: m.from, err: (err as Error).message }, 'raft: step failed');
      }
      this.wake();
      return;
    },
    onUnreachable: (peer) => {
      if (this.closed) return;
      this.raw.reportUnreachable(peer);
    },
    onSnapshotStatus: (peer, ok) => {
      if (this.closed) return;
      this.raw.reportSnapshot(peer, ok);
      this.wake();
    },
    onRemoved: (peer) => {
      if (this.closed) return;
      this.markRemoved(`member ${peer} refused our messages`);
    },
  };

  private wake(): void {
    const f = this.wakeFn;
    if (f) {
      this.wakeFn = undefined;
      f();
    }
  }

  private async run(): Promise<void> {
    while (!this.closed && !this.failure) {
      if (this.snapshots.hasRequests && !this.snapshots.running) {
        this.snapshots.serveRequests(this.applied, () => this.captureMembership(), () => this.failure);
      }
      if (!this.raw.hasReady()) {
        await new Promise<void>((resolve) => (this.wakeFn = resolve));
        continue;
      }
      const rd = this.raw.ready();
      try {
        await this.handleReady(rd);
      } catch (err) {
        this.fatal(err as Error);
        return;
      }
      this.raw.advance();
      this.advancedApplied = this.applied;
      if (this.applyWaiters.length > 0) {
        // After advance(): the core now counts these entries as applied (it may campaign).
        const still: typeof this.applyWaiters = [];
        for (const w of this.applyWaiters) (this.advancedApplied >= w.index ? w.resolve() : still.push(w));
        this.applyWaiters = still;
      }
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const prevLead = this.lead;
    const wasLeader = this.role === 'leader';
    if (rd.softState) {
      this.lead = rd.softState.lead;
      this.role = rd.softState.role;
    }
    if (rd.hardState) {
      this.curTerm = rd.hardState.term;
      this.commit = rd.hardState.commit;
    }
    // A leader whose term and vote are already durable may send its messages (MsgApp,
    // heartbeats) while it writes its own log (Raft thesis §10.2.1): nothing that depends on the
    // new entries being durable here — commit index, applied entries, client acks — leaves this
    // process before the write completes, because the next Ready is only taken after it.
    const hs = rd.hardState;
    const sendEarly =
      this.role === 'leader' && !rd.snapshot && (!hs || (hs.term === this.durableTerm && hs.vote === this.durableVote));
    if (sendEarly && rd.messages.length > 0) this.transport?.send(rd.messages);
    // A snapshot from the leader replaces the log: let a local snapshot write finish first.
    if (rd.snapshot && this.snapshots.running) await this.snapshots.running;
    const saving = this.storage.save(hs, rd.entries, rd.snapshot, rd.mustSync);
    // Committed entries already in the durable log are applied while the new entries are being
    // written (they are on a quorum's disks and ours); the rest wait for the write.
    let next = 0;
    if (!rd.snapshot) {
      const durableLast = this.storage.lastIndex();
      const firstNew = rd.entries.length > 0 ? rd.entries[0]!.index : Infinity;
      while (next < rd.committedEntries.length) {
        const e = rd.committedEntries[next]!;
        if (e.index > durableLast || e.index >= firstNew) break;
        this.applyEntry(e);
        next++;
      }
    }
    await saving;
    if (hs) {
      this.durableTerm = hs.term;
      this.durableVote = hs.vote;
    }
    if (this.closed) return;
    if (!sendEarly && rd.messages.length > 0) this.transport?.send(rd.messages);
    if (rd.snapshot && rd.snapshot.metadata.index > this.applied) this.restoreSnapshot(rd.snapshot, true);
    for (; next < rd.committedEntries.length; next++) this.applyEntry(rd.committedEntries[next]!);
    for (const rs of rd.readStates) this.waiting.onReadState(rs, this.instance);
    this.waiting.settleReads(this.applied);
    if (this.lead !== prevLead) {
      if (wasLeader && this.lead !== this.id) this.waiting.failProposals(new NotLeaderError(this.lead));
      // ReadIndex requests still waiting for confirmation were addressed to the old leader.
      this.waiting.failUnconfirmedReads(new NotLeaderError(this.lead));
      this.log.info({ id: this.id, leader: this.lead, term: this.curTerm }, 'raft: leader changed');
      if (this.lead) this.metrics.leaderChanges.inc();
      // A new local leader is announced once it applied an entry of its own term (its no-op), so
      // everything committed before is applied: leader-only components then see current state.
      this.announceLeader = this.lead === this.id;
      if (!this.announceLeader) this.emit('leader-change', this.lead, false);
    } else if (wasLeader && this.role !== 'leader') {
      this.waiting.failProposals(new NotLeaderError(this.lead));
    }
    if (this.announceLeader && this.role === 'leader' && this.lastAppliedTerm === this.curTerm) {
      this.announceLeader = false;
      this.emit('leader-change', this.id, true);
    }
    if (this.snapshots.due(this.applied, this.snapshotEvery)) {
      const c = this.captureMembership();
      this.snapshots.start(this.applied, c.conf, c.header);
    }
  }

  /** The membership to store with a snapshot taken at the applied index now. */
  private captureMembership() {
    return { conf: this.membership.conf(), header: this.membership.header(this.id, this.transport?.address(), (id) => this.peerAddr(id)) };
  }

  private restoreSnapshot(snap: Snapshot, fromLeader: boolean): void {
    const { header, state } = unwrapSnapshot(snap.data);
    this.membership.restore(snap.metadata.confState, header);
    for (const [id, addr] of Object.entries(header.peers)) this.transport?.addPeer(id, addr);
    if (snap.metadata.index > 0) this.applier.restore(state, snap.metadata.index);
    this.applied = snap.metadata.index;
    this.advancedApplied = Math.max(this.advancedApplied, snap.metadata.index);
    this.snapshots.index = snap.metadata.index;
    if (fromLeader) {
      this.metrics.snapshots.inc({ source: 'leader' });
      this.metrics.snapshotBytes.set(snap.data.byteLength);
      this.log.info({ id: this.id, index: snap.metadata.index, bytes: snap.data.byteLength }, 'raft: installed snapshot from leader');
    }
    if (snap.metadata.index > 0 && this.membership.isRemoved(this.id)) this.markRemoved('a snapshot lists this member as removed');
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.applied) return;
    this.applied = e.index;
    this.lastAppliedTerm = e.term;
    if (e.type === EntryType.ConfChange) {
      let cc: ConfChange;
      try {
        cc = decodeConfChange(e.data);
      } catch (err) {
        this.log.error({ id: this.id, index: e.index, err: (err as Error).message }, 'raft: undecodable conf change entry skipped');
        return;
      }
      const ctx = this.membership.apply(cc, this.raw.applyConfChange(cc));
      if (cc.type === 'removeNode') {
        if (cc.nodeId !== this.id) this.transport?.removePeer(cc.nodeId);
      } else if (ctx.addr) {
        this.transport?.addPeer(cc.nodeId, ctx.addr);
      }
      if (ctx.req) {
        const [inst, s] = ctx.req.split(':');
        if (Number(inst) === this.instance) this.waiting.settle(Number(s), e.index);
      }
      if (cc.type === 'removeNode' && cc.nodeId === this.id) this.markRemoved(`applied its removal at index ${e.index}`);
      return;
    }
    if (e.data.byteLength === 0) return; // leader no-op
    const p = parseProposal(e.data);
    if (!p) {
      this.log.error({ id: this.id, index: e.index }, 'raft: entry without proposal header skipped');
      return;
    }
    const mine = p.instance === this.instance;
    try {
      this.applier.apply({ index: e.index, term: e.term, data: p.payload });
    } catch (err) {
      if (mine) this.waiting.settle(p.seq, e.index, err as Error);
      else this.log.warn({ id: this.id, index: e.index, err: (err as Error).message }, 'raft: applier rejected entry');
      return;
    }
    if (mine) this.waiting.settle(p.seq, e.index);
  }

  private failAll(err: Error): void {
    this.waiting.failAll(err);
    this.snapshots.failRequests(err);
  }

  private fatal(err: Error): void {
    this.failure = err;
    this.log.error({ id: this.id, err: err.message }, 'raft: fatal error, node stopped');
    this.stopTicking();
    this.failAll(err);
    for (const w of this.applyWaiters) w.resolve();
    this.applyWaiters = [];
    this.emit(STOPPED);
    this.wake();
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

const idleHandler: TransportHandler = { onMessage() {}, onUnreachable() {}, onSnapshotStatus() {} };

function validate(o: RaftNodeOptions): void {
  if (typeof o.id !== 'string' || o.id === '') throw new RangeError(`RaftNode: id ${JSON.stringify(o.id)} is invalid; pass a non-empty member id`);
  if (!o.dataDir) throw new RangeError('RaftNode: dataDir is empty; pass a directory for durable state');
  if (!o.applier) throw new RangeError('RaftNode: applier is missing; pass {apply, snapshot, restore}');
  const pos = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw new RangeError(`RaftNode: ${name} = ${v} is invalid; pass a positive integer`);
  };
  pos('tickMs', o.tickMs);
  pos('electionTick', o.electionTick);
  pos('heartbeatTick', o.heartbeatTick);
  pos('snapshotEvery', o.snapshotEvery);
  pos('maxProposalBytes', o.maxProposalBytes);
  pos('defaultTimeoutMs', o.defaultTimeoutMs);
  if (o.keepEntries !== undefined && (!Number.isInteger(o.keepEntries) || o.keepEntries < 0)) {
    throw new RangeError(`RaftNode: keepEntries = ${o.keepEntries} is invalid; pass a non-negative integer`);
  }
  if (o.bootstrap && o.join) throw new RangeError('RaftNode: pass either bootstrap (new cluster) or join (existing cluster), not both');
  if (o.transport && o.listen) throw new RangeError('RaftNode: pass either transport or listen, not both');
}

export { ProposalDroppedError, NotLeaderError };
