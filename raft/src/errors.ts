/**
 * Errors thrown by the Raft core and its storage. Each carries a one-line message naming the
 * offending value and, where there is one, the fix.
 */
import type { NodeId } from './types.js';

/** Base class of every error the Raft core throws on purpose. */
export class RaftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A proposal (or ReadIndex request, or conf change) was not accepted: there is no known leader,
 * a leadership transfer is in progress, the leader's uncommitted-entries budget is exhausted, a
 * configuration change is already pending, or this node was removed. Retry later, ideally after
 * the leader hint in {@link RawNode.status} changes.
 */
export class ProposalDroppedError extends RaftError {
  constructor(
    readonly reason: string,
    /** The leader this node knows of, `''` if none. */
    readonly leader: NodeId = '',
    /**
     * true when a configuration change was refused only because an earlier one has not applied
     * yet (one change at a time, Raft thesis §4.1): the same proposal may succeed once it applies.
     */
    readonly confPending = false,
  ) {
    super(`raft proposal dropped: ${reason}`);
  }
}

/**
 * This node is not the leader and cannot forward (proposal forwarding disabled). `leader` is the
 * node it believes is leader (`''` if unknown): send the request there.
 */
export class NotLeaderError extends RaftError {
  constructor(readonly leader: NodeId) {
    super(leader ? `not the raft leader; the leader is ${leader}` : 'not the raft leader; no leader is known yet');
  }
}

/** The requested log index precedes the storage's first index: it was compacted into a snapshot. */
export class CompactedError extends RaftError {
  constructor(readonly index: number, readonly firstIndex: number) {
    super(`raft log index ${index} is compacted (first available index is ${firstIndex})`);
  }
}

/** The requested log index is past the last index in storage. */
export class UnavailableError extends RaftError {
  constructor(readonly index: number, readonly lastIndex: number) {
    super(`raft log index ${index} is unavailable (last index is ${lastIndex})`);
  }
}

/** `applySnapshot`/`createSnapshot` was given a snapshot older than the one already held. */
export class SnapshotOutOfDateError extends RaftError {
  constructor(readonly index: number, readonly current: number) {
    super(`raft snapshot at index ${index} is older than the current snapshot at index ${current}`);
  }
}

/**
 * `Storage.snapshot()` cannot produce a snapshot right now (e.g. one is being built). The leader
 * retries on a later heartbeat.
 */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  constructor() {
    super('raft snapshot is temporarily unavailable; the leader retries later');
  }
}

/** A configuration change would leave an invalid configuration (e.g. no voters). */
export class ConfChangeError extends RaftError {}

/** The host broke the Ready contract (e.g. called `ready()` twice without `advance()`). */
export class ReadyContractError extends RaftError {}
