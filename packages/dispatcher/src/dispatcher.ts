import {
  DEFAULTS, ShoalError, TASK_STATES, handoffPending, invalidArgument, failedPrecondition, isTerminal, newId, taskStateRank, unavailable,
  type Assignments, type NetworkView, type Node, type SessionInfo, type SessionRequest, type Task, type TaskStatus, type TaskStatusUpdate,
} from '@shoal/api';
import type { MemoryStore, StoreEvent } from '@shoal/store';
import { systemClock, type Clock, type TimerHandle } from '@shoal/runtime';
import { buildNetworkView, type NetworkViewOptions } from './network.js';

export interface DispatcherOptions {
  /** Period agents must heartbeat at (ms). Default 1000 (`DEFAULTS.cluster.dispatcher`). */
  heartbeatPeriodMs?: number;
  /** A node is Down after `heartbeatPeriodMs × graceMultiplier` without a heartbeat. Default 3. */
  graceMultiplier?: number;
  /**
   * After `start()` (a new leader), how long nodes the store lists as not Down have to open a
   * session before they are marked Down (ms), counted from the start — never from the last
   * heartbeat the old leader saw (B08). Default two grace periods (6 s with the defaults): an
   * agent whose leader died silently notices only when a heartbeat call times out (one period
   * to its next beat + a 2-period call timeout), then has to find and reach the new leader; one
   * grace period (3 s) leaves almost no margin for that.
   */
  reconnectGraceMs?: number;
  /** Task status updates are written at most this long after they arrive (ms). Default 100. */
  statusBatchMs?: number;
  /** A batch is written at once when it reaches this many updates. Default 10000. */
  maxStatusBatch?: number;
  clock?: Clock;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** Overlay ranges reported in the {@link NetworkView} (defaults: `DEFAULTS.overlay`). */
  network?: NetworkViewOptions;
}

interface Watcher {
  onAssignments: (a: Assignments) => void;
  onEnd: (err?: Error) => void;
  /**
   * Per task of the last set sent: the version seen, whether it was sent held for a handoff
   * (desired RUNNING in place of the store's), and the task as sent without status/meta.
   */
  sent: Map<string, { version: number; held: boolean; stable: string }> | undefined;
  /** JSON of the network view last sent (sessions that asked for it). */
  sentNet: string | undefined;
}

interface Session {
  id: string;
  nodeId: string;
  timer: TimerHandle | undefined;
  watchers: Set<Watcher>;
  /** The agent asked for the cluster-wide network view in its assignments. */
  networkView: boolean;
}

interface QueuedStatus {
  nodeId: string;
  status: TaskStatus;
}

const ASSIGNED = taskStateRank('assigned');
const RUNNING = taskStateRank('running');
const REMOVE = taskStateRank('remove');
const KNOWN_STATES: ReadonlySet<string> = new Set(TASK_STATES);

/** A task as the agent acts on it: everything but metadata and the status it reported itself. */
function stableKey(t: Task): string {
  const { meta: _m, status: _s, ...rest } = t;
  return JSON.stringify(rest);
}

