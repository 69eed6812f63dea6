import { type Node, type Service, type Task, type TaskState, DEFAULTS, isTerminal, taskStateRank } from '@shoal/api';
import type { MemoryStore, ReadTx, StoreEvent, Tx } from '@shoal/store';
import { Reconciler, type ComponentOptions } from './reconciler.js';
import { RestartSupervisor } from './restart.js';
import { byAge, hasStopped, isRunnable, iso, newTask, nodeDown, parseTime, raiseDesired } from './tasks.js';
import { RollingUpdater, type UpdateSlot } from './update.js';

export interface OrchestratorOptions extends ComponentOptions {
  /** Shared restart supervisor; one is made (and started/stopped with this component) when absent. */
  restart?: RestartSupervisor;
  /**
   * Replicated services only: the longest (ms) a RUNNING task drained off its node keeps running
   * while its replacement starts, for start-first services (`Task.handoff.until`). Default
   * `DRAIN_HANDOFF_MS` (60 000).
   */
  drainHandoffMs?: number;
}

/** One replica slot (replicated) or one node (global) of a service, during a reconcile pass. */
export interface Slot {
  /** `<serviceId>/<slot>` or `<serviceId>/node:<nodeId>`: the restart supervisor's key. */
  key: string;
  slot: number;
  nodeId: string;
  /** The slot's tasks with desired state below REMOVE, oldest first. */
  hist: Task[];
  /** The slot's one desired-running task after this pass's clean-up. */
  cur?: Task;
}

/**
 * The working set of one service during one transaction: mutable copies of its tasks, a node cache,
 * and the side effects (timers, restart bookkeeping) to run only once the transaction commits.
 */
export class ServiceWork {
  readonly tasks: Task[];
  readonly effects: (() => void)[] = [];
  private changed = new Set<Task>();
  /** Tasks deleted by {@link pruneHistory} in this transaction. */
  private pruned = new Set<string>();
  private nodes = new Map<string, Node | undefined>();
  private svcChanged = false;
  private creates = 0;
  /** Tasks created per transaction at most (SwarmKit batches 200 changes per transaction too). */
  static readonly MAX_CREATES = 200;

  /**
   * @param read the committed state the transaction started from (frozen objects, no copies: this
   *   runs synchronously at the start of the transaction, before any write). Tasks are shallow
   *   copies: only top-level fields are ever changed (`desiredState`, a whole new `status`).
   */
  constructor(readonly tx: Tx, private readonly read: ReadTx, public svc: Service, readonly now: number, readonly restart: RestartSupervisor) {
    this.tasks = read.tasksByService(svc.id).map((t) => ({ ...t }));
  }

  node(id: string): Node | undefined {
    if (!id) return undefined;
    if (!this.nodes.has(id)) this.nodes.set(id, this.read.get('nodes', id));
    return this.nodes.get(id);
  }

  /** All nodes (frozen). */
  allNodes(): Node[] {
    return this.read.list('nodes');
  }

  /** Forgets pending writes of tasks matching `pred` (they are being deleted instead). */
  dropChanges(pred: (t: Task) => boolean): void {
    for (const t of this.changed) if (pred(t)) this.changed.delete(t);
  }

  /** Marks a task copy edited in place for writing. */
  markChanged(t: Task): void {
    this.changed.add(t);
  }

  setDesired(t: Task, to: TaskState): void {
    if (raiseDesired(t, to)) this.changed.add(t);
  }

  /** Creates a task in `slot` on `nodeId` (global) with a creation time after every task in `after`. */
  create(slot: number, nodeId: string, after: readonly Task[]): Task {
    let at = this.now;
    for (const t of after) at = Math.max(at, (parseTime(t.meta.createdAt) ?? 0) + 1);
    const t = newTask(this.svc, slot, nodeId, at);
    this.tx.create('tasks', t);
    this.creates++;
    this.pruneHistory(slot, nodeId);
    return t;
  }

