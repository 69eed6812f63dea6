/**
 * The Raft state machine (Raft paper; Ongaro's thesis; behaviour modelled on etcd-io/raft
 * `raft.go`). Pure: it consumes messages and ticks, and accumulates outgoing messages, log
 * entries and state changes for {@link RawNode} to hand to the host as a `Ready`.
 *
 * Role behaviour is a function value (`stepFn`, `tickFn`) swapped by the `become*` transitions.
 */
import { applyToConfig, configFromConfState, decodeConfChange, validateConfChange } from './confchange.js';
import { resolveConfig, type Config, type Logger, type ResolvedConfig } from './config.js';
import { ConfChangeError, NotLeaderError, ProposalDroppedError, SnapshotTemporarilyUnavailableError, CompactedError, UnavailableError } from './errors.js';
import { RaftLog } from './log.js';
import { majorityCommittedIndex, majorityVoteResult, type VoteResult } from './quorum.js';
import { ReadOnly } from './read_only.js';
import { ProgressTracker } from './tracker/tracker.js';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, ReadState, Snapshot, SoftState, StateRole, Storage } from './types.js';
import { EntryType, MessageType, NONE } from './types.js';
import { entriesSize, isEmptyHardState, newMessage, payloadSize } from './util.js';

/** Marker in MsgVote.context for a campaign triggered by leadership transfer (bypasses leases). */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');

type CampaignType = 'preElection' | 'election' | 'transfer';