/** Tasks a node must know about: placed on it, at least ASSIGNED, desired state before REMOVE. */
function assignedTo(tasks: Task[]): Task[] {
  return tasks
    .filter((t) => taskStateRank(t.status.state) >= ASSIGNED && taskStateRank(t.desiredState) < REMOVE)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The dispatcher (SwarmKit `manager/dispatcher`, behaviour only): the leader's end of the agent
 * protocol ({@link DispatcherClient} in `@shoal/api`), transport-free. Adapters: in-process
 * ({@link localDispatcherClient}) and gRPC (elsewhere).
 *
 * - `openSession` marks the node READY (creating the node object, role worker, if the store lacks
 *   it), records its description and address, and replaces any older session of that node.
 * - Heartbeats only reset an in-memory timer (no store write). A session without a heartbeat for
 *   `heartbeatPeriodMs × graceMultiplier` ends and its node is marked DOWN ("heartbeat failure").
 * - On `start()` every node the store shows as not Down gets `reconnectGraceMs` (default two grace
 *   periods) from that moment to open a session before it is marked Down, so a leader change does
 *   not fail healthy nodes.
 * - `watchAssignments` sends the node's complete task set on subscribe and again, once per
 *   store commit, whenever the set or any member changes (a member's observed status — which the
 *   agent reported itself — excepted).
 * - Graceful drain ({@link Task.handoff}): a task for which {@link handoffPending} holds is sent
 *   with desired state RUNNING (a copy; the store keeps its SHUTDOWN), so its container keeps
 *   serving until its successor is RUNNING. Any change of the successor (or its deletion), and the
 *   handoff's `until` passing (a timer), sends the old task's node a fresh set.
 * - `updateTaskStatus` accepts forward-only moves for tasks on the caller's node and writes them in
 *   batches (≤ `statusBatchMs`); the promise settles when the batch is committed.
 * - `stop()` ends every session with Unavailable so agents reconnect to the next leader.
 *
 * Errors: `ShoalError('Unavailable')` for unknown/expired sessions and a stopped dispatcher;
 * `InvalidArgument` for a request without a node ID; `FailedPrecondition` for a removed node.
 */
export class Dispatcher {
  readonly heartbeatPeriodMs: number;
  readonly graceMultiplier: number;
  private readonly reconnectGraceMs: number;
  private readonly statusBatchMs: number;
  private readonly maxStatusBatch: number;
  private readonly clock: Clock;
  private readonly log: (msg: string, fields?: Record<string, unknown>) => void;
  private running = false;
  private unwatch: (() => void) | undefined;
  private sessions = new Map<string, Session>();
  private byNode = new Map<string, Session>();
  /** Nodes given a reconnect window at start and not yet back. */
  private awaiting = new Map<string, TimerHandle>();
  private dirtyNodes = new Set<string>();
  private queued = new Map<string, QueuedStatus>();
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushTimer: TimerHandle | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly networkOpts: NetworkViewOptions;
  /** Handoffs that may still hold: successor task id → (old task id → old task's node id). */
  private handoffs = new Map<string, Map<string, string>>();
  /** Per old task in {@link handoffs}: the timer firing at its `handoff.until`. */
  private handoffTimers = new Map<string, TimerHandle>();
  /** The network view and its JSON, recomputed lazily after a commit that touched its tables. */
  private net: { view: NetworkView; json: string } | undefined;
  private netDirty = true;

  constructor(private readonly store: MemoryStore, opts: DispatcherOptions = {}) {
    this.heartbeatPeriodMs = opts.heartbeatPeriodMs ?? DEFAULTS.cluster.dispatcher.heartbeatPeriodMs;
    this.graceMultiplier = opts.graceMultiplier ?? DEFAULTS.heartbeatGraceMultiplier;
    if (!(this.heartbeatPeriodMs > 0)) throw invalidArgument(`heartbeatPeriodMs ${this.heartbeatPeriodMs} must be > 0`);
    if (!(this.graceMultiplier >= 1)) throw invalidArgument(`graceMultiplier ${this.graceMultiplier} must be ≥ 1`);
    this.reconnectGraceMs = opts.reconnectGraceMs ?? 2 * this.heartbeatPeriodMs * this.graceMultiplier;
    this.statusBatchMs = opts.statusBatchMs ?? 100;
    this.maxStatusBatch = opts.maxStatusBatch ?? 10_000;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? (() => {});
    this.networkOpts = opts.network ?? {};
  }

  /**
   * The cluster-wide network view (see {@link buildNetworkView}), as sessions that ask for it get
   * it in every assignment message; recomputed at most once per store commit.
   */
  networkView(): NetworkView {
    return this.currentNet().view;
  }

  private currentNet(): { view: NetworkView; json: string } {
    if (!this.net || this.netDirty) {
      const view = this.store.view((tx) => buildNetworkView({ nodes: tx.list('nodes'), services: tx.list('services'), tasks: tx.list('tasks'), networks: tx.list('networks'), nowMs: this.clock.now() }, this.networkOpts));
      this.net = { view, json: JSON.stringify(view) };
      this.netDirty = false;
    }
    return this.net;
  }

  /** Grace before a silent node is Down (ms). */
  get graceMs(): number {
    return this.heartbeatPeriodMs * this.graceMultiplier;
  }

  /** Starts serving (call when this manager becomes leader). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unwatch = this.store.watch((ev) => this.onEvent(ev));
    this.rescanHandoffs();
    for (const n of this.store.view((tx) => tx.list('nodes'))) {
      if (n.status.state === 'down' || this.byNode.has(n.id)) continue;
      this.awaiting.set(n.id, this.clock.setTimeout(() => this.onReconnectTimeout(n.id), this.reconnectGraceMs));
    }
  }

  /** Stops serving: writes queued statuses if it still can, then ends every session with Unavailable. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unwatch?.();
    this.unwatch = undefined;
    for (const h of this.awaiting.values()) this.clock.clearTimeout(h);
    this.awaiting.clear();
    this.clearHandoffs();
    // Agents resend unacknowledged statuses to the next leader, so this write is best effort and bounded.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flush().catch(() => {}),
      new Promise<void>((r) => { timer = setTimeout(r, 1000); timer.unref(); }),
    ]);
    clearTimeout(timer);
    for (const s of [...this.sessions.values()]) {
      this.endSession(s, unavailable('dispatcher stopped: this manager is no longer the leader; reconnect to the current leader'));
    }
  }

  /** Nodes with an open session (for tests and `node ls`). */
  connectedNodes(): string[] {
    return [...this.byNode.keys()];
  }

  async openSession(req: SessionRequest): Promise<SessionInfo> {
    this.mustRun();
    if (!req || typeof req.nodeId !== 'string' || !req.nodeId) throw invalidArgument('openSession: nodeId is required (the node ID from the node certificate)');
    const removed = this.store.view((tx) => tx.list('clusters')[0]?.removedNodes ?? []);
    if (removed.includes(req.nodeId)) throw failedPrecondition(`node ${req.nodeId} was removed from the swarm; join it again with a join token`);
    const now = new Date().toISOString();
    try {
      await this.store.update((tx) => {
        const n = tx.get('nodes', req.nodeId);
        const status: Node['status'] = { state: 'ready', message: '', addr: req.addr ?? '' };
        if (n) {
          n.status = status;
          if (req.description) n.description = req.description;
          tx.update('nodes', n);
        } else {
          tx.create('nodes', {
            id: req.nodeId, meta: { version: 0, createdAt: now, updatedAt: now }, role: 'worker',
            spec: { labels: {}, desiredRole: 'worker', availability: 'active' },
            ...(req.description ? { description: req.description } : {}), status,
          });
        }
      });
    } catch (e) {
      throw e instanceof ShoalError && e.code !== 'Aborted' ? e : unavailable(`cannot register node ${req.nodeId}: ${(e as Error).message}`);
    }
    this.mustRun();
    const old = this.byNode.get(req.nodeId);
    if (old) this.endSession(old, unavailable(`session ${old.id} replaced by a newer session of node ${req.nodeId}`));
    const waiting = this.awaiting.get(req.nodeId);
    if (waiting) this.clock.clearTimeout(waiting);
    this.awaiting.delete(req.nodeId);
    const s: Session = { id: newId(), nodeId: req.nodeId, timer: undefined, watchers: new Set(), networkView: req.networkView === true };
    this.sessions.set(s.id, s);
    this.byNode.set(s.nodeId, s);
    this.arm(s);
    this.log('dispatcher: session open', { nodeId: s.nodeId, sessionId: s.id });
    return { sessionId: s.id, heartbeatPeriodMs: this.heartbeatPeriodMs, managers: this.managers() };
  }

  async heartbeat(sessionId: string): Promise<{ heartbeatPeriodMs: number }> {
    const s = this.session(sessionId);
    this.arm(s);
    return { heartbeatPeriodMs: this.heartbeatPeriodMs };
  }

  /**
   * Subscribes to the node's assignment set. An unknown session ends the stream at once (onEnd
   * with Unavailable). The returned function unsubscribes without calling onEnd.
   */
  watchAssignments(sessionId: string, onAssignments: (a: Assignments) => void, onEnd: (err?: Error) => void): () => void {
    let s: Session;
    try {
      s = this.session(sessionId);
    } catch (e) {
      queueMicrotask(() => onEnd(e as Error));
      return () => {};
    }
    const w: Watcher = { onAssignments, onEnd, sent: undefined, sentNet: undefined };
    s.watchers.add(w);
    this.push(s, w);
    return () => s.watchers.delete(w);
  }

  /**
   * Queues status updates from the session's node. Updates for tasks not on that node, unknown
   * tasks, unknown states and backward moves are dropped (logged), never retried by the agent.
   * Resolves once the batch holding them is committed.
   * @throws Unavailable for an unknown session or when the write fails (the agent resends).
   */
  updateTaskStatus(sessionId: string, updates: TaskStatusUpdate[]): Promise<void> {
    let s: Session;
    try {
      s = this.session(sessionId);
    } catch (e) {
      return Promise.reject(e);
    }
    for (const u of updates ?? []) {
      if (!u || typeof u.taskId !== 'string' || !u.status || !KNOWN_STATES.has(u.status.state)) {
        this.log('dispatcher: dropping malformed status update', { nodeId: s.nodeId, update: u });
        continue;
      }
      const prev = this.queued.get(u.taskId);
      if (prev && taskStateRank(prev.status.state) > taskStateRank(u.status.state)) continue;
      this.queued.set(u.taskId, { nodeId: s.nodeId, status: u.status });
    }
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.queued.size >= this.maxStatusBatch) {
      void this.flush();
    } else if (!this.flushTimer) {
      this.flushTimer = this.clock.setTimeout(() => void this.flush(), this.statusBatchMs);
    }
    return done;
  }

  /** Writes queued status updates now (one store transaction). */
  flush(): Promise<void> {
    if (this.flushTimer) this.clock.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.queued;
    const waiters = this.waiters;
    this.queued = new Map();
    this.waiters = [];
    const run = async () => {
      if (batch.size === 0) {
        for (const w of waiters) w.resolve();
        return;
      }
      try {
        await this.store.update((tx) => {
          for (const [taskId, q] of batch) {
            const cur = tx.get('tasks', taskId);
            if (!cur) continue;
            if (cur.nodeId !== q.nodeId) {
              this.log('dispatcher: node reported a task that is not assigned to it', { nodeId: q.nodeId, taskId, assignedTo: cur.nodeId });
              continue;
            }
            const from = taskStateRank(cur.status.state);
            const to = taskStateRank(q.status.state);
            if (to < from || (to === from && JSON.stringify(cur.status) === JSON.stringify(q.status))) continue;
            cur.status = structuredClone(q.status);
            tx.update('tasks', cur);
          }
        });
        for (const w of waiters) w.resolve();
      } catch (e) {
        const err = unavailable(`task status not recorded: ${(e as Error).message}`);
        for (const w of waiters) w.reject(err);
      }
    };
    this.flushing = this.flushing.then(run);
    return this.flushing;
  }

  private mustRun(): void {
    if (!this.running) throw unavailable('dispatcher is not running on this manager (not the leader); reconnect to the current leader');
  }

  private session(id: string): Session {
    this.mustRun();
    const s = this.sessions.get(id);
    if (!s) throw unavailable(`session ${id} is unknown or expired; open a new session`);
    return s;
  }

  private arm(s: Session): void {
    if (s.timer) this.clock.clearTimeout(s.timer);
    s.timer = this.clock.setTimeout(() => this.onExpired(s), this.graceMs);
  }

  private endSession(s: Session, err: Error): void {
    if (s.timer) this.clock.clearTimeout(s.timer);
    s.timer = undefined;
    this.sessions.delete(s.id);
    if (this.byNode.get(s.nodeId) === s) this.byNode.delete(s.nodeId);
    const ws = [...s.watchers];
    s.watchers.clear();
    for (const w of ws) queueMicrotask(() => w.onEnd(err));
  }

  private onExpired(s: Session): void {
    this.log('dispatcher: heartbeat failure', { nodeId: s.nodeId, sessionId: s.id });
    this.endSession(s, unavailable(`session ${s.id} expired: no heartbeat for ${this.graceMs} ms`));
    void this.markDown(s.nodeId);
  }

  private onReconnectTimeout(nodeId: string): void {
    this.awaiting.delete(nodeId);
    if (!this.byNode.has(nodeId)) void this.markDown(nodeId);
  }

  private async markDown(nodeId: string): Promise<void> {
    try {
      await this.store.update((tx) => {
        const n = tx.get('nodes', nodeId);
        if (!n || n.status.state === 'down' || this.byNode.has(nodeId) || !this.running) return;
        n.status = { ...n.status, state: 'down', message: 'heartbeat failure' };
        tx.update('nodes', n);
      });
    } catch (e) {
      this.log('dispatcher: could not mark node down', { nodeId, error: (e as Error).message });
    }
  }

  private managers(): { nodeId: string; addr: string }[] {
    return this.store.view((tx) => tx.list('nodes'))
      .filter((n) => n.role === 'manager' && n.managerStatus?.addr)
      .map((n) => ({ nodeId: n.id, addr: n.managerStatus!.addr }));
  }

  private onEvent(ev: StoreEvent): void {
    if (ev.kind === 'commit') {
      this.pushDirty();
      return;
    }
    if (ev.kind === 'restore') {
      for (const id of this.byNode.keys()) this.dirtyNodes.add(id);
      this.netDirty = true;
      this.rescanHandoffs();
      return;
    }
    if (ev.table === 'tasks' || ev.table === 'services' || ev.table === 'nodes' || ev.table === 'networks') this.netDirty = true;
    if (ev.table === 'tasks') {
      const t = ev.object as Task;
      const old = ev.old as Task | undefined;
      if (t.nodeId && this.byNode.has(t.nodeId)) this.dirtyNodes.add(t.nodeId);
      if (old?.nodeId && old.nodeId !== t.nodeId && this.byNode.has(old.nodeId)) this.dirtyNodes.add(old.nodeId);
      this.trackHandoff(t, ev.kind === 'delete');
      this.successorChanged(t, ev.kind === 'delete');
    } else if (ev.table === 'nodes' && ev.kind === 'delete') {
      const s = this.byNode.get(ev.object.id);
      if (s) this.endSession(s, unavailable(`node ${s.nodeId} was removed from the swarm`));
    }
  }

  /** Sends a fresh set to every watcher of a dirty node (and of every node, when the network view changed). */
  private pushDirty(): void {
    const nodes = new Set(this.dirtyNodes);
    this.dirtyNodes.clear();
    if (this.netDirty) for (const s of this.byNode.values()) if (s.networkView) nodes.add(s.nodeId);
    for (const id of nodes) {
      const s = this.byNode.get(id);
      if (s) for (const w of s.watchers) this.push(s, w);
    }
  }

  /**
   * Keeps {@link handoffs} and its timers in step with task `t` (just written, or deleted): an old
   * task whose handoff may still hold is watched until it stops, is deleted, or `until` passes.
   */
  private trackHandoff(t: Task, deleted: boolean): void {
    const h = t.handoff;
    const until = h ? Date.parse(h.until) : NaN;
    const desired = taskStateRank(t.desiredState);
    const watch = !deleted && h !== undefined && desired > RUNNING && desired < REMOVE && !isTerminal(t.status.state)
      && this.clock.now() < until;
    if (!watch) {
      this.untrackHandoff(t.id, h?.to);
      return;
    }
    let olds = this.handoffs.get(h.to);
    if (!olds) this.handoffs.set(h.to, (olds = new Map()));
    olds.set(t.id, t.nodeId);
    if (!this.handoffTimers.has(t.id)) {
      this.handoffTimers.set(t.id, this.clock.setTimeout(() => this.onHandoffDue(t.id, h.to), until - this.clock.now()));
    }
  }

  private untrackHandoff(oldId: string, to: string | undefined): void {
    const timer = this.handoffTimers.get(oldId);
    if (timer) this.clock.clearTimeout(timer);
    this.handoffTimers.delete(oldId);
    if (to === undefined) return;
    const olds = this.handoffs.get(to);
    olds?.delete(oldId);
    if (olds?.size === 0) this.handoffs.delete(to);
  }

  /** `t` changed or went away: the nodes of the tasks handing over to it get a fresh set. */
  private successorChanged(t: Task, deleted: boolean): void {
    const olds = this.handoffs.get(t.id);
    if (!olds) return;
    for (const nodeId of olds.values()) if (this.byNode.has(nodeId)) this.dirtyNodes.add(nodeId);
    // Running, ended, no longer wanted or gone: no handoff to it can hold any more.
    if (deleted || t.status.state === 'running' || isTerminal(t.status.state) || taskStateRank(t.desiredState) > RUNNING) {
      for (const oldId of [...olds.keys()]) this.untrackHandoff(oldId, t.id);
    }
  }

  /** A handoff's `until` passed: its node gets the task's real desired state, the view drains it. */
  private onHandoffDue(oldId: string, to: string): void {
    const nodeId = this.handoffs.get(to)?.get(oldId);
    this.handoffTimers.delete(oldId);
    this.untrackHandoff(oldId, to);
    if (!this.running) return;
    if (nodeId && this.byNode.has(nodeId)) this.dirtyNodes.add(nodeId);
    this.netDirty = true;
    this.pushDirty();
  }

  private clearHandoffs(): void {
    for (const h of this.handoffTimers.values()) this.clock.clearTimeout(h);
    this.handoffTimers.clear();
    this.handoffs.clear();
  }

  /** Rebuilds {@link handoffs} from the store (start, snapshot restore). */
  private rescanHandoffs(): void {
    this.clearHandoffs();
    for (const t of this.store.view((tx) => tx.list('tasks'))) if (t.handoff) this.trackHandoff(t, false);
  }

  /**
   * The node's set as it is sent: the tasks it must know about, each one whose handoff is pending
   * as a copy with desired state RUNNING (`held`).
   */
  private assignmentsOf(nodeId: string): { task: Task; held: boolean }[] {
    const now = this.clock.now();
    return this.store.view((tx) => assignedTo(tx.tasksByNode(nodeId)).map((t) => {
      const held = t.handoff !== undefined && handoffPending(t, tx.get('tasks', t.handoff.to), now);
      return { task: held ? { ...t, desiredState: 'running' } : t, held };
    }));
  }

  /**
   * Sends the node's set to one watcher unless it equals what that watcher last got. A change of
   * a task's observed status alone (the agent's own report) does not count once the task is past
   * ASSIGNED; anything else about a member (desired state, spec, networks…) does.
   */
  private push(s: Session, w: Watcher): void {
    const set = this.assignmentsOf(s.nodeId);
    const tasks = set.map((x) => x.task);
    const prev = w.sent;
    const next = new Map<string, { version: number; held: boolean; stable: string }>();
    let changed = !prev || prev.size !== tasks.length;
    for (const { task: t, held } of set) {
      const p = prev?.get(t.id);
      if (p && p.version === t.meta.version && p.held === held) {
        next.set(t.id, p);
        continue;
      }
      const stable = stableKey(t);
      if (!p || p.stable !== stable) changed = true;
      next.set(t.id, { version: t.meta.version, held, stable });
    }
    w.sent = next;
    let network: NetworkView | undefined;
    if (s.networkView) {
      const net = this.currentNet();
      network = net.view;
      if (w.sentNet !== net.json) changed = true;
      w.sentNet = net.json;
    }
    if (!changed) return;
    queueMicrotask(() => {
      if (!s.watchers.has(w)) return;
      try {
        w.onAssignments(network ? { tasks, network } : { tasks });
      } catch (e) {
        this.log('dispatcher: assignment handler threw', { nodeId: s.nodeId, error: (e as Error).message });
      }
    });
  }
}
