/**
 * `RawNode`: the public, synchronous face of the Raft core (etcd-io/raft `rawnode.go`). It does
 * no I/O. The host drives it:
 *
 * ```ts
 * const node = new RawNode({ id: 'a', random: mulberry32(seed) }, storage);
 * setInterval(() => node.tick(), 100);          // logical clock: one tick per 100 ms
 * onMessage((m) => node.step(m));               // messages from peers
 * while (node.hasReady()) {
 *   const rd = node.ready();
 *   await persist(rd.hardState, rd.entries, rd.snapshot);   // fsync if rd.mustSync
 *   send(rd.messages);                                       // only after persisting
 *   applySnapshot(rd.snapshot); apply(rd.committedEntries);  // conf changes: applyConfChange
 *   node.advance();
 * }
 * ```
 *
 * See README.md for the full contract.
 */
import type { Config } from './config.js';
import { encodeConfChange, validateConfChange } from './confchange.js';
import { ProposalDroppedError, ReadyContractError } from './errors.js';
import { Raft } from './raft.js';
import type { ProgressState } from './tracker/progress.js';
import type { ConfChange, ConfState, HardState, Message, NodeId, Ready, SoftState, StateRole, Storage } from './types.js';
import { EntryType, MessageType } from './types.js';
import { hardStateEqual, isEmptyHardState, newMessage, payloadSize } from './util.js';

/** Leader's view of one peer, in {@link Status}. */
export interface PeerProgress {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  isLearner: boolean;
  /** MsgApp messages in flight (replicate state). */
  inflight: number;
  /** Snapshot index being sent (snapshot state), 0 otherwise. */
  pendingSnapshot: number;
}

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  /** Known leader, `''` if none. */
  lead: NodeId;
  role: StateRole;
  commit: number;
  applied: number;
  lastIndex: number;
  /** Ongoing leadership transfer target, `''` if none. */
  leadTransferee: NodeId;
  config: ConfState;
  /** Per-peer replication progress; only on the leader (empty elsewhere). */
  progress: Record<NodeId, PeerProgress>;
}

/** Whether the host must fsync before sending (etcd `MustSync`): new entries, or a term/vote change. */
export function mustSync(st: HardState, prev: HardState, entries: number): boolean {
  return entries !== 0 || st.vote !== prev.vote || st.term !== prev.term;
}

export class RawNode {
  /** The state machine; exposed for tests and diagnostics, not a stable API. */
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** What the outstanding Ready handed out, settled by advance(). */
  private pending:
    | { lastEntry?: { index: number; term: number }; snapIndex?: number; appliedTo?: number; appliedSize: number }
    | undefined;

  /**
   * Creates a node from `storage` (which holds its persisted hard state, snapshot and log). For a
   * new cluster, give every founding member a MemoryStorage with the same initial ConfState; a
   * joining node starts with an empty one. Throws RangeError on invalid config.
   */
  constructor(config: Config, storage: Storage) {
    this.raft = new Raft(config, storage);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** Advances the logical clock by one tick (the host calls it every tick interval, e.g. 100 ms). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (a pre-vote first when enabled). */
  campaign(): void {
    this.raft.step(newMessage(MessageType.Hup, { from: this.raft.id }));
  }

  /**
   * Proposes `data` for the log. On the leader it is appended; on a follower it is forwarded to
   * the leader (it may still be lost — watch for it in committed entries). Throws
   * ProposalDroppedError when there is no leader, a transfer is in progress, or the uncommitted
   * budget is exhausted; NotLeaderError when forwarding is disabled.
   */
  propose(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw new TypeError('raft propose: data must be a Uint8Array; encode the command first');
    this.raft.step(
      newMessage(MessageType.Prop, {
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
    );
  }

  /**
   * Proposes a membership change. It takes effect when its entry is applied and the host calls
   * {@link applyConfChange}. The leader throws ProposalDroppedError while another change is
   * pending or before it has committed an entry in its term.
   */
  proposeConfChange(cc: ConfChange): void {
    validateConfChange(cc);
    this.raft.step(
      newMessage(MessageType.Prop, {
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }],
      }),
    );
  }

  /**
   * Applies a committed conf change; call it when applying an `EntryType.ConfChange` entry
   * (decode it with `decodeConfChange`). Returns the configuration now in effect, which the host
   * stores with its next snapshot.
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Steps a message received from a peer. Local-only message types are refused. Proposals
   * forwarded by peers that this node cannot accept are dropped silently (the proposer retries).
   */
  step(m: Message): void {
    if (isLocalMsg(m.type)) {
      throw new RangeError(`raft: step() got local message type ${m.type}; use the RawNode method instead`);
    }
    // Only forwarded proposals and read requests travel without a term; anything else with
    // term 0 would be mistaken for a local message.
    if (m.term === 0 && m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) return;
    if (!this.raft.trk.progress.has(m.from) && isResponseMsg(m.type)) {
      return; // response from a node no longer in the configuration
    }
    try {
      this.raft.step(m);
    } catch (e) {
      if (e instanceof ProposalDroppedError && m.from !== this.raft.id) return;
      throw e;
    }
  }

  /** Asks the leader to hand leadership to `transferee` (must be an up-to-date voter; Raft thesis §3.10). */
  transferLeader(transferee: NodeId): void {
    if (typeof transferee !== 'string' || transferee === '') {
      throw new RangeError(`raft transferLeader: transferee ${JSON.stringify(transferee)} is invalid; pass a voter id`);
    }
    this.raft.step(newMessage(MessageType.TransferLeader, { from: transferee }));
  }

  /**
   * Requests a linearizable read point (Raft thesis §6.4). When confirmed, a `ReadState` with
   * this `ctx` and a commit `index` appears in a later Ready; the read is served once the host
   * has applied through `index`. `ctx` must be unique per request (e.g. a counter). Throws
   * ProposalDroppedError when no leader is known.
   */
  readIndex(ctx: Uint8Array): void {
    if (!(ctx instanceof Uint8Array) || ctx.byteLength === 0) {
      throw new RangeError('raft readIndex: ctx must be a non-empty Uint8Array unique to this request (e.g. an encoded counter)');
    }
    this.raft.step(newMessage(MessageType.ReadIndex, { from: this.raft.id, context: ctx }));
  }

  /** The transport could not deliver to `id`: the leader stops streaming to it and probes. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage(MessageType.Unreachable, { from: id }));
  }

  /** Outcome of sending a MsgSnap to `id` (the host must report it, or `id` stays paused). */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(newMessage(MessageType.SnapStatus, { from: id, reject: !ok }));
  }

