import type {
  Assignments,
  Config,
  DispatcherClient,
  Secret,
  HealthConfig,
  SessionInfo,
  SessionRequest,
  Task,
  TaskState,
  TaskStatusUpdate,
} from '@shoal/api';
import { DEFAULTS, ShoalError, newId, taskStateRank } from '@shoal/api';

interface FakeSession {
  id: string;
  nodeId: string;
  request: SessionRequest;
  watchers: Set<{ onAssignments: (a: Assignments) => void; onEnd: (err?: Error) => void }>;
}

/**
 * An in-memory {@link DispatcherClient} for agent tests: the test plays the managers. It holds the
 * tasks (`setTask`, `setDesired`, `removeTask`), pushes the complete set of a node's tasks to its
 * session on every change (as the real dispatcher does), applies status updates forwards-only, and
 * can break sessions (`endSessions`, `failOpens`, `failHeartbeats`).
 */
export class FakeDispatcher implements DispatcherClient {
  readonly tasks = new Map<string, Task>();
  /** Secrets and configs "in the store": sent with the sets whose tasks use them (as the real dispatcher). */
  readonly secrets = new Map<string, Secret>();
  readonly configs = new Map<string, Config>();
  /** Every status update received, in order. */
  readonly updates: TaskStatusUpdate[] = [];
  readonly sessions = new Map<string, FakeSession>();
  /** openSession calls so far (including failed ones). */
  opens = 0;
  heartbeats = 0;
  /** The next N openSession calls reject. */
  failOpens = 0;
  /** While true, heartbeats reject (the session is forgotten, as after a manager restart). */
  failHeartbeats = false;
  /** While true, heartbeats never answer (a dead manager whose connections were not severed). */
  hangHeartbeats = false;

  constructor(readonly heartbeatPeriodMs = DEFAULTS.cluster.dispatcher.heartbeatPeriodMs) {}

  async openSession(req: SessionRequest): Promise<SessionInfo> {
    this.opens++;
    if (this.failOpens > 0) {
      this.failOpens--;
      throw new ShoalError('Unavailable', 'fake dispatcher: openSession refused');
    }
    // One session per node: a new one replaces the old (as the real dispatcher does).
    for (const s of this.sessions.values()) if (s.nodeId === req.nodeId) this.end(s, new Error('session replaced'));
    const s: FakeSession = { id: newId(), nodeId: req.nodeId, request: req, watchers: new Set() };
    this.sessions.set(s.id, s);
    return { sessionId: s.id, heartbeatPeriodMs: this.heartbeatPeriodMs, managers: [] };
  }

  async heartbeat(sessionId: string): Promise<{ heartbeatPeriodMs: number }> {
    this.heartbeats++;
    const s = this.session(sessionId);
    if (this.hangHeartbeats) return new Promise(() => {});
    if (this.failHeartbeats) {
      this.end(s, new Error('heartbeat refused'));
      throw new ShoalError('Unavailable', 'fake dispatcher: heartbeat refused');
    }
    return { heartbeatPeriodMs: this.heartbeatPeriodMs };
  }

  watchAssignments(sessionId: string, onAssignments: (a: Assignments) => void, onEnd: (err?: Error) => void): () => void {
    const s = this.sessions.get(sessionId);
    if (!s) {
      queueMicrotask(() => onEnd(new ShoalError('Unavailable', `fake dispatcher: unknown session ${sessionId}`)));
      return () => {};
    }
    const w = { onAssignments, onEnd };
    s.watchers.add(w);
    const first = this.assignmentsOf(s.nodeId);
    queueMicrotask(() => {
      if (s.watchers.has(w)) onAssignments(first);
    });
    return () => {
      s.watchers.delete(w);
    };
  }

  async updateTaskStatus(sessionId: string, updates: TaskStatusUpdate[]): Promise<void> {
    const s = this.session(sessionId);
    for (const u of updates) {
      this.updates.push(u);
      const t = this.tasks.get(u.taskId);
      if (!t || t.nodeId !== s.nodeId) continue;
      if (taskStateRank(u.status.state) < taskStateRank(t.status.state)) continue;
      this.tasks.set(t.id, { ...t, status: u.status });
    }
  }

  // ---- the test's side ------------------------------------------------------------------------

  /** Adds or replaces a task and pushes the new set to its node. */
  setTask(task: Task): void {
    const old = this.tasks.get(task.id);
    this.tasks.set(task.id, task);
    if (old && old.nodeId !== task.nodeId) this.push(old.nodeId);
    this.push(task.nodeId);
  }

  /** Sets a task's desired state (e.g. 'shutdown') and pushes the set. */
  setDesired(taskId: string, desiredState: TaskState): void {
    const t = this.mustGet(taskId);
    this.setTask({ ...t, desiredState });
  }

