import {
  DEFAULTS, ShoalError, TASK_STATES, invalidArgument, failedPrecondition, newId, unavailable,
  type Assignments, type NetworkView, type Node, type SessionInfo, type SessionRequest, type Task, type TaskStatusUpdate,
} from '@shoal/api';
import { childLogger, errMessage, isoNow, nopLogger, nopMetrics, systemClock, type Clock, type Counter, type Gauge, type Logger, type Metrics } from '@shoal/runtime';
import type { MemoryStore, StoreEvent } from '@shoal/store';
import { assignmentsOf, dependenciesOf, HandoffHolds, recordSent } from './assignments.js';
import { Liveness, type Session, type Watcher } from './liveness.js';
import { buildNetworkView, type NetworkViewOptions } from './network.js';
import { StatusBatcher } from './status-batcher.js';

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
  /** Time source for heartbeats, reconnect windows, handoffs and batching (default {@link systemClock}). */
  clock?: Clock;
  /** Default {@link nopLogger}; lines carry `component: 'dispatcher'`. */
  logger?: Logger;
  /** Overlay ranges reported in the {@link NetworkView} (defaults: `DEFAULTS.overlay`). */
  network?: NetworkViewOptions;
  /**
   * `shoal_dispatcher_sessions` (open agent sessions, at scrape time),
   * `shoal_dispatcher_sessions_opened_total`, `shoal_dispatcher_heartbeat_misses_total{kind}`
   * (`expired`: a session went a grace period without a heartbeat; `no_reconnect`: a node did not
   * reach a new leader within its reconnect window). Default {@link nopMetrics}.
   */
  metrics?: Metrics;
}

const KNOWN_STATES: ReadonlySet<string> = new Set(TASK_STATES);

