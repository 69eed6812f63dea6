/**
 * `@shoal/node`: a node of a swarm (SwarmKit's `node/`) — identity, init/join/leave, role changes
 * and certificate renewal, and the services its role needs; the local control socket and the
 * cluster port's method table. `shoald` wires it to the machine (see platform.ts).
 */
export { SwarmNode, FNC_NO_STATE, type NodeOptions } from './node.js';
export type { Logger, NodeNetworkPlane, NodeRuntime, PlatformContext, PlatformFactory } from './platform.js';
export { ControlRouter, NO_LEADER, NOT_MANAGER, NOT_IN_SWARM, noLeaderMessage } from './control.js';
export { assertSocketFree } from './socket.js';
export { type NodeState } from './state.js';
export {
  Observability, PromMetrics, parseListenAddr, clusterView, currentTasks, categoryOf,
  type ClusterView, type ViewNode, type ViewService, type ViewTask, type TaskCategory, type ListenAddr,
} from './observe/index.js';
export { SWARM_LOCKED, LEAVE_LOCKED } from './node.js';
export { NodeKeys, keyPaths, writeSecretFile, type DataKey, type KekChange } from './keys.js';
