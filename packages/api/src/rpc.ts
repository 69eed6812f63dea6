import type { Network, Node, Service, Task, TaskState } from './objects.js';

/**
 * The local control protocol between the `shoal` CLI and `shoald` (JSON over HTTP on a unix
 * socket; see `@shoal/client`). Method name → [params, result]. Any manager answers; writes are
 * forwarded to the Raft leader.
 */
export interface RpcMethods {
  'swarm.init': [{ advertiseAddr?: string; listenAddr?: string; forceNewCluster?: boolean; taskHistoryLimit?: number }, { nodeId: string }];
  'swarm.join': [{ token: string; remoteAddr: string; advertiseAddr?: string; listenAddr?: string }, { nodeId: string; role: 'manager' | 'worker' }];
  'swarm.leave': [{ force?: boolean }, Record<string, never>];
  'swarm.info': [Record<string, never>, SwarmInfo];
  'swarm.joinToken': [{ role: 'worker' | 'manager'; rotate?: boolean }, { token: string; managerAddr: string }];
  'swarm.update': [{ taskHistoryLimit?: number; heartbeatPeriodMs?: number }, Record<string, never>];
  'service.create': [Record<string, unknown>, { id: string }];
  'service.ls': [Record<string, never>, { service: Service; running: number; desired: number }[]];
  'service.inspect': [{ ref: string }, Service];
  'service.ps': [{ ref: string; desiredState?: TaskState; node?: string }, { tasks: Task[]; nodes: Record<string, string> }];
  'service.update': [{ ref: string; spec?: Record<string, unknown>; version?: number; force?: boolean; rollback?: boolean }, { id: string }];
  'service.scale': [{ ref: string; replicas: number }, { id: string; replicas: number }];
  'service.rm': [{ ref: string }, { id: string }];
  'node.ls': [Record<string, never>, { nodes: Node[]; selfId: string }];
  'node.inspect': [{ ref: string }, Node];
  'node.update': [{ ref: string; availability?: string; labelAdd?: Record<string, string>; labelRm?: string[]; role?: 'manager' | 'worker' }, { id: string }];
  'node.rm': [{ ref: string; force?: boolean }, { id: string }];
  'node.ps': [{ ref: string }, { tasks: Task[]; nodes: Record<string, string> }];
  'network.create': [{ name: string; driver?: string; subnet?: string; attachable?: boolean }, { id: string }];
  'network.ls': [Record<string, never>, Network[]];
  'network.inspect': [{ ref: string }, Network];
  'network.rm': [{ ref: string }, { id: string }];
  'task.inspect': [{ ref: string }, Task];
}

export type RpcMethod = keyof RpcMethods;

export interface SwarmInfo {
  /** 'inactive' before init/join; 'active' after. */
  localNodeState: 'inactive' | 'pending' | 'active' | 'error';
  nodeId: string;
  role?: 'manager' | 'worker';
  isLeader?: boolean;
  leaderId?: string;
  clusterId?: string;
  managers?: { nodeId: string; addr: string; reachable: boolean }[];
  nodes?: number;
  error?: string;
}
