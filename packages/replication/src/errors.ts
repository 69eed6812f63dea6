/**
 * Errors of the replication driver. `NotLeaderError` and `ProposalDroppedError` come from the
 * Raft core (`@shoal/raft`) and are re-exported from the package index.
 */

/**
 * A persisted Raft record failed its CRC32 check, could not be decoded, or the records are
 * inconsistent with each other (a gap in the log, a commit index past the last entry). The node
 * refuses to start rather than apply a torn or corrupt record; restore the member from a healthy
 * peer (remove it, wipe `<dataDir>/raft`, join it again).
 */
export class CorruptLogError extends Error {
  constructor(
    /** The LevelDB key of the bad record (e.g. `e/0000000000000042`, `hs`, `snap/meta`). */
    readonly key: string,
    reason: string,
  ) {
    super(`corrupt raft record ${key}: ${reason}; restore this member from a healthy peer (remove it, wipe its raft dir, rejoin)`);
    this.name = 'CorruptLogError';
  }
}

/** An operation (proposal, read barrier, membership change) did not finish within its deadline. */
export class TimeoutError extends Error {
  constructor(
    readonly op: string,
    /** The deadline that passed, in ms. */
    readonly timeoutMs: number,
  ) {
    super(`${op} timed out after ${timeoutMs} ms; the outcome is unknown (it may still commit), retry if idempotent`);
    this.name = 'TimeoutError';
  }
}

/** The node was closed while the operation was pending. */
export class NodeClosedError extends Error {
  constructor(op: string) {
    super(`${op} aborted: the raft node is closed`);
    this.name = 'NodeClosedError';
  }
}

/** This member was removed from the Raft group: it takes no part any more (proposals, reads, membership). */
export class MemberRemovedError extends Error {
  constructor(op: string) {
    super(`${op} refused: this member was removed from the Raft group`);
    this.name = 'MemberRemovedError';
  }
}