  /**
   * Deletes, in the same transaction as a replacement is created, the slot's old stopped tasks
   * beyond the history limit (newest kept), so the slot never shows more than `1 + limit` records
   * even between task-reaper batches (B06). The reaper applies the same rule to everything else.
   */
  private pruneHistory(slot: number, nodeId: string): void {
    const limit = this.read.list('clusters')[0]?.spec.taskHistoryRetentionLimit ?? DEFAULTS.cluster.taskHistoryRetentionLimit;
    if (limit < 0) return;
    const shutdown = taskStateRank('shutdown');
    const remove = taskStateRank('remove');
    const old = this.tasks
      .filter((t) => t.slot === slot && (slot !== 0 || t.nodeId === nodeId))
      .filter((t) => taskStateRank(t.desiredState) >= shutdown && taskStateRank(t.desiredState) < remove && this.stopped(t))
      .sort(byAge)
      .reverse();
    const drop = new Set(old.slice(limit));
    if (drop.size === 0) return;
    this.dropChanges((t) => drop.has(t));
    for (const t of drop) {
      this.tx.delete('tasks', t.id);
      this.pruned.add(t.id);
      this.tasks.splice(this.tasks.indexOf(t), 1);
    }
  }

  /** The creation budget of this transaction is spent: stop creating, another pass follows. */
  get full(): boolean {
    return this.creates >= ServiceWork.MAX_CREATES;
  }

  /** Marks the service object for writing (updateStatus, rollback). */
  touchService(): void {
    this.svcChanged = true;
  }

  stopped(t: Task): boolean {
    return hasStopped(t, this.node(t.nodeId));
  }

  /** The task's node is Down or deleted. */
  onDeadNode(t: Task): boolean {
    return t.nodeId !== '' && nodeDown(this.node(t.nodeId));
  }

  /** The task's node is being drained. */
  onDrainedNode(t: Task): boolean {
    return t.nodeId !== '' && this.node(t.nodeId)?.spec.availability === 'drain';
  }

  flush(): void {
    for (const t of this.changed) if (!this.pruned.has(t.id)) this.tx.update('tasks', t);
    if (this.svcChanged) this.tx.update('services', this.svc);
  }
}

/**
 * Shared machinery of the replicated and global orchestrators: the store watch, the per-service
 * transaction, service removal, the per-slot clean-up, restarts of ended tasks, and rolling updates.
 * Subclasses decide which slots a service should have ({@link ServiceOrchestrator.reconcileSlots}).
 */
export abstract class ServiceOrchestrator extends Reconciler {
  protected readonly restart: RestartSupervisor;
  protected readonly updater = new RollingUpdater();
  private readonly ownsRestart: boolean;
  private offDue?: () => void;

  constructor(store: MemoryStore, opts: OrchestratorOptions = {}) {
    super(store, opts);
    this.ownsRestart = !opts.restart;
    this.restart = opts.restart ?? new RestartSupervisor({ clock: this.clock });
  }

  override start(): void {
    if (this.isStarted) return;
    if (this.ownsRestart) this.restart.start();
    this.offDue = this.restart.onDue((id) => this.mark(id));
    super.start();
  }

  override stop(): void {
    this.offDue?.();
    this.offDue = undefined;
    if (this.ownsRestart) this.restart.stop();
    super.stop();
  }

  /** Whether this orchestrator handles `svc` (by mode). */
  protected abstract handles(svc: Service): boolean;

  /** Builds and reconciles the service's slots inside the transaction. */
  protected abstract reconcileSlots(w: ServiceWork): Slot[];

  protected allKeys(): string[] {
    return this.store.view((tx) => tx.list('services').filter((s) => this.handles(s)).map((s) => s.id));
  }

  protected onEvent(ev: Extract<StoreEvent, { kind: 'create' | 'update' | 'delete' }>): void {
    if (ev.table === 'services') {
      const svc = ev.object as Service;
      if (ev.kind === 'delete') {
        this.restart.forgetService(svc.id);
        this.updater.forget(svc.id);
      } else if (this.handles(svc)) {
        this.mark(svc.id);
      }
    } else if (ev.table === 'tasks') {
      const t = ev.object as Task;
      const old = ev.old as Task | undefined;
      if (ev.kind === 'delete') this.restart.forgetTask(t.id);
      // A scheduling reason appearing (or going) on a pending task matters too: the rolling updater
      // does not wait for a replacement that cannot be placed (update.ts).
      if (ev.kind !== 'update' || !old || old.desiredState !== t.desiredState || old.status.state !== t.status.state || old.nodeId !== t.nodeId
        || !old.status.err !== !t.status.err) {
        this.mark(t.serviceId);
      }
    } else if (ev.table === 'nodes') {
      const n = ev.object as Node;
      const old = ev.old as Node | undefined;
      if (ev.kind === 'update' && old && !nodeChanged(old, n)) return;
      this.onNodeChange(n);
    }
  }

