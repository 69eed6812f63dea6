/**
 * The leader's (and candidate's) bookkeeping over the configuration: which nodes are voters or
 * learners, each one's {@link Progress}, and the votes of the current election (etcd-io/raft
 * `tracker/tracker.go`).
 */
import type { ConfState, NodeId } from '../types.js';
import { majorityCommittedIndex, majorityVoteResult, type VoteResult } from '../quorum.js';
import { Progress } from './progress.js';

export interface TrackerConfig {
  voters: Set<NodeId>;
  learners: Set<NodeId>;
}

export class ProgressTracker {
  config: TrackerConfig = { voters: new Set(), learners: new Set() };
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(
    readonly maxInflight: number,
    readonly maxInflightBytes: number,
  ) {}

  confState(): ConfState {
    return { voters: [...this.config.voters].sort(), learners: [...this.config.learners].sort() };
  }

  isSingleton(): boolean {
    return this.config.voters.size === 1;
  }

  /** Commit index a majority of voters acknowledged (`Infinity` if there are no voters). */
  committed(): number {
    return majorityCommittedIndex(this.config.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  /** Ids in the configuration, sorted (deterministic message order). */
  ids(): NodeId[] {
    return [...this.progress.keys()].sort();
  }

  voterIds(): NodeId[] {
    return [...this.config.voters].sort();
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.config.voters) {
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: majorityVoteResult(this.config.voters, this.votes) };
  }

  /** Adds a progress entry for a new member (next = `nextIndex`). */
  initProgress(id: NodeId, nextIndex: number, isLearner: boolean): Progress {
    const pr = new Progress(nextIndex, this.maxInflight, this.maxInflightBytes, isLearner);
    this.progress.set(id, pr);
    return pr;
  }
}