function isTransferCtx(ctx: Uint8Array | undefined): boolean {
  if (!ctx || ctx.length !== CAMPAIGN_TRANSFER.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

function voteRespType(t: MessageType): MessageType {
  return t === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  state: StateRole = 'follower';
  /** Learners replicate but never vote or campaign. */
  isLearner = false;
  msgs: Message[] = [];
  lead: NodeId = NONE;
  /** Target of an ongoing leadership transfer, `''` if none. */
  leadTransferee: NodeId = NONE;
  /**
   * Index of the latest conf-change entry the leader appended (or the last index when it became
   * leader). A new conf change is refused while `applied` is below it.
   */
  pendingConfIndex = 0;
  /** Payload bytes of entries appended by this leader and not yet committed/applied. */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  /** Ticks since this node started (its logical clock; dates leader leases). */
  ticks = 0;
  /** This leader started a leadership transfer in its current term (disables the lease). */
  transferredThisTerm = false;
  randomizedElectionTimeout = 0;
  /** Proposals were appended but not yet broadcast (see flushAppends). */
  appendsPending = false;
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];

  readonly cfg: ResolvedConfig;
  readonly logger: Logger;
  private stepFn: (m: Message) => void;
  private tickFn: () => void;

  constructor(config: Config, storage: Storage) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.logger = this.cfg.logger;
    this.raftLog = new RaftLog(storage, this.cfg.maxCommittedSizePerReady);
    this.trk = new ProgressTracker(this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
    this.readOnly = new ReadOnly(this.cfg.readOnlyOption);
    const { hardState, confState } = storage.initialState();
    this.applyConfState(confState);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    // Restart point: the host's applied index, by default the snapshot it restored its state
    // machine from (which may lie past firstIndex-1 when entries are kept behind it).
    let applied = this.cfg.applied;
    if (applied === 0) {
      try {
        applied = storage.snapshot().metadata.index;
      } catch (e) {
        if (!(e instanceof SnapshotTemporarilyUnavailableError)) throw e;
      }
    }
    if (applied > this.raftLog.applied) this.raftLog.appliedTo(Math.min(applied, this.raftLog.committed));
    this.stepFn = this.stepFollower;
    this.tickFn = this.tickElection;
    this.becomeFollower(this.term, NONE);
    this.logger.info('raft node started', {
      id: this.id,
      term: this.term,
      commit: this.raftLog.committed,
      applied: this.raftLog.applied,
      lastIndex: this.raftLog.lastIndex(),
      voters: [...this.trk.config.voters],
      learners: [...this.trk.config.learners],
    });
  }

  // ---------------------------------------------------------------- state

  softState(): SoftState {
    return { lead: this.lead, role: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new Error(
        `raft: stored commit index ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]; the storage is inconsistent`,
      );
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** Whether this node may campaign: it is a voter in the current configuration. */
  promotable(): boolean {
    return this.trk.config.voters.has(this.id);
  }

  // ---------------------------------------------------------------- sending

  private send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      if (m.term === 0) throw new Error(`raft: ${m.type} must carry a term`);
    } else if (m.type === MessageType.VoteResp || m.type === MessageType.PreVoteResp) {
      // Term set by the caller: the request's term when granting, ours when rejecting (a
      // rejection from a node still at term 0 is dropped by the receiver; harmless).
    } else {
      // Proposals and read requests forwarded to the leader travel as local messages (term 0).
      m.term = m.type === MessageType.Prop || m.type === MessageType.ReadIndex ? 0 : this.term;
    }
    this.msgs.push(m);
  }

  /**
   * Sends a MsgApp (or a MsgSnap when the entries are compacted) to `to` if its progress allows.
   * With `sendIfEmpty`, an empty MsgApp is sent too (it carries the commit index). Returns
   * whether a message was sent.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      ents = this.raftLog.entries(pr.next, this.cfg.maxSizePerMsg);
    } catch (e) {
      if (!(e instanceof CompactedError || e instanceof UnavailableError)) throw e;
      return this.maybeSendSnapshot(to);
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const bytes = entriesSize(ents);
    this.send(newMessage(MessageType.App, { to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed }));
    pr.sentEntries(ents.length, bytes, prevIndex + ents.length);
    return true;
  }

  private maybeSendSnapshot(to: NodeId): boolean {
    const pr = this.trk.progress.get(to)!;
    if (!pr.recentActive) {
      this.logger.debug('raft: not sending snapshot to inactive follower', { to });
      return false;
    }
    let snap: Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) {
        this.logger.debug('raft: snapshot temporarily unavailable', { to });
        return false;
      }
      throw e;
    }
    if (snap.metadata.index === 0) {
      // The follower needs entries this log does not have and there is no snapshot to send instead:
      // it answered from a log that is not ours (a member of another configuration, e.g. one formed
      // by force-new-cluster). etcd panics here; one bad peer must not end the host, so log it and
      // keep probing: the peer is removed or catches up through a leader that can serve it.
      this.logger.error('raft: need a snapshot to send but storage has none; not sending', { to, next: pr.next, match: pr.match });
      return false;
    }
    this.logger.info('raft: sending snapshot', { to, index: snap.metadata.index, term: snap.metadata.term, match: pr.match });
    pr.becomeSnapshot(snap.metadata.index);
    this.send(newMessage(MessageType.Snap, { to, snapshot: snap }));
    return true;
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    // Never advance a follower's commit past what it is known to hold (it may not have it yet).
    const commit = Math.min(this.trk.progress.get(to)?.match ?? 0, this.raftLog.committed);
    // `index` carries our tick count; the follower echoes it, which dates its lease (see
    // leaseValid).
    const m = newMessage(MessageType.Heartbeat, { to, commit, index: this.ticks });
    if (ctx) m.context = ctx;
    this.send(m);
  }

  bcastAppend(): void {
    for (const id of this.trk.ids()) if (id !== this.id) this.sendAppend(id);
  }

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    for (const id of this.trk.ids()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ---------------------------------------------------------------- log

  /** Leader: advance the commit index to what a quorum acknowledged (current term only). */
  maybeCommit(): boolean {
    const mci = this.trk.committed();
    if (mci === Infinity) return false;
    return this.raftLog.maybeCommit(mci, this.term);
  }

  /** Leader: appends proposals to its own log. Returns false if the uncommitted budget is exceeded. */
  private appendEntry(es: Entry[]): boolean {
    let li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i]!.term = this.term;
      es[i]!.index = li + 1 + i;
    }
    if (!this.increaseUncommittedSize(es)) {
      this.logger.warn('raft: dropping proposal; uncommitted entries exceed maxUncommittedEntriesSize', {
        uncommittedSize: this.uncommittedSize,
        limit: this.cfg.maxUncommittedEntriesSize,
      });
      return false;
    }
    li = this.raftLog.append(es);
    // The leader's own write happens in parallel with replication (Raft thesis §10.2.1); it is
    // persisted before anything from this Ready is applied or sent.
    this.trk.progress.get(this.id)?.maybeUpdate(li);
    this.maybeCommit();
    return true;
  }

  private increaseUncommittedSize(es: Entry[]): boolean {
    const s = payloadSize(es);
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.cfg.maxUncommittedEntriesSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  /** Called as committed entries are handed to the host. */
  reduceUncommittedSize(s: number): void {
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  // ---------------------------------------------------------------- role transitions

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      const fresh = this.trk.initProgress(id, last + 1, pr.isLearner);
      if (id === this.id) fresh.match = last;
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.transferredThisTerm = false;
    this.readOnly = new ReadOnly(this.cfg.readOnlyOption);
    this.pendingReadIndexMessages = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.stepFn = this.stepFollower;
    this.reset(term);
    this.tickFn = this.tickElection;
    this.lead = lead;
    this.state = 'follower';
    this.logger.debug('raft: became follower', { id: this.id, term, lead });
  }

  private becomeCandidate(): void {
    if (this.state === 'leader') throw new Error('raft: invalid transition leader -> candidate');
    this.stepFn = this.stepCandidate;
    this.reset(this.term + 1);
    this.tickFn = this.tickElection;
    this.vote = this.id;
    this.state = 'candidate';
    this.logger.debug('raft: became candidate', { id: this.id, term: this.term });
  }

  private becomePreCandidate(): void {
    if (this.state === 'leader') throw new Error('raft: invalid transition leader -> pre-candidate');
    // Pre-vote changes neither term nor vote (Raft thesis §9.6).
    this.stepFn = this.stepCandidate;
    this.trk.resetVotes();
    this.tickFn = this.tickElection;
    this.lead = NONE;
    this.state = 'precandidate';
    this.logger.debug('raft: became pre-candidate', { id: this.id, term: this.term });
  }

  private becomeLeader(): void {
    if (this.state === 'follower') throw new Error('raft: invalid transition follower -> leader');
    this.stepFn = this.stepLeader;
    this.reset(this.term);
    this.tickFn = this.tickHeartbeat;
    this.lead = this.id;
    this.state = 'leader';
    const self = this.trk.progress.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Check-quorum grace: everyone counts as heard from at election time.
    for (const pr of this.trk.progress.values()) pr.lastActiveTick = this.ticks;
    // Leader no-op (Raft paper §8, thesis §6.4): commits everything before it and lets
    // ReadIndex start.
    const empty: Entry = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
    if (!this.appendEntry([empty])) throw new Error('raft: empty entry was dropped');
    // Treat everything up to the no-op as a possibly pending conf change: no new change until
    // this leader has committed (and the host applied) an entry of its own term — the fix for
    // single-server changes across leader changes (Ongaro, raft-dev 2015).
    this.pendingConfIndex = this.raftLog.lastIndex();
    this.logger.info('raft: became leader', { id: this.id, term: this.term });
  }

  // ---------------------------------------------------------------- timers

  tick(): void {
    this.ticks++;
    this.tickFn();
  }

  /**
   * Leader lease (thesis §6.4.1), for `readOnlyOption: 'lease'`. A follower that acknowledged a
   * heartbeat we sent at tick T ignores vote requests until it has counted electionTick of its
   * own ticks after receiving it, so no other leader can exist before (our) tick
   * T + electionTick - 1. We claim one tick less again as a margin for clock-rate drift, and
   * need a quorum of such acknowledgements. No lease once a transfer started (its votes
   * bypass leases). Check-quorum's step-down alone is not enough: it runs once per election timeout
   * and can keep a deposed leader in place for almost two.
   */
  /** A quorum of voters (counting ourselves) answered within the last election timeout. */
  quorumRecentlyActive(): boolean {
    const quorumTick = majorityCommittedIndex(this.trk.config.voters, (id) =>
      id === this.id ? this.ticks : (this.trk.progress.get(id)?.lastActiveTick ?? -Infinity),
    );
    return quorumTick >= this.ticks - this.cfg.electionTick;
  }

  leaseValid(): boolean {
    // A MsgTimeoutNow of this term, even of an abandoned transfer, may still be in flight and
    // would let its target win votes inside our lease: no lease for the rest of the term.
    if (this.transferredThisTerm) return false;
    const quorumTick = majorityCommittedIndex(this.trk.config.voters, (id) =>
      id === this.id ? this.ticks : (this.trk.progress.get(id)?.leaseTick ?? -Infinity),
    );
    return this.ticks - quorumTick <= this.cfg.electionTick - 3;
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private resetRandomizedElectionTimeout(): void {
    const et = this.cfg.electionTick;
    this.randomizedElectionTimeout = et + Math.floor(this.cfg.random() * et);
  }

  /** Followers and candidates: campaign when the randomized election timeout passes. */
  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage(MessageType.Hup, { from: this.id }));
    }
  }

  /**
   * Leader: heartbeats every heartbeatTick. With check-quorum, steps down as soon as no quorum
   * has been heard from for an election timeout (checked every tick, so a partitioned leader
   * lingers at most one election timeout, not the two of a once-per-timeout check).
   */
  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.cfg.checkQuorum && this.state === 'leader' && !this.quorumRecentlyActive()) {
      this.logger.warn('raft: stepping down; no quorum heard from within an election timeout', { id: this.id, term: this.term });
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) this.step(newMessage(MessageType.CheckQuorum, { from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === 'leader' && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== 'leader') return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.step(newMessage(MessageType.Beat, { from: this.id }));
    }
  }

  // ---------------------------------------------------------------- elections

  private hup(t: CampaignType): void {
    if (this.state === 'leader') {
      this.logger.debug('raft: ignoring MsgHup because already leader', { id: this.id });
      return;
    }
    if (!this.promotable()) {
      this.logger.warn('raft: not campaigning; this node is not a voter', { id: this.id });
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn('raft: not campaigning; committed conf changes are not yet applied', { id: this.id });
      return;
    }
    this.logger.info('raft: starting a new election', { id: this.id, term: this.term, type: t });
    this.campaign(t);
  }

  /** A node must apply committed conf changes before campaigning (it may not be a voter any more). */
  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    let lo = this.raftLog.applied + 1;
    const hi = this.raftLog.committed + 1;
    lo = Math.max(lo, this.raftLog.firstIndex());
    if (lo >= hi) return false;
    const ents = this.raftLog.slice(lo, hi, Infinity);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  private campaign(t: CampaignType): void {
    let voteMsg: MessageType;
    let term: number;
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      // Ask for votes for the next term without incrementing ours.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, voteRespType(voteMsg), true) === 'won') {
      // Single-voter cluster: won outright.
      if (t === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      const m = newMessage(voteMsg, { to: id, term, index: this.raftLog.lastIndex(), logTerm: this.raftLog.lastTerm() });
      if (t === 'transfer') m.context = CAMPAIGN_TRANSFER;
      this.send(m);
    }
  }

  private poll(id: NodeId, t: MessageType, granted: boolean): VoteResult {
    this.logger.debug('raft: vote', { id: this.id, from: id, type: t, granted, term: this.term });
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---------------------------------------------------------------- step

  /**
   * The single entry point for every message, local or remote. Applies the term rules (Raft
   * paper Figure 2 "all servers"; thesis §9.6 pre-vote, §6.2 check-quorum leases) and then the
   * role's step function. Throws ProposalDroppedError / NotLeaderError for local proposals that
   * cannot be accepted.
   */
  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isTransferCtx(m.context);
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTick;
        if (!force && inLease) {
          // We heard from a leader within the minimum election timeout: ignore, without
          // updating our term or granting (thesis §4.2.3 disruptive servers).
          this.logger.debug('raft: ignoring vote request within lease', { id: this.id, from: m.from, type: m.type, term: m.term });
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // The future term of a granted pre-vote: we bump the term when we win the pre-vote.
      } else {
        this.logger.debug('raft: received a message with a higher term', { id: this.id, from: m.from, type: m.type, term: m.term, ourTerm: this.term });
        if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
          this.becomeFollower(m.term, m.from);
        } else {
          this.becomeFollower(m.term, NONE);
        }
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader (e.g. partitioned, never saw our higher term because pre-vote/lease
        // suppressed it) learns the new term from this response and steps down.
        this.send(newMessage(MessageType.AppResp, { to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.send(newMessage(MessageType.PreVoteResp, { to: m.from, term: this.term, reject: true }));
      }
      // Otherwise ignore stale messages.
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.cfg.preVote ? 'preElection' : 'election');
        return;
      case MessageType.Vote:
      case MessageType.PreVote: {
        // We can vote for the same candidate again (duplicate request), for anyone if we have
        // not voted and know no leader this term, or pre-vote for any future term.
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          // Grant with the request's term so the (pre-)candidate counts it.
          this.send(newMessage(voteRespType(m.type), { to: m.from, term: m.term }));
          if (m.type === MessageType.Vote) {
            // Only a real vote resets the election timer (Students' Guide: not every request).
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(newMessage(voteRespType(m.type), { to: m.from, term: this.term, reject: true }));
        }
        return;
      }
      default:
        this.stepFn(m);
    }
  }

  // ---- leader

  private stepLeader = (m: Message): void => {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        if (!this.quorumRecentlyActive()) {
          this.logger.warn('raft: stepping down; a quorum is not active', { id: this.id, term: this.term });
          this.becomeFollower(this.term, NONE);
        }
        // Reset activity for the next round (the leader stays active).
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.Prop:
        this.stepLeaderProp(m);
        return;
      case MessageType.ReadIndex:
        if (this.trk.isSingleton()) {
          this.responseToReadIndexReq(m, this.raftLog.committed);
          return;
        }
        // Reads wait until this leader committed an entry of its term: before that its commit
        // index may lag the cluster's (thesis §6.4 step 1; etcd#7331).
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendMsgReadIndexResponse(m);
        return;
      default:
        break;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) {
      this.logger.debug('raft: no progress for sender', { id: this.id, from: m.from, type: m.type });
      return;
    }
    switch (m.type) {
      case MessageType.AppResp: {
        pr.recentActive = true;
        pr.lastActiveTick = this.ticks;
        if (m.reject) {
          this.logger.debug('raft: MsgApp rejected', { id: this.id, from: m.from, index: m.index, hint: m.rejectHint, hintTerm: m.logTerm });
          let nextProbeIdx = m.rejectHint;
          if (m.logTerm > 0) {
            // The follower's log has term m.logTerm at rejectHint. Skip every index where our
            // term is above that — they cannot match (fast backtracking).
            nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0];
          }
          if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe')) {
          if (pr.state === 'probe') {
            pr.becomeReplicate();
          } else if (pr.state === 'snapshot' && pr.match + 1 >= this.raftLog.firstIndex()) {
            // The follower caught up via the snapshot (or the log); resume streaming.
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === 'replicate') {
            pr.inflights.freeLE(m.index);
          }
          if (this.maybeCommit()) {
            this.releasePendingReadIndexMessages();
            this.bcastAppend();
          } else if (oldPaused) {
            this.sendAppend(m.from);
          }
          // Fill the window: stream what remains without waiting for the next proposal.
          while (this.maybeSendAppend(m.from, false)) {
            /* keep sending */
          }
          if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
            this.logger.info('raft: transferee caught up; sending MsgTimeoutNow', { id: this.id, to: m.from });
            this.sendTimeoutNow(m.from);
          }
        }
        return;
      }
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.lastActiveTick = this.ticks;
        pr.msgAppFlowPaused = false;
        // If every message that filled the window was lost, free one slot so a MsgApp goes
        // out; its rejection (a gap) sends the follower back to probe.
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex() || pr.state === 'probe') this.sendAppend(m.from);
        if (m.index > pr.leaseTick) pr.leaseTick = m.index;
        if (!m.context || m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks) return;
        const votes = new Map<NodeId, boolean>();
        for (const id of acks) votes.set(id, true);
        if (majorityVoteResult(this.trk.config.voters, votes) !== 'won') return;
        for (const rs of this.readOnly.advance(m.context)) this.responseToReadIndexReq(rs.req, rs.index);
        return;
      }
      case MessageType.SnapStatus:
        if (pr.state !== 'snapshot') return;
        if (m.reject) {
          // Failed: forget it and probe again (a new snapshot will be sent if still needed).
          pr.pendingSnapshot = 0;
        }
        pr.becomeProbe();
        // Wait for a heartbeat response (or the follower's MsgAppResp) before probing.
        pr.msgAppFlowPaused = true;
        return;
      case MessageType.Unreachable:
        // The transport failed: stop streaming optimistically, probe again.
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
      case MessageType.TransferLeader: {
        if (pr.isLearner) {
          this.logger.debug('raft: ignoring leadership transfer to a learner', { id: this.id, to: m.from });
          return;
        }
        const transferee = m.from;
        const last = this.leadTransferee;
        if (last !== NONE) {
          if (last === transferee) return; // already in progress
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return; // already leader
        // The transfer must finish within one election timeout.
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        this.transferredThisTerm = true;
        this.logger.info('raft: starting leadership transfer', { id: this.id, to: transferee });
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return;
      }
      default:
        return;
    }
  };

  private stepLeaderProp(m: Message): void {
    if (m.entries.length === 0) throw new Error('raft: MsgProp without entries');
    if (!this.trk.progress.has(this.id)) {
      throw new ProposalDroppedError('this node was removed from the configuration', NONE);
    }
    if (this.leadTransferee !== NONE) {
      throw new ProposalDroppedError(`leadership transfer to ${this.leadTransferee} is in progress`, this.leadTransferee);
    }
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      if (e.type !== EntryType.ConfChange) continue;
      let cc: ConfChange;
      try {
        cc = decodeConfChange(e.data);
      } catch (err) {
        throw new ProposalDroppedError(`malformed conf change: ${(err as Error).message}`, this.id);
      }
      if (this.pendingConfIndex > this.raftLog.applied) {
        throw new ProposalDroppedError(
          `a configuration change is pending (index ${this.pendingConfIndex}, applied ${this.raftLog.applied}); retry after it applies`,
          this.id,
          true,
        );
      }
      try {
        applyToConfig(this.trk.config, cc);
      } catch (err) {
        throw new ProposalDroppedError((err as Error).message, this.id);
      }
      this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
    }
    // Copy: the entries get their index and term here, and the message may be redelivered.
    const ents = m.entries.map((e) => ({ ...e }));
    if (!this.appendEntry(ents)) {
      throw new ProposalDroppedError('too many uncommitted entries (maxUncommittedEntriesSize)', this.id);
    }
    // Batching: proposals made before the host asks for the next Ready go out together, one
    // MsgApp per follower (RawNode calls flushAppends() from hasReady()/ready()).
    this.appendsPending = true;
  }

  /** Sends the MsgApps that proposals since the last Ready made necessary. */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.state !== 'leader') return;
    for (const id of this.trk.ids()) {
      if (id === this.id) continue;
      // Fill the window (one message per maxSizePerMsg bytes) until paused or caught up.
      while (this.maybeSendAppend(id, false)) {
        /* keep sending */
      }
    }
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTermOnOutOfBounds(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendMsgReadIndexResponse(m);
  }

  private sendMsgReadIndexResponse(m: Message): void {
    if (this.readOnly.option === 'lease' && this.leaseValid()) {
      this.responseToReadIndexReq(m, this.raftLog.committed);
    } else {
      // Safe mode, or a lease that cannot be vouched for: confirm with a heartbeat quorum.
      this.readOnly.addRequest(this.raftLog.committed, m);
      // The leader acknowledges its own request.
      this.readOnly.recvAck(this.id, m.context);
      this.bcastHeartbeatWithCtx(m.context);
    }
  }

  private responseToReadIndexReq(req: Message, readIndex: number): void {
    const ctx = req.context ?? new Uint8Array(0);
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: ctx });
      return;
    }
    this.send(newMessage(MessageType.ReadIndexResp, { to: req.from, index: readIndex, context: ctx }));
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(newMessage(MessageType.TimeoutNow, { to }));
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---- candidate / pre-candidate

  private stepCandidate = (m: Message): void => {
    const myVoteResp = this.state === 'precandidate' ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw new ProposalDroppedError('no leader (election in progress)');
      case MessageType.ReadIndex:
        throw new ProposalDroppedError('no leader (election in progress); cannot serve ReadIndex');
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        const res = this.poll(m.from, m.type, !m.reject);
        if (res === 'won') {
          if (this.state === 'precandidate') {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === 'lost') {
          // A rejection with our term (or higher, handled in step) ends this campaign.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case MessageType.TimeoutNow:
        this.logger.debug('raft: ignoring MsgTimeoutNow as a candidate', { id: this.id, from: m.from });
        return;
      default:
        return;
    }
  };

  // ---- follower

  private stepFollower = (m: Message): void => {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) throw new ProposalDroppedError('no leader');
        if (this.cfg.disableProposalForwarding) throw new NotLeaderError(this.lead);
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) {
          this.logger.info('raft: no leader; dropping leadership transfer request', { id: this.id });
          return;
        }
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.TimeoutNow:
        // Leadership transfer: campaign at once, skipping pre-vote and leases.
        this.logger.info('raft: received MsgTimeoutNow; campaigning', { id: this.id, from: m.from, term: this.term });
        this.hup('transfer');
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) throw new ProposalDroppedError('no leader; cannot serve ReadIndex');
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array(0) });
        return;
      default:
        return;
    }
  };

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Already committed here: tell the leader how far we are.
      this.send(newMessage(MessageType.AppResp, { to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(newMessage(MessageType.AppResp, { to: m.from, index: lastNew }));
      return;
    }
    // Reject, with a hint: the largest index ≤ m.index whose term is ≤ m.logTerm. Entries
    // between it and m.index cannot match the leader's (their terms are higher).
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const [idx, term] = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send(newMessage(MessageType.AppResp, { to: m.from, index: m.index, reject: true, rejectHint: idx, logTerm: term }));
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    const resp = newMessage(MessageType.HeartbeatResp, { to: m.from, index: m.index });
    if (m.context) resp.context = m.context;
    this.send(resp);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) throw new Error('raft: MsgSnap without a snapshot');
    if (this.restore(s)) {
      this.logger.info('raft: restored snapshot', { id: this.id, index: s.metadata.index, term: s.metadata.term });
      this.send(newMessage(MessageType.AppResp, { to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.send(newMessage(MessageType.AppResp, { to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs snapshot `s` unless it is stale or already covered by our log. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== 'follower') {
      // Should not happen (only a leader sends snapshots, and we became its follower).
      this.logger.warn('raft: non-follower received a snapshot; becoming follower', { id: this.id });
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the entries: just fast-forward the commit index.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.trk.progress.clear();
    this.applyConfState(s.metadata.confState);
    return true;
  }

  // ---------------------------------------------------------------- membership

  /** Rebuilds the tracker from `cs` (startup and snapshot install). */
  private applyConfState(cs: ConfState): void {
    const cfg = configFromConfState(cs);
    this.trk.config = cfg;
    this.trk.progress.clear();
    const next = this.raftLog.lastIndex() + 1;
    for (const id of cfg.voters) {
      const pr = this.trk.initProgress(id, next, false);
      if (id === this.id) pr.match = next - 1;
    }
    for (const id of cfg.learners) this.trk.initProgress(id, next, true);
    this.isLearner = cfg.learners.has(this.id);
  }

  /**
   * Applies a committed conf change (call when applying its entry). Returns the new ConfState.
   * The leader adjusts commit (quorum changed), aborts a transfer to a removed node, and steps
   * down if it removed itself.
   */
  applyConfChange(cc: ConfChange): ConfState {
    validateConfChange(cc);
    let cfg;
    try {
      cfg = applyToConfig(this.trk.config, cc);
    } catch (e) {
      if (e instanceof ConfChangeError) {
        this.logger.error('raft: ignoring invalid committed conf change', { cc, error: e.message });
        return this.trk.confState();
      }
      throw e;
    }
    this.trk.config = cfg;
    const next = this.raftLog.lastIndex() + 1;
    for (const id of [...this.trk.progress.keys()]) {
      if (!cfg.voters.has(id) && !cfg.learners.has(id)) this.trk.progress.delete(id);
    }
    for (const id of [...cfg.voters, ...cfg.learners]) {
      const pr = this.trk.progress.get(id);
      const learner = cfg.learners.has(id);
      if (pr) {
        pr.isLearner = learner;
      } else {
        // New member: probe from our last index; recentActive so a snapshot can be sent to it
        // right away if needed.
        const np = this.trk.initProgress(id, next, learner);
        np.recentActive = true;
        np.lastActiveTick = this.ticks;
        if (id === this.id) np.match = next - 1;
      }
    }
    this.isLearner = cfg.learners.has(this.id);
    const removedSelf = !this.trk.progress.has(this.id);
    if (this.state === 'leader') {
      if (removedSelf || this.isLearner) {
        this.logger.info('raft: leader left the voters; stepping down', { id: this.id });
        this.becomeFollower(this.term, NONE);
      } else {
        if (this.leadTransferee !== NONE && !cfg.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
        // The quorum changed: the commit index may advance (e.g. a slow voter was removed).
        if (this.maybeCommit()) this.bcastAppend();
        else for (const id of this.trk.ids()) if (id !== this.id) this.maybeSendAppend(id, false);
      }
    }
    return this.trk.confState();
  }
}
