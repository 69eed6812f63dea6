/**
 * `@shoal/replication`: the Raft driver — LevelDB storage, gRPC transport and the Ready loop
 * around the pure core in `@shoal/raft`.
 */
export { RaftNode, type Applier, type RaftNodeOptions, type NodeStatus, type PeerAddr, type DriverLogger } from './node.js';
export { Membership, forceNewClusterChanges, type Member, type MembershipHeader, type ConfContext } from './membership.js';
export { LevelStorage, entryKey, SNAPSHOT_CHUNK_BYTES, DataKeyMismatchError, ENC_KEY, sealRecord, unsealRecord, type LoadedState, type RaftStorage } from './level-storage.js';
export { AesGcmCipher, DecryptError, type RecordCipher } from './cipher.js';
export { prepareEncryptedDir, recoverRewrite, REWRITE_MARKER, type PrepareOutcome } from './encrypt.js';
export { GrpcTransport, raftService, RAFT_GRPC_SERVER_OPTIONS, RAFT_MAX_MESSAGE_BYTES, type GrpcTransportOptions, type Transport, type TransportCredentials, type TransportHandler, MEMBER_REMOVED } from './transport.js';
export { CorruptLogError, TimeoutError, NodeClosedError, MemberRemovedError } from './errors.js';
export { NotLeaderError, ProposalDroppedError } from '@shoal/raft';
export type { PeerMap } from './envelope.js';
