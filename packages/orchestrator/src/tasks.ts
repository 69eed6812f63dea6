import { type Node, type Service, type Task, type TaskState, isTerminal, newId, taskStateRank } from '@shoal/api';

/**
 * Small pure helpers over tasks and nodes shared by the orchestrators, the restart supervisor and
 * the task reaper.
 */

const RUNNING = taskStateRank('running');
const ASSIGNED = taskStateRank('assigned');
const REMOVE = taskStateRank('remove');

/** The manager still wants this task to run (desired state NEW…RUNNING). */
export const isRunnable = (t: Task): boolean => taskStateRank(t.desiredState) <= RUNNING;

/** The slot (or node, for global services) this task belongs to has been given up: desired REMOVE. */
export const isRetired = (t: Task): boolean => taskStateRank(t.desiredState) >= REMOVE;

/** A node the manager must treat as gone: deleted, or marked Down by the dispatcher. */
export const nodeDown = (n: Node | undefined): boolean => !n || n.status.state === 'down';

/**
 * True once the task cannot be running anywhere: its status is terminal, it was never handed to
 * an agent (no node, or still NEW/PENDING), or its node is down or deleted.
 */
export function hasStopped(t: Task, node: Node | undefined): boolean {
  if (isTerminal(t.status.state)) return true;
  if (t.nodeId === '' || taskStateRank(t.status.state) < ASSIGNED) return true;
  return nodeDown(node);
}

/** Oldest first: by `meta.createdAt` (ISO-8601, which sorts as text), ties by id. */
export function byAge(a: Task, b: Task): number {
  return a.meta.createdAt < b.meta.createdAt ? -1 : a.meta.createdAt > b.meta.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

/** Parses an ISO timestamp to ms, or `undefined` when empty/invalid. */
export function parseTime(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * A new task for `service`, desired RUNNING, observed NEW (a job's task carries the job's current
 * `jobIteration`). `createdAtMs` is stamped into
 * `meta.createdAt` (the store keeps a creator-supplied creation time), so tasks of one slot order
 * strictly by creation even within one millisecond.
 */
export function newTask(service: Service, slot: number, nodeId: string, createdAtMs: number): Task {
  const at = iso(createdAtMs);
  return {
    id: newId(),
    meta: { version: 0, createdAt: at, updatedAt: at },
    serviceId: service.id,
    serviceName: service.spec.name,
    slot,
    nodeId,
    spec: structuredClone(service.spec.task) as Task['spec'],
    specVersion: service.specVersion,
    desiredState: 'running',
    status: { state: 'new', timestamp: at, message: 'created' },
    networks: [],
    // A job's tasks belong to its current run (only those count towards its completions).
    ...(service.jobStatus ? { jobIteration: service.jobStatus.jobIteration } : {}),
  };
}

/** Moves `t.desiredState` forward to `to` (desired states never go backwards). Returns true if it changed. */
export function raiseDesired(t: Task, to: TaskState): boolean {
  if (taskStateRank(t.desiredState) >= taskStateRank(to)) return false;
  t.desiredState = to;
  return true;
}