  /** A node appeared, went away or changed state/availability/labels. */
  protected onNodeChange(n: Node): void {
    const ids = new Set(this.store.view((tx) => tx.tasksByNode(n.id).map((t) => t.serviceId)));
    for (const id of ids) this.mark(id);
  }

  protected async reconcile(keys: string[]): Promise<void> {
    let firstError: unknown;
    for (const id of keys) {
      if (!this.isStarted) return;
      try {
        const effects = await this.store.update((tx) => this.reconcileService(tx, id), { retries: 10 });
        for (const fx of effects) fx();
      } catch (e) {
        firstError ??= e;
      }
    }
    if (firstError) throw firstError;
  }

  private reconcileService(tx: Tx, id: string): (() => void)[] {
    // Reads go to the committed state without copying (the transaction has written nothing yet);
    // only what changes is copied and written through `tx`, with its version checked at commit.
    return this.store.view((read) => {
      const cur = read.get('services', id);
      if (!cur || !this.handles(cur)) return [];
      return this.reconcileIn(tx, read, { ...cur });
    });
  }

  private reconcileIn(tx: Tx, read: ReadTx, svc: Service): (() => void)[] {
    const id = svc.id;
    const w = new ServiceWork(tx, read, svc, this.clock.now(), this.restart);
    const slots = this.reconcileSlots(w);
    this.update(w, slots);
    w.flush();
    if (w.full) w.effects.push(() => this.mark(id));
    return w.effects;
  }

  /**
   * First step for every slot: a desired-running task whose status is terminal ended by itself — it
   * gets desired SHUTDOWN (its slot is refilled later, by the restart policy); of several
   * desired-running tasks (never made by us, but a store can hold anything) the best one is kept.
   * Sets `slot.cur`.
   */
  protected settleSlot(w: ServiceWork, s: Slot): void {
    for (const t of s.hist) {
      if (isRunnable(t) && isTerminal(t.status.state)) {
        w.setDesired(t, 'shutdown');
        this.restart.noteEnded(t, w.now); // idempotent: the first sighting wins
        this.onTaskFailed(w, t);
      }
    }
    const runnable = s.hist.filter(isRunnable);
    if (runnable.length === 2 && this.startFirstInFlight(w, runnable[0]!, runnable[1]!)) {
      // start-first update in flight: the old task runs until its replacement is RUNNING.
      const [old, fresh] = runnable as [Task, Task];
      if (w.onDeadNode(old) || w.onDrainedNode(old)) w.setDesired(old, 'shutdown');
      s.cur = fresh;
      return;
    }
    if (runnable.length > 1) {
      const v = w.svc.specVersion;
      runnable.sort((a, b) =>
        Number(b.status.state === 'running') - Number(a.status.state === 'running')
        || Number(b.specVersion === v) - Number(a.specVersion === v)
        || byAge(b, a));
      for (const extra of runnable.slice(1)) w.setDesired(extra, 'shutdown');
    }
    s.cur = runnable[0];
  }

  /**
   * `old` (out of date, older) and `fresh` (current spec, newer, not yet RUNNING) are the two halves
   * of a start-first replacement.
   */
  private startFirstInFlight(w: ServiceWork, old: Task, fresh: Task): boolean {
    const v = w.svc.specVersion;
    return RollingUpdater.config(w.svc).order === 'start-first' && old.specVersion !== v && fresh.specVersion === v
      && fresh.status.state !== 'running';
  }

  /**
   * Refills a slot that has no desired-running task. Its latest task `last` decides:
   * - out of date (a rolling update shut it down): replace once it has stopped (stop-first);
   * - ended by itself (terminal status — also when its node has since gone down or been drained):
   *   the restart policy decides — now, after the delay (a timer brings us back), or never (the slot
   *   stays empty and the old task keeps its status and error for `service ps`);
   * - anything else (shut down while still running because its node went down or was drained — the
   *   replacement is normally made in the same pass): replace at once, no delay, no attempt used.
   */
  protected refill(w: ServiceWork, s: Slot, create: () => Task): void {
    const last = s.hist[s.hist.length - 1];
    if (!last) {
      s.cur = create();
      return;
    }
    if (last.specVersion !== w.svc.specVersion) {
      if (w.stopped(last)) s.cur = create();
      return;
    }
    if (!isTerminal(last.status.state)) {
      s.cur = create();
      return;
    }
    const d = this.restart.decide(w.svc, s.key, last, s.hist, w.now);
    if (d.kind === 'now') {
      s.cur = create();
      const svc = w.svc;
      const now = w.now;
      w.effects.push(() => this.restart.recordRestart(svc, s.key, last.id, now));
    } else if (d.kind === 'at') {
      const id = w.svc.id;
      w.effects.push(() => this.restart.wake(id, s.key, d.dueMs));
    } else {
      const name = `${w.svc.spec.name}.${s.slot || s.nodeId}`;
      if (d.limit && !(last.status.err ?? '').includes(GAVE_UP)) {
        // Make the give-up visible in `service ps` (ERROR column): the old error, then why no restart.
        last.status = { ...last.status, err: `${last.status.err ? `${last.status.err}; ` : ''}${GAVE_UP}: ${d.reason}` };
        w.markChanged(last);
        w.effects.push(() => this.log.info({ task: name, reason: d.reason }, 'not restarting task'));
      }
    }
  }

