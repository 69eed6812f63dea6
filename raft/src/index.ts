/** Public API of the Raft core. See README.md for the Ready loop contract. */
export * from './types.js';
export * from './errors.js';
export { RawNode, mustSync, type Status, type PeerProgress } from './rawnode.js';
export { MemoryStorage, bootstrap } from './storage.js';
export { resolveConfig, nopLogger, type Config, type Logger, type ResolvedConfig } from './config.js';
export { encodeConfChange, decodeConfChange, applyToConfig } from './confchange.js';
export type { ReadOnlyOption } from './read_only.js';
export type { ProgressState } from './tracker/progress.js';
export { majorityCommittedIndex, majorityVoteResult, type VoteResult } from './quorum.js';
export { mulberry32, fnv1a, isEmptyHardState, isEmptySnapshot, entrySize, payloadSize } from './util.js';