  /** Removes a task from the store (its node then removes the container). */
  removeTask(taskId: string): void {
    const t = this.mustGet(taskId);
    this.tasks.delete(taskId);
    this.push(t.nodeId);
  }

  /** Ends every open session (of one node, or all), as a manager restart would. */
  endSessions(nodeId?: string): void {
    for (const s of [...this.sessions.values()]) if (!nodeId || s.nodeId === nodeId) this.end(s, new Error('fake dispatcher: session ended by test'));
  }

  /** The task's current observed state. */
  stateOf(taskId: string): TaskState {
    return this.mustGet(taskId).status.state;
  }

  /** Observed states reported for a task, in order. */
  statesOf(taskId: string): TaskState[] {
    return this.updates.filter((u) => u.taskId === taskId).map((u) => u.status.state);
  }

  /** Open sessions of a node. */
  sessionsOf(nodeId: string): FakeSession[] {
    return [...this.sessions.values()].filter((s) => s.nodeId === nodeId);
  }

  private assignmentsOf(nodeId: string): Assignments {
    // As the real dispatcher: tasks placed on the node, at least ASSIGNED, desired state before REMOVE.
    const tasks = [...this.tasks.values()].filter(
      (t) => t.nodeId === nodeId && taskStateRank(t.status.state) >= taskStateRank('assigned') && taskStateRank(t.desiredState) < taskStateRank('remove'),
    );
    const a: Assignments = { tasks: tasks.map((t) => structuredClone(t)) };
    const live = tasks.filter((t) => taskStateRank(t.status.state) <= taskStateRank('running'));
    const secrets = [...new Set(live.flatMap((t) => (t.spec.container.secrets ?? []).map((r) => r.secretId)))].map((id) => this.secrets.get(id)).filter((x): x is Secret => !!x);
    const configs = [...new Set(live.flatMap((t) => (t.spec.container.configs ?? []).map((r) => r.configId)))].map((id) => this.configs.get(id)).filter((x): x is Config => !!x);
    if (secrets.length) a.secrets = secrets.map((x) => structuredClone(x));
    if (configs.length) a.configs = configs.map((x) => structuredClone(x));
    return a;
  }

  private push(nodeId: string): void {
    for (const s of this.sessions.values()) {
      if (s.nodeId !== nodeId) continue;
      const a = this.assignmentsOf(nodeId);
      for (const w of s.watchers) w.onAssignments(a);
    }
  }

  private session(id: string): FakeSession {
    const s = this.sessions.get(id);
    if (!s) throw new ShoalError('Unavailable', `fake dispatcher: unknown session ${id}; open a new session`);
    return s;
  }

  private end(s: FakeSession, err: Error): void {
    this.sessions.delete(s.id);
    for (const w of s.watchers) w.onEnd(err);
    s.watchers.clear();
  }

  private mustGet(taskId: string): Task {
    const t = this.tasks.get(taskId);
    if (!t) throw new Error(`FakeDispatcher: no task ${taskId}`);
    return t;
  }
}

/**
 * A task as the scheduler hands it to a node (state ASSIGNED, desired RUNNING), for tests.
 * Defaults: image `shoal/busybox:latest`, args `sleep 3600`, restart policy Docker's.
 */
export function fakeTask(fields: {
  nodeId: string;
  serviceName?: string;
  serviceId?: string;
  slot?: number;
  id?: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: string[];
  labels?: Record<string, string>;
  stopGracePeriodMs?: number;
  healthcheck?: HealthConfig;
  desiredState?: TaskState;
}): Task {
  const now = new Date().toISOString();
  const container: Task['spec']['container'] = { image: fields.image ?? 'shoal/busybox:latest' };
  if (fields.command) container.command = fields.command;
  container.args = fields.args ?? (fields.command ? [] : ['sleep', '3600']);
  if (fields.env) container.env = fields.env;
  if (fields.labels) container.labels = fields.labels;
  if (fields.stopGracePeriodMs !== undefined) container.stopGracePeriodMs = fields.stopGracePeriodMs;
  if (fields.healthcheck) container.healthcheck = fields.healthcheck;
  return {
    id: fields.id ?? newId(),
    meta: { version: 1, createdAt: now, updatedAt: now },
    serviceId: fields.serviceId ?? 'svc0000000000000000000000',
    serviceName: fields.serviceName ?? 'web',
    slot: fields.slot ?? 1,
    nodeId: fields.nodeId,
    spec: {
      container,
      restart: { ...DEFAULTS.restart },
      placement: { constraints: [], maxReplicas: 0 },
      networks: [],
      forceUpdate: 0,
    },
    specVersion: 1,
    desiredState: fields.desiredState ?? 'running',
    status: { state: 'assigned', timestamp: now, message: 'scheduler assigned task to node' },
    networks: [],
  };
}
