/**
 * Majority-quorum arithmetic over a set of voters (etcd-io/raft `quorum/majority.go`): the
 * commit index is the largest index acknowledged by a majority; an election is won, lost or
 * still pending given the votes so far. A joint configuration would take the minimum of two such
 * indexes; this library changes one server at a time (Raft thesis §4.1) and does not need it.
 */
import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * Largest index `i` such that a majority of `voters` have `matchOf(id) ≥ i`. With no voters it
 * returns Infinity (an empty quorum agrees to anything), like etcd.
 */
export function majorityCommittedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number): number {
  const n = voters.size;
  if (n === 0) return Infinity;
  const srt: number[] = [];
  for (const id of voters) srt.push(matchOf(id));
  srt.sort((a, b) => b - a);
  // The q-th largest value (q = n/2 + 1) is acknowledged by at least q voters.
  return srt[Math.floor(n / 2)]!;
}

/** Outcome of an election given `votes` (true = granted) from `voters`. */
export function majorityVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}
