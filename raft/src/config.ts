/** Configuration of a Raft node, its defaults and validation. */
import type { ReadOnlyOption } from './read_only.js';
import type { NodeId } from './types.js';
import { fnv1a, mulberry32 } from './util.js';

/** Structured logger for notable events: message first, then fields (wrap pino as `(msg, f) => log.info(f, msg)`). */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const nopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export interface Config {
  /** This node's id: non-empty, unique in the cluster. */
  id: NodeId;
  /**
   * Election timeout in ticks (default 10). A follower that hears nothing from a leader for a
   * randomized timeout in [electionTick, 2·electionTick) starts an election (Raft paper §5.2).
   */
  electionTick?: number;
  /** Heartbeat interval in ticks (default 1); must be below `electionTick`. */
  heartbeatTick?: number;
  /** Pre-vote (Raft thesis §9.6): a node campaigns only if it could win (default true). */
  preVote?: boolean;
  /**
   * Check-quorum (Raft thesis §6.2): a leader that has not heard from a quorum within an election
   * timeout steps down, and followers ignore vote requests while they hear from a leader
   * (default true).
   */
  checkQuorum?: boolean;
  /** Max bytes of entries per MsgApp (default 1 MiB; at least one entry is always sent). */
  maxSizePerMsg?: number;
  /** Max bytes of committed entries per Ready (default 16 MiB; at least one). */
  maxCommittedSizePerReady?: number;
  /** Max MsgApp messages in flight per follower in replicate state (default 256). */
  maxInflightMsgs?: number;
  /** Max entry bytes in flight per follower (default Infinity = no limit). */
  maxInflightBytes?: number;
  /**
   * Max payload bytes of entries the leader holds uncommitted; further proposals throw
   * ProposalDroppedError (default Infinity = no limit). A single proposal larger than the limit
   * is still accepted when nothing is uncommitted.
   */
  maxUncommittedEntriesSize?: number;
  /** How ReadIndex confirms leadership (default 'safe'); 'lease' requires checkQuorum. */
  readOnlyOption?: ReadOnlyOption;
  /**
   * Last applied index at restart: committed entries up to here are not delivered again
   * (default 0 = the index of `storage.snapshot()`, i.e. the host restored its state machine
   * from that snapshot).
   */
  applied?: number;
  /** Followers throw NotLeaderError instead of forwarding proposals (default false). */
  disableProposalForwarding?: boolean;
  /**
   * Seeded source of floats in [0, 1) used to randomize election timeouts (default: mulberry32
   * seeded from the id, so runs are reproducible). Never Math.random in tests.
   */
  random?: () => number;
  logger?: Logger;
}

export type ResolvedConfig = Required<Omit<Config, 'logger'>> & { logger: Logger };

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`raft config: ${name} = ${v} is invalid; pass a positive integer`);
  return v;
}

function positiveSize(name: string, v: number): number {
  if (!(v > 0)) throw new RangeError(`raft config: ${name} = ${v} is invalid; pass a positive number of bytes (or Infinity)`);
  return v;
}

/** Fills defaults and validates; throws RangeError naming the bad field. */
export function resolveConfig(c: Config): ResolvedConfig {
  if (typeof c.id !== 'string' || c.id === '') {
    throw new RangeError(`raft config: id ${JSON.stringify(c.id)} is invalid; pass a non-empty node id`);
  }
  const heartbeatTick = positiveInt('heartbeatTick', c.heartbeatTick ?? 1);
  const electionTick = positiveInt('electionTick', c.electionTick ?? 10);
  if (electionTick <= heartbeatTick) {
    throw new RangeError(`raft config: electionTick = ${electionTick} must be greater than heartbeatTick = ${heartbeatTick}`);
  }
  const checkQuorum = c.checkQuorum ?? true;
  const readOnlyOption = c.readOnlyOption ?? 'safe';
  if (readOnlyOption !== 'safe' && readOnlyOption !== 'lease') {
    throw new RangeError(`raft config: readOnlyOption = ${JSON.stringify(readOnlyOption)} is invalid; pass 'safe' or 'lease'`);
  }
  if (readOnlyOption === 'lease' && !checkQuorum) {
    throw new RangeError("raft config: readOnlyOption = 'lease' requires checkQuorum = true");
  }
  const applied = c.applied ?? 0;
  if (!Number.isInteger(applied) || applied < 0) {
    throw new RangeError(`raft config: applied = ${applied} is invalid; pass a non-negative integer`);
  }
  return {
    id: c.id,
    electionTick,
    heartbeatTick,
    preVote: c.preVote ?? true,
    checkQuorum,
    maxSizePerMsg: positiveSize('maxSizePerMsg', c.maxSizePerMsg ?? 1024 * 1024),
    maxCommittedSizePerReady: positiveSize('maxCommittedSizePerReady', c.maxCommittedSizePerReady ?? 16 * 1024 * 1024),
    maxInflightMsgs: positiveInt('maxInflightMsgs', c.maxInflightMsgs ?? 256),
    maxInflightBytes: positiveSize('maxInflightBytes', c.maxInflightBytes ?? Infinity),
    maxUncommittedEntriesSize: positiveSize('maxUncommittedEntriesSize', c.maxUncommittedEntriesSize ?? Infinity),
    readOnlyOption,
    applied,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    random: c.random ?? mulberry32(fnv1a(c.id)),
    logger: c.logger ?? nopLogger,
  };
}
