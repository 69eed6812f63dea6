/**
 * One-server-at-a-time membership changes (Raft thesis §4.1; etcd-io/raft `confchange/`).
 *
 * A change takes effect when the host applies the committed conf-change entry and calls
 * `RawNode.applyConfChange`. The leader refuses a new change while an earlier one is not yet
 * applied, and until it has committed an entry of its own term (the fix for the single-server
 * change bug Ongaro described on raft-dev in 2015).
 */
import { ConfChangeError } from './errors.js';
import type { TrackerConfig } from './tracker/tracker.js';
import type { ConfChange, ConfState } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a conf change as the `data` of an `EntryType.ConfChange` entry (UTF-8 JSON). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

/** Decodes the `data` of an `EntryType.ConfChange` entry. Throws on malformed input. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const v: unknown = JSON.parse(decoder.decode(data));
  if (typeof v !== 'object' || v === null) throw new ConfChangeError('raft conf change entry is not a JSON object');
  const cc = v as Partial<ConfChange>;
  if (cc.type !== 'addNode' && cc.type !== 'addLearner' && cc.type !== 'removeNode') {
    throw new ConfChangeError(`raft conf change type ${JSON.stringify(cc.type)} is unknown; use addNode, addLearner or removeNode`);
  }
  validateConfChange(cc as ConfChange);
  return cc as ConfChange;
}

export function validateConfChange(cc: ConfChange): void {
  if (typeof cc.nodeId !== 'string' || cc.nodeId === '') {
    throw new ConfChangeError(`raft conf change nodeId ${JSON.stringify(cc.nodeId)} is invalid; pass a non-empty node id`);
  }
}

/**
 * The configuration after `cc`:
 * - `addNode`: add a voter, or promote a learner;
 * - `addLearner`: add a learner, or demote a voter;
 * - `removeNode`: remove the node (a no-op if absent).
 * Throws {@link ConfChangeError} if the result would have no voters.
 */
export function applyToConfig(cfg: TrackerConfig, cc: ConfChange): TrackerConfig {
  validateConfChange(cc);
  const voters = new Set(cfg.voters);
  const learners = new Set(cfg.learners);
  switch (cc.type) {
    case 'addNode':
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case 'addLearner':
      voters.delete(cc.nodeId);
      learners.add(cc.nodeId);
      break;
    case 'removeNode':
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
  }
  if (voters.size === 0) {
    throw new ConfChangeError(`raft conf change ${cc.type} ${cc.nodeId} would remove every voter; keep at least one voter`);
  }
  return { voters, learners };
}

export function configFromConfState(cs: ConfState): TrackerConfig {
  const voters = new Set(cs.voters);
  const learners = new Set(cs.learners);
  for (const l of learners) {
    if (voters.has(l)) throw new ConfChangeError(`raft conf state lists ${l} as both voter and learner; list it once`);
  }
  return { voters, learners };
}
