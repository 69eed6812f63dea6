/**
 * `@shoal/replication`: the Raft driver — LevelDB storage, gRPC transport and the Ready loop
 * around the pure core in `@shoal/raft`.
 */
export { RaftNode, type Applier, type RaftNodeOptions, type NodeStatus, type PeerAddr, type DriverLogger } from './node.js';
export { LevelStorage, entryKey, SNAPSHOT_CHUNK_BYTES, type LoadedState } from './level-storage.js';
export { GrpcTransport, raftService, RAFT_GRPC_SERVER_OPTIONS, RAFT_MAX_MESSAGE_BYTES, type GrpcTransportOptions, type TransportCredentials, type TransportHandler } from './transport.js';
export { CorruptLogError, TimeoutError, NodeClosedError } from './errors.js';
export { NotLeaderError, ProposalDroppedError } from '@shoal/raft';
export type { PeerMap } from './envelope.js';
