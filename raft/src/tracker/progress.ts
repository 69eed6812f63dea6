/**
 * The leader's view of one follower (etcd-io/raft `tracker/progress.go`; see DESIGN.md for the
 * state diagram).
 *
 * - `probe`: the leader does not know where the follower's log ends. It sends one MsgApp at a
 *   time and waits for the answer (or the next heartbeat) before sending another; rejections
 *   move `next` backwards using the follower's hints.
 * - `replicate`: the follower is in sync. The leader streams entries optimistically, advancing
 *   `next` as it sends, bounded by the {@link Inflights} window (messages and bytes).
 * - `snapshot`: the follower needs entries the leader has compacted. One MsgSnap is outstanding;
 *   nothing else is sent until the host reports the outcome or the follower acknowledges.
 */
import { Inflights } from './inflights.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be replicated on the follower. */
  match: number;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = 'probe';
  /** In `snapshot` state: index of the snapshot sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round (the leader itself is always active). */
  recentActive = false;
  /** Leader tick at which we last heard from this follower (check-quorum). */
  lastActiveTick = -Infinity;
  /** Leader tick at which the latest heartbeat this follower acknowledged was sent (lease). */
  leaseTick = -Infinity;
  /** In `probe` state: a MsgApp is outstanding, wait before sending another. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, maxInflightBytes: number, isLearner: boolean) {
    this.match = 0;
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, resume right after it: the follower either installed it or will
    // reject and give us a hint.
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /**
   * The leader sent a MsgApp with `entries` entries (`bytes` of them) ending at `lastIndex`:
   * advance `next` optimistically in replicate state, or pause until an answer in probe state.
   */
  sentEntries(entries: number, bytes: number, lastIndex: number): void {
    switch (this.state) {
      case 'replicate':
        if (entries > 0) {
          this.next = lastIndex + 1;
          this.inflights.add(lastIndex, bytes);
        }
        break;
      case 'probe':
        this.msgAppFlowPaused = true;
        break;
      case 'snapshot':
        throw new Error('raft progress: sending entries while in snapshot state');
    }
  }

  /**
   * An acknowledgement up to `n` arrived. Returns true if `match` advanced (false for a stale or
   * duplicate ack).
   */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The follower rejected a MsgApp whose previous index was `rejected`; `matchHint` is the
   * highest index that may match (from the follower's hint, refined by the leader's log). Moves
   * `next` back and returns true, or returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // Stale unless it rejects something past what we know matches.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe (or snapshot): only the rejection of the message we last sent counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Whether the leader must hold off sending MsgApp to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppFlowPaused;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