/**
 * The dispatcher (SwarmKit `manager/dispatcher`, behaviour only): the leader's end of the agent
 * protocol ({@link DispatcherClient} in `@shoal/api`), transport-free. Adapters: in-process
 * ({@link localDispatcherClient}) and gRPC (elsewhere). Split at SwarmKit's seams: sessions and
 * heartbeats in {@link Liveness} (`liveness.ts`), status batching in {@link StatusBatcher}
 * (`status-batcher.ts`), assignment sets and handoff holds in `assignments.ts`; this class wires
 * them to the store.
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
 *   agent reported itself — excepted). With the set go the secrets and configs its tasks use, and
 *   only those ({@link dependenciesOf}): secret data reaches only the nodes that run a task using it.
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
  private readonly clock: Clock;
  private readonly log: Logger;
  private running = false;
  private unwatch: (() => void) | undefined;
  private readonly liveness: Liveness;
  private readonly statuses: StatusBatcher;
  private readonly holds: HandoffHolds;
  private dirtyNodes = new Set<string>();
  private readonly networkOpts: NetworkViewOptions;
  /** The manager list sent to agents, recomputed lazily after a commit that changed a manager. */
  private mgrs: { list: { nodeId: string; addr: string }[]; json: string } | undefined;
  private mgrsDirty = true;
  /** The network view and its JSON, recomputed lazily after a commit that touched its tables. */
  private net: { view: NetworkView; json: string } | undefined;
  private netDirty = true;
  private readonly metrics: Metrics;
  private readonly sessionsGauge: Gauge;
  private readonly opened: Counter;
  private readonly misses: Counter;
  private uncollect: (() => void) | undefined;

  constructor(private readonly store: MemoryStore, opts: DispatcherOptions = {}) {
    this.heartbeatPeriodMs = opts.heartbeatPeriodMs ?? DEFAULTS.cluster.dispatcher.heartbeatPeriodMs;
    this.graceMultiplier = opts.graceMultiplier ?? DEFAULTS.heartbeatGraceMultiplier;
    if (!(this.heartbeatPeriodMs > 0)) throw invalidArgument(`heartbeatPeriodMs ${this.heartbeatPeriodMs} must be > 0`);
    if (!(this.graceMultiplier >= 1)) throw invalidArgument(`graceMultiplier ${this.graceMultiplier} must be ≥ 1`);
    this.reconnectGraceMs = opts.reconnectGraceMs ?? 2 * this.heartbeatPeriodMs * this.graceMultiplier;
    this.clock = opts.clock ?? systemClock;
    this.log = childLogger(opts.logger ?? nopLogger, { component: 'dispatcher' });
    this.networkOpts = opts.network ?? {};
    this.metrics = opts.metrics ?? nopMetrics;
    this.sessionsGauge = this.metrics.gauge({ name: 'shoal_dispatcher_sessions', help: 'Agent sessions open on this manager\'s dispatcher (the leader\'s; 0 elsewhere).' });
    this.opened = this.metrics.counter({ name: 'shoal_dispatcher_sessions_opened_total', help: 'Agent sessions opened on this manager\'s dispatcher.' });
    this.misses = this.metrics.counter({
      name: 'shoal_dispatcher_heartbeat_misses_total',
      help: 'Nodes found silent: kind="expired" a session without a heartbeat for a grace period, kind="no_reconnect" a node that did not reach a new leader in time.',
      labelNames: ['kind'],
    });
    this.liveness = new Liveness(this.clock, this.graceMs, (s) => this.onExpired(s), (nodeId) => {
      this.misses.inc({ kind: 'no_reconnect' });
      void this.markDown(nodeId);
    });
    this.statuses = new StatusBatcher(store, opts.statusBatchMs ?? 100, opts.maxStatusBatch ?? 10_000, this.clock, this.log);
    this.holds = new HandoffHolds(this.clock, (nodeId) => this.onHandoffDue(nodeId));
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
    this.uncollect = this.metrics.onCollect(() => this.sessionsGauge.set(this.liveness.nodes().length));
    this.holds.rescan(this.store.view((tx) => tx.list('tasks')));
    const up = this.store.view((tx) => tx.list('nodes')).filter((n) => n.status.state !== 'down').map((n) => n.id);
    this.liveness.awaitReconnect(up, this.reconnectGraceMs);
  }

  /** Stops serving: writes queued statuses if it still can, then ends every session with Unavailable. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unwatch?.();
    this.unwatch = undefined;
    this.liveness.stopAwaiting();
    this.holds.clear();
    // Agents resend unacknowledged statuses to the next leader, so this write is best effort and bounded.
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    await Promise.race([
      this.flush().catch(() => {}),
      new Promise<void>((r) => { timer = this.clock.setTimeout(r, 1000); }),
    ]);
    if (timer) this.clock.clearTimeout(timer);
    this.liveness.endAll(unavailable('dispatcher stopped: this manager is no longer the leader; reconnect to the current leader'));
    this.uncollect?.();
    this.uncollect = undefined;
    this.sessionsGauge.set(0);
  }

  /** Nodes with an open session (for tests and `node ls`). */
  connectedNodes(): string[] {
    return this.liveness.nodes();
  }

  async openSession(req: SessionRequest): Promise<SessionInfo> {
    this.mustRun();
    if (!req || typeof req.nodeId !== 'string' || !req.nodeId) throw invalidArgument('openSession: nodeId is required (the node ID from the node certificate)');
    const removed = this.store.view((tx) => tx.list('clusters')[0]?.removedNodes ?? []);
    if (removed.includes(req.nodeId)) throw failedPrecondition(`node ${req.nodeId} was removed from the swarm; join it again with a join token`);
    const now = isoNow(this.clock);
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
    const s = this.liveness.open(newId(), req.nodeId, req.networkView === true,
      (old) => unavailable(`session ${old.id} replaced by a newer session of node ${req.nodeId}`));
    this.opened.inc();
    this.log.info({ nodeId: s.nodeId, sessionId: s.id }, 'session open');
    return { sessionId: s.id, heartbeatPeriodMs: this.heartbeatPeriodMs, managers: this.managers() };
  }

  async heartbeat(sessionId: string): Promise<{ heartbeatPeriodMs: number }> {
    const s = this.session(sessionId);
    this.liveness.beat(s);
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
        this.log.warn({ nodeId: s.nodeId, update: u }, 'dropping malformed status update');
        continue;
      }
      this.statuses.add(s.nodeId, u.taskId, u.status);
    }
    return this.statuses.done();
  }

  /** Writes queued status updates now (one store transaction). */
  flush(): Promise<void> {
    return this.statuses.flush();
  }

  private mustRun(): void {
    if (!this.running) throw unavailable('dispatcher is not running on this manager (not the leader); reconnect to the current leader');
  }

  private session(id: string): Session {
    this.mustRun();
    const s = this.liveness.get(id);
    if (!s) throw unavailable(`session ${id} is unknown or expired; open a new session`);
    return s;
  }

  private onExpired(s: Session): void {
    this.misses.inc({ kind: 'expired' });
    this.log.warn({ nodeId: s.nodeId, sessionId: s.id }, 'heartbeat failure');
    this.liveness.end(s, unavailable(`session ${s.id} expired: no heartbeat for ${this.graceMs} ms`));
    void this.markDown(s.nodeId);
  }

  private async markDown(nodeId: string): Promise<void> {
    try {
      await this.store.update((tx) => {
        const n = tx.get('nodes', nodeId);
        if (!n || n.status.state === 'down' || this.liveness.connected(nodeId) || !this.running) return;
        n.status = { ...n.status, state: 'down', message: 'heartbeat failure' };
        tx.update('nodes', n);
      });
    } catch (e) {
      this.log.warn({ nodeId, err: errMessage(e) }, 'could not mark node down');
    }
  }

  private managers(): { nodeId: string; addr: string }[] {
    return this.currentManagers().list;
  }

  /** The manager list and its JSON, recomputed after a commit that changed a node's role or manager address. */
  private currentManagers(): { list: { nodeId: string; addr: string }[]; json: string } {
    if (!this.mgrs || this.mgrsDirty) {
      const list = this.store.view((tx) => tx.list('nodes'))
        .filter((n) => n.role === 'manager' && n.managerStatus?.addr)
        .map((n) => ({ nodeId: n.id, addr: n.managerStatus!.addr }));
      this.mgrs = { list, json: JSON.stringify(list) };
      this.mgrsDirty = false;
    }
    return this.mgrs;
  }

  private onEvent(ev: StoreEvent): void {
    if (ev.kind === 'commit') {
      this.pushDirty();
      return;
    }
    if (ev.kind === 'restore') {
      for (const id of this.liveness.nodes()) this.dirtyNodes.add(id);
      this.netDirty = true;
      this.holds.rescan(this.store.view((tx) => tx.list('tasks')));
      return;
    }
    if (ev.table === 'tasks' || ev.table === 'services' || ev.table === 'nodes' || ev.table === 'networks') this.netDirty = true;
    if (ev.table === 'nodes') {
      const n = ev.object as Node;
      const old = ev.old as Node | undefined;
      if (ev.kind !== 'update' || !old || old.role !== n.role || old.managerStatus?.addr !== n.managerStatus?.addr) this.mgrsDirty = true;
    }
    if (ev.table === 'tasks') {
      const t = ev.object as Task;
      const old = ev.old as Task | undefined;
      this.markNode(t.nodeId);
      if (old?.nodeId && old.nodeId !== t.nodeId) this.markNode(old.nodeId);
      this.holds.track(t, ev.kind === 'delete');
      for (const nodeId of this.holds.successorChanged(t, ev.kind === 'delete')) this.markNode(nodeId);
    } else if (ev.table === 'nodes' && ev.kind === 'delete') {
      const s = this.liveness.ofNode(ev.object.id);
      if (s) this.liveness.end(s, unavailable(`node ${s.nodeId} was removed from the swarm`));
    }
  }

  /** Node `nodeId` must get a fresh set after this commit (if it has a session). */
  private markNode(nodeId: string | undefined): void {
    if (nodeId && this.liveness.connected(nodeId)) this.dirtyNodes.add(nodeId);
  }

  /** Sends a fresh set to every watcher of a dirty node (and of every node, when the network view changed). */
  private pushDirty(): void {
    const nodes = new Set(this.dirtyNodes);
    this.dirtyNodes.clear();
    if (this.netDirty) for (const s of this.liveness.all()) if (s.networkView) nodes.add(s.nodeId);
    if (this.mgrsDirty) {
      const before = this.mgrs?.json;
      if (this.currentManagers().json !== before) for (const s of this.liveness.all()) nodes.add(s.nodeId);
    }
    for (const id of nodes) {
      const s = this.liveness.ofNode(id);
      if (s) for (const w of s.watchers) this.push(s, w);
    }
  }

  /** A handoff's `until` passed: its node gets the task's real desired state, the view drains it. */
  private onHandoffDue(nodeId: string | undefined): void {
    if (!this.running) return;
    this.markNode(nodeId);
    this.netDirty = true;
    this.pushDirty();
  }

  /**
   * Sends the node's set to one watcher unless it equals what that watcher last got ({@link recordSent});
   * the manager list goes with the first message and with any message after it changed; the
   * secrets and configs the set's unfinished tasks use go with every message.
   */
  private push(s: Session, w: Watcher): void {
    const { set, deps } = this.store.view((tx) => {
      const set = assignmentsOf(tx, s.nodeId, this.clock.now());
      return { set, deps: dependenciesOf(tx, set.map((x) => x.task)) };
    });
    const net = s.networkView ? this.currentNet() : undefined;
    const mgrs = this.currentManagers();
    const newManagers = (w.sentManagers ?? '[]') !== mgrs.json;
    if (!recordSent(w, set, net?.json, deps.key) && !newManagers) return;
    w.sentManagers = mgrs.json;
    const a: Assignments = { tasks: set.map((x) => x.task) };
    if (deps.secrets.length) a.secrets = deps.secrets;
    if (deps.configs.length) a.configs = deps.configs;
    if (net) a.network = net.view;
    if (newManagers) a.managers = mgrs.list;
    queueMicrotask(() => {
      if (!s.watchers.has(w)) return;
      try {
        w.onAssignments(a);
      } catch (e) {
        this.log.warn({ nodeId: s.nodeId, err: errMessage(e) }, 'assignment handler threw');
      }
    });
  }
}
