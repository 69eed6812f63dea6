/**
 * `@shoal/node`: a node of a swarm (SwarmKit's `node/`) — identity, init/join/leave, role changes
 * and certificate renewal, and the services its role needs; the local control socket and the
 * cluster port's method table. `shoald` wires it to the machine (see platform.ts).
 */
export { SwarmNode, type NodeOptions } from './node.js';
export type { Logger, NodeNetworkPlane, NodeRuntime, PlatformFactory } from './platform.js';
export { ControlRouter, NO_LEADER, NOT_MANAGER, NOT_IN_SWARM, noLeaderMessage } from './control.js';
export { assertSocketFree } from './socket.js';
export { type NodeState } from './state.js';
export { SWARM_LOCKED, LEAVE_LOCKED } from './node.js';
export { NodeKeys, keyPaths, writeSecretFile, type DataKey, type KekChange } from './keys.js';
