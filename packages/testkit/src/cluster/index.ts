/**
 * `@shoal/testkit/cluster`: the in-process cluster harness (dev-only) — real managers (Raft,
 * store, control API, leader components) and agents, an in-memory network and Raft storage, one
 * fake clock; the scenario language of `packages/testkit/testdata`; the membership checker.
 * See packages/testkit/README.md.
 */
export { FakeCluster, CALL_TIMEOUT_MS, type FakeClusterOptions, type ClusterHooks } from './cluster.js';
export { FakeHost, removalNotice } from './host.js';
export { FakeNetwork, FakeTransport, type NetEvent } from './fake-network.js';
export { FakeDisk, FakeRaftStorage } from './fake-raft-storage.js';
export { ScenarioRunner, parseDuration } from './scenario.js';
export { renderTasks, renderNodes, renderServices, renderMembers, renderHosts } from './render.js';
export { seededRandom, seededIds } from './seeded.js';
export { settle, trackImmediates } from './settle.js';
export { MembershipChecker } from './checker.js';
export { runMembershipChaos, type ChaosOptions, type ChaosResult } from './chaos.js';
