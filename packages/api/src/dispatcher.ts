import type { NodeDescription, Task, TaskStatus } from './objects.js';

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