  /** Rolling update over the reconciled slots (see {@link RollingUpdater}). */
  private update(w: ServiceWork, slots: Slot[]): void {
    const view: UpdateSlot[] = slots.map((s) => {
      const last = s.hist[s.hist.length - 1];
      const idx = s.cur ? s.hist.indexOf(s.cur) : -1;
      return {
        key: s.key,
        ...(s.cur ? { cur: s.cur } : last ? { last } : {}),
        ...(idx > 0 ? { prev: s.hist[idx - 1]! } : {}),
        stopped: s.cur ? w.stopped(s.cur) : last ? w.stopped(last) : true,
      };
    });
    const plan = this.updater.plan(w.svc, view, w.now);
    if (plan.status) {
      w.svc.updateStatus = plan.status;
      w.touchService();
    }
    if (plan.wakeAtMs !== undefined) {
      const id = w.svc.id;
      const at = plan.wakeAtMs;
      w.effects.push(() => this.restart.wake(id, `${id}/update`, at));
    }
    const byKey = new Map(slots.map((s) => [s.key, s]));
    for (const key of plan.replace) {
      const s = byKey.get(key);
      if (!s?.cur) continue;
      const old = s.cur;
      if (RollingUpdater.config(w.svc).order === 'start-first' && !w.stopped(old) && !w.full) {
        s.cur = this.createIn(w, s); // the old task is shut down once this one is RUNNING
        continue;
      }
      w.setDesired(old, 'shutdown');
      s.cur = undefined;
      if (w.stopped(old)) s.cur = this.createIn(w, s);
    }
  }

  /** Creates the replacement task for slot `s`. */
  protected abstract createIn(w: ServiceWork, s: Slot): Task;

  /** A task of the current spec ended by itself: maybe an update failure (pause / rollback). */
  private onTaskFailed(w: ServiceWork, t: Task): void {
    const svc = w.svc;
    if (t.specVersion !== svc.specVersion || !svc.updateStatus) return;
    const touched = new Set(w.tasks.filter((x) => x.specVersion === svc.specVersion).map((x) => x.slot || x.nodeId)).size;
    const action = this.updater.taskFailed(svc, t, touched);
    const now = iso(w.now);
    if (action === 'pause') {
      const rollingBack = svc.updateStatus.state.startsWith('rollback');
      svc.updateStatus = {
        ...svc.updateStatus,
        state: rollingBack ? 'rollback_paused' : 'paused',
        message: `${rollingBack ? 'rollback' : 'update'} paused due to failure or early termination of task ${t.id}`,
      };
      w.touchService();
    } else if (action === 'rollback' && svc.previousSpec) {
      const cur = svc.spec;
      svc.spec = svc.previousSpec;
      svc.previousSpec = cur;
      svc.specVersion += 1;
      svc.updateStatus = { state: 'rollback_started', startedAt: now, message: `update rolled back due to failure or early termination of task ${t.id}` };
      w.touchService();
    }
  }
}

/** Whether a node change matters to orchestration (liveness, availability, labels, role, description). */
function nodeChanged(a: Node, b: Node): boolean {
  return a.status.state !== b.status.state || a.role !== b.role || a.status.addr !== b.status.addr
    || JSON.stringify(a.spec) !== JSON.stringify(b.spec) || JSON.stringify(a.description) !== JSON.stringify(b.description);
}

/** Prefix of the note appended to `status.err` of a task whose slot ran out of restart attempts. */
export const GAVE_UP = 'not restarted';
