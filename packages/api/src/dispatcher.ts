import type { Config, NodeDescription, PortConfig, Secret, Task, TaskStatus } from './objects.js';

/**
 * The agent ↔ dispatcher protocol (SwarmKit `api/dispatcher.proto`: Session, Heartbeat,
 * Assignments, UpdateTaskStatus). The dispatcher runs on the Raft leader; agents reach it
 * in-process (the local node) or over gRPC with mutual TLS (remote nodes). Both carry exactly
 * these calls, so the agent is written once against {@link DispatcherClient}.
 */

export interface SessionRequest {
  nodeId: string;
  description: NodeDescription;
  /** Address other nodes use to reach this node (data path / advertise address). */
  addr: string;
  /**
   * The node runs a load-balancer dataplane and wants the cluster-wide {@link NetworkView} in
   * every assignment message (`Assignments.network`).
   */
  networkView?: boolean;
}

export interface SessionInfo {
  sessionId: string;
  /** The agent must heartbeat at least this often; the manager marks the node Down after 3 misses. */
  heartbeatPeriodMs: number;
  managers: { nodeId: string; addr: string }[];
}

/**
 * One assignment message: the complete set of tasks this node must run (with their desired
 * states). Sent on session start and whenever the set changes; the agent reconciles to it and
 * removes containers of tasks no longer listed.
 */
export interface Assignments {
  tasks: Task[];
  /**
   * The managers (as {@link SessionInfo.managers}), in the first message of a session and whenever
   * they change (SwarmKit's session stream carries them the same way): an agent fails over to
   * these, so a long session must not keep the list it got when it opened — every manager on it
   * may have been demoted or gone by the time the leader goes.
   */
  managers?: { nodeId: string; addr: string }[];
  /**
   * The secrets the listed tasks use, with their data — those of tasks not yet ended (observed state
   * up to RUNNING) and nothing else (SwarmKit `assignments.go`): a node never receives the secrets of
   * tasks it does not run. The agent keeps them in memory only. Absent or empty: none.
   */
  secrets?: Secret[];
  /** The configs the listed tasks use (same rule as {@link secrets}). */
  configs?: Config[];
  /**
   * The cluster-wide network state, present when the session asked for it
   * (`SessionRequest.networkView`). Always the complete view (level-triggered).
   */
  network?: NetworkView;
}

/**
 * What every node needs to program its overlay, load balancer and DNS (docs/NETWORKING.md): the
 * same for every node, recomputed by the dispatcher on each store commit that changes it.
 */
export interface NetworkView {
  /** Cluster overlay CIDR (node subnets are /24s of it), e.g. `10.97.0.0/16`. */
  clusterCidr: string;
  /** Range the service VIPs come from, e.g. `10.96.0.0/16`. */
  vipCidr: string;
  /** Nodes with an overlay subnet that are not Down, by id. `addr` = underlay IPv4 (no port). */
  nodes: { id: string; addr: string; subnet: string; vtepMac: string; state: 'unknown' | 'down' | 'ready' | 'disconnected' }[];
  /** Services that are not being deleted. `networks` are resolved network IDs (the ingress network excluded). */
  services: {
    id: string;
    name: string;
    mode: 'vip' | 'dnsrr';
    ports: PortConfig[];
    virtualIps: { networkId: string; addr: string }[];
    networks: { id: string; aliases?: string[] }[];
  }[];
  /**
   * Tasks with a data-path address that may still run (observed state not terminal) on nodes
   * that are not Down. `backend`: `active` = running and meant to run on a Ready node (takes new
   * connections) — a task handing its slot over ({@link Task.handoff}) counts as meant to run until
   * its replacement is RUNNING; `draining` = running but told to stop (no new connections); `null` = not a
   * backend (still starting, or its node is not Ready). `networks` = network IDs it is attached to.
   */
  tasks: { id: string; serviceId: string; nodeId: string; addr: string; networks: string[]; backend: 'active' | 'draining' | null }[];
}

export interface TaskStatusUpdate {
  taskId: string;
  status: TaskStatus;
}

/** Errors: rejects with ShoalError('Unavailable') when the session is unknown/expired or the manager lost leadership; the agent then opens a new session. */
export interface DispatcherClient {
  openSession(req: SessionRequest): Promise<SessionInfo>;
  heartbeat(sessionId: string): Promise<{ heartbeatPeriodMs: number }>;
  /** Streams assignments until the returned function is called or the session ends (`onEnd` gets the reason). */
  watchAssignments(sessionId: string, onAssignments: (a: Assignments) => void, onEnd: (err?: Error) => void): () => void;
  updateTaskStatus(sessionId: string, updates: TaskStatusUpdate[]): Promise<void>;
}