  /**
   * Whether {@link ready} has work. On the leader this first sends the MsgApps for proposals
   * made since the last Ready (proposals are batched until the host asks).
   */
  hasReady(): boolean {
    const r = this.raft;
    r.flushAppends();
    const ss = r.softState();
    if (ss.lead !== this.prevSoft.lead || ss.role !== this.prevSoft.role) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHard)) return true;
    if (r.raftLog.unstable.snapshot) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.raftLog.unstable.entries.length > 0) return true;
    if (this.pending === undefined && r.raftLog.hasNextCommittedEnts()) return true;
    return false;
  }

  /**
   * The batch of work for the host (see {@link Ready} for the order). Call {@link advance} after
   * processing it and before the next `ready()`; otherwise throws ReadyContractError.
   */
  ready(): Ready {
    if (this.pending !== undefined) {
      throw new ReadyContractError('raft: ready() called again before advance(); process the Ready, then call advance()');
    }
    const r = this.raft;
    r.flushAppends();
    const entries = r.raftLog.unstableEntries();
    const committedEntries = r.raftLog.nextCommittedEnts();
    const rd: Ready = {
      readStates: r.readStates,
      entries,
      committedEntries,
      messages: r.msgs,
      mustSync: false,
    };
    const ss = r.softState();
    if (ss.lead !== this.prevSoft.lead || ss.role !== this.prevSoft.role) {
      rd.softState = ss;
      this.prevSoft = ss;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHard)) {
      rd.hardState = hs;
    }
    const snap = r.raftLog.unstable.snapshot;
    if (snap) rd.snapshot = snap;
    rd.mustSync = mustSync(hs, this.prevHard, entries.length);
    this.prevHard = hs;
    r.msgs = [];
    r.readStates = [];
    const last = entries[entries.length - 1];
    const lastCommitted = committedEntries[committedEntries.length - 1];
    this.pending = {
      ...(last ? { lastEntry: { index: last.index, term: last.term } } : {}),
      ...(snap ? { snapIndex: snap.metadata.index } : {}),
      ...(lastCommitted ? { appliedTo: lastCommitted.index } : {}),
      appliedSize: payloadSize(committedEntries),
    };
    return rd;
  }

  /**
   * Acknowledges the last Ready: its entries, hard state and snapshot are persisted, its
   * messages sent, its snapshot and committed entries applied.
   */
  advance(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    const log = this.raft.raftLog;
    if (p.snapIndex !== undefined) {
      log.stableSnapTo(p.snapIndex);
      if (p.snapIndex > log.applied) log.applied = p.snapIndex;
    }
    if (p.lastEntry) log.stableTo(p.lastEntry.index, p.lastEntry.term);
    if (p.appliedTo !== undefined) {
      log.appliedTo(p.appliedTo);
      this.raft.reduceUncommittedSize(p.appliedSize);
    }
  }

  status(): Status {
    const r = this.raft;
    const progress: Record<NodeId, PeerProgress> = {};
    if (r.state === 'leader') {
      for (const [id, pr] of r.trk.progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
          inflight: pr.inflights.count,
          pendingSnapshot: pr.pendingSnapshot,
        };
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      lead: r.lead,
      role: r.state,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
      leadTransferee: r.leadTransferee,
      config: r.trk.confState(),
      progress,
    };
  }
}

const LOCAL_TYPES = new Set<MessageType>([
  MessageType.Hup,
  MessageType.Beat,
  MessageType.Unreachable,
  MessageType.SnapStatus,
  MessageType.CheckQuorum,
]);

function isLocalMsg(t: MessageType): boolean {
  return LOCAL_TYPES.has(t);
}

function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.PreVoteResp
  );
}
