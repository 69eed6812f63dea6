/**
 * Wire and storage types of the Raft core. Vocabulary follows the Raft paper and etcd-io/raft:
 * term, log index, commit index, AppendEntries (MsgApp), RequestVote (MsgVote), InstallSnapshot
 * (MsgSnap), TimeoutNow. IDs are non-empty strings; `''` means "none".
 *
 * This file is the contract between the pure core (`RawNode`) and its host (the replication driver
 * in `@shoal/replication`). Changing it changes both.
 */

export type NodeId = string;
export const NONE: NodeId = '';

export enum EntryType {
  Normal = 0,
  /** `data` is a JSON-encoded {@link ConfChange}. */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** Durable per-node state (Raft paper Figure 2, plus the commit index as etcd persists it). */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

export type ConfChangeType = 'addNode' | 'addLearner' | 'removeNode';

/** One-server-at-a-time membership change (Raft thesis §4.1). */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to the core: the host stores e.g. the peer's address here. */
  context?: string;
}

export enum MessageType {
  /** Local: start an election (or pre-election). */
  Hup = 'MsgHup',
  /** Local: leader heartbeat timer. */
  Beat = 'MsgBeat',
  /** Local or forwarded: client proposal. */
  Prop = 'MsgProp',
  App = 'MsgApp',
  AppResp = 'MsgAppResp',
  Vote = 'MsgVote',
  VoteResp = 'MsgVoteResp',
  PreVote = 'MsgPreVote',
  PreVoteResp = 'MsgPreVoteResp',
  Snap = 'MsgSnap',
  Heartbeat = 'MsgHeartbeat',
  HeartbeatResp = 'MsgHeartbeatResp',
  /** Local: the transport could not deliver to `from`. */
  Unreachable = 'MsgUnreachable',
  /** Local: outcome of sending a snapshot (`reject` = failure). */
  SnapStatus = 'MsgSnapStatus',
  /** Local: leader checks it still hears from a quorum. */
  CheckQuorum = 'MsgCheckQuorum',
  TransferLeader = 'MsgTransferLeader',
  TimeoutNow = 'MsgTimeoutNow',
  ReadIndex = 'MsgReadIndex',
  ReadIndexResp = 'MsgReadIndexResp',
}

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** Term of the entry at `index` (prevLogTerm for MsgApp; last log term for votes). */
  logTerm: number;
  /**
   * prevLogIndex for MsgApp; last log index for votes; acknowledged index for MsgAppResp; the
   * read index for MsgReadIndexResp; the leader's tick count for MsgHeartbeat, echoed in
   * MsgHeartbeatResp (lease bookkeeping).
   */
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  /** On a rejected MsgApp: the follower's hint for fast backtracking (its last index / conflict index). */
  rejectHint: number;
  /** Opaque context (ReadIndex request id, campaign-transfer marker). */
  context?: Uint8Array;
}

export type StateRole = 'follower' | 'candidate' | 'precandidate' | 'leader';

export interface SoftState {
  lead: NodeId;
  role: StateRole;
}

/** A linearizable-read result: reads are safe once the applied index reaches `index`. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/**
 * Work the host must do, in order: persist `entries`, `hardState` and `snapshot` (fsync when
 * `mustSync`), then send `messages`, then apply `snapshot` and `committedEntries`, then call
 * `RawNode.advance()`. (etcd-io/raft `Ready`; Raft thesis §10.2.1 on the leader's parallel writes.)
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  mustSync: boolean;
}

/** Read-only view of the durable log the core consults (etcd `Storage`). */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), capped at `maxSizeBytes` (always at least one). Throws CompactedError / UnavailableError. */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[];
  /** Term of entry `i`; throws CompactedError if i < firstIndex()-1, UnavailableError if i > lastIndex(). */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  snapshot(): Snapshot;
}
