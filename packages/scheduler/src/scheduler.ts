import { taskStateRank, type Node, type Task } from '@shoal/api';
import { childLogger, errMessage, isoNow, nopLogger, nopMetrics, ReconcileLoop, systemClock, type Clock, type Gauge, type Logger, type Metrics } from '@shoal/runtime';
import type { MemoryStore, StoreEvent } from '@shoal/store';
import { noSuitableNode, Pipeline, type Filter } from './filters.js';
import { Heap } from './heap.js';
import { NodeInfo } from './nodeinfo.js';

export interface SchedulerOptions {
  /** Quiet gap after the last relevant commit before a pass runs (ms, default 50; SwarmKit's). */
  debounceMs?: number;
  /** Longest a pass is delayed while commits keep arriving (ms, default 1000). */
  maxDelayMs?: number;
  /** Decisions per store transaction (default 500, keeps Raft entries well under 1 MiB-ish). */
  maxBatch?: number;
  /** Delay before retrying after a failed pass or write, e.g. leadership lost (ms, default 1000; doubles on each further failure, up to 30×). */
  retryMs?: number;
  /** Filter pipeline (default {@link defaultFilters}). */
  filters?: () => Filter[];
  /** Time source for the debounce, retries, failure windows and status timestamps (default {@link systemClock}). */
  clock?: Clock;
  /** Default {@link nopLogger}; lines carry `component: 'scheduler'`. */
  logger?: Logger;
  /**
   * Pass durations (`shoal_reconcile_pass_duration_seconds{loop="scheduler"}`) and tasks waiting
   * for a node (`shoal_scheduler_pending_tasks`, read at scrape time). Default {@link nopMetrics}.
   */
  metrics?: Metrics;
}

type Decision =
  | { kind: 'assign'; task: Task; nodeId: string }
  | { kind: 'pending'; task: Task; err: string };

const RUNNING = taskStateRank('running');

/** A task the scheduler must place: PENDING, desired state at most RUNNING. */
const wantsScheduling = (t: Task) => t.status.state === 'pending' && taskStateRank(t.desiredState) <= RUNNING;

/**
 * The scheduler (SwarmKit `manager/scheduler`, behaviour only): places PENDING tasks on nodes.
 *
 * - Watches the store; keeps a {@link NodeInfo} per node updated incrementally from events.
 * - Tasks with no node are grouped by service and spec version; for each group the filter
 *   pipeline (ready, availability, resources, constraints, host ports, max replicas) selects
 *   nodes and tasks go one by one to the node that comes first in **spread** order: nodes where
 *   the service failed ≥ 5 times in 5 min last, then fewest active tasks of this service, then
 *   fewest active tasks overall, then node ID.
 * - Tasks that arrive with a node already set (global services) are checked against that node only.
 * - Decisions are written in batches (status ASSIGNED + nodeId). A task no node can take stays
 *   PENDING with `status.err` = `no suitable node (<per-filter reasons>)`, written only when the
 *   text changes; pending tasks are re-evaluated whenever a node or a node's tasks change.
 * - Passes run on the runtime's {@link ReconcileLoop}, debounced as a quiet gap: `debounceMs`
 *   after the last relevant commit, at most `maxDelayMs` after the first. A pass that fails (a
 *   write failed, e.g. leadership lost) is retried after `retryMs`.
 *
 * Only the scheduler sets `task.nodeId` for replicated tasks.
 */
export class Scheduler {
  private nodes = new Map<string, NodeInfo>();
  private unassigned = new Map<string, Task>();
  private preassigned = new Map<string, Task>();
  private dirty = false;
  /** Something relevant happened since the last commit event. */
  private touched = false;
  private unwatch: (() => void) | undefined;
  private stopped = true;
  private readonly maxBatch: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly loop: ReconcileLoop;
  private readonly pipeline: Pipeline;
  private readonly metrics: Metrics;
  private readonly pendingGauge: Gauge;
  private uncollect: (() => void) | undefined;

  constructor(private readonly store: MemoryStore, opts: SchedulerOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.clock = opts.clock ?? systemClock;
    this.log = childLogger(opts.logger ?? nopLogger, { component: 'scheduler' });
    const retryMs = opts.retryMs ?? 1000;
    this.loop = new ReconcileLoop(() => this.pass(), {
      name: 'scheduler',
      debounceMs: opts.debounceMs ?? 50,
      maxDelayMs: opts.maxDelayMs ?? 1000,
      // A failed write usually means leadership was lost (and the manager stops the scheduler);
      // a pass that keeps failing backs off to 30× the first delay rather than logging every second.
      backoff: { initialMs: retryMs, maxMs: 30 * retryMs },
      clock: this.clock,
      logger: this.log,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    });
    this.pipeline = new Pipeline(opts.filters?.());
    this.metrics = opts.metrics ?? nopMetrics;
    this.pendingGauge = this.metrics.gauge({ name: 'shoal_scheduler_pending_tasks', help: 'Tasks waiting for a node (PENDING), as the leader\'s scheduler sees them; 0 on other managers.' });
  }

  /** Loads nodes and tasks from the store, subscribes to changes, and schedules a first pass. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop.start();
    this.unwatch = this.store.watch((ev) => this.onEvent(ev));
    this.uncollect = this.metrics.onCollect(() => this.pendingGauge.set(this.pendingCount));
    this.rebuild();
  }

  /** Stops watching; resolves once an in-flight pass has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    this.unwatch = undefined;
    this.uncollect?.();
    this.uncollect = undefined;
    this.pendingGauge.set(0);
    await this.loop.stop();
  }

  /** Tasks waiting for a node (for tests and metrics). */
  get pendingCount(): number {
    return this.unassigned.size + this.preassigned.size;
  }

  /** Runs a pass now, skipping the debounce (serialised with the debounced ones); resolves when idle. */
  tick(): Promise<void> {
    return this.loop.runNow();
  }

  /** Resolves once no pass is running or due on the next turn of the event loop (tests; see {@link ReconcileLoop.idle}). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  private rebuild(): void {
    this.nodes.clear();
    this.unassigned.clear();
    this.preassigned.clear();
    this.store.view((tx) => {
      for (const n of tx.list('nodes')) this.nodes.set(n.id, new NodeInfo(n));
      for (const t of tx.list('tasks')) this.trackTask(t, undefined);
    });
    this.dirty = this.touched = true;
    this.schedule();
  }

  private onEvent(ev: StoreEvent): void {
    switch (ev.kind) {
      case 'commit': {
        const relevant = this.touched;
        this.touched = false;
        // Unrelated commits (e.g. status reports) must not keep pushing a pending pass back.
        if (relevant || !this.loop.waiting) this.schedule();
        return;
      }
      case 'restore':
        this.rebuild();
        return;
    }
    if (ev.table === 'nodes') {
      if (ev.kind === 'delete') this.nodes.delete(ev.object.id);
      else {
        const info = this.nodes.get(ev.object.id);
        if (info) info.node = ev.object as Node;
        else this.nodes.set(ev.object.id, this.loadNode(ev.object as Node));
      }
      this.dirty = this.touched = true;
    } else if (ev.table === 'tasks') {
      if (ev.kind === 'delete') this.forgetTask(ev.object as Task);
      else this.trackTask(ev.object as Task, ev.old as Task | undefined);
    }
  }

  /** A node seen for the first time mid-stream: pick up tasks already recorded on it. */
  private loadNode(n: Node): NodeInfo {
    const info = new NodeInfo(n);
    for (const t of this.store.view((tx) => tx.tasksByNode(n.id))) info.setTask(t);
    return info;
  }

  private forgetTask(t: Task): void {
    this.unassigned.delete(t.id);
    this.preassigned.delete(t.id);
    if (t.nodeId && this.nodes.get(t.nodeId)?.removeTask(t.id)) this.dirty = this.touched = true;
  }

  private trackTask(t: Task, old: Task | undefined): void {
    if (t.nodeId && old && old.status.state !== t.status.state && (t.status.state === 'failed' || t.status.state === 'rejected')) {
      this.nodes.get(t.nodeId)?.recordFailure(t.serviceId, this.clock.now());
    }
    if (old?.nodeId && old.nodeId !== t.nodeId && this.nodes.get(old.nodeId)?.removeTask(t.id)) this.dirty = this.touched = true;
    if (t.nodeId && this.nodes.get(t.nodeId)?.setTask(t)) this.dirty = this.touched = true;
    const queue = t.nodeId ? this.preassigned : this.unassigned;
    const other = t.nodeId ? this.unassigned : this.preassigned;
    other.delete(t.id);
    if (wantsScheduling(t)) {
      const prev = queue.get(t.id);
      // A pending-reason update (ours) changes nothing the scheduler decides on.
      if (!prev || prev.specVersion !== t.specVersion || prev.desiredState !== t.desiredState) this.dirty = this.touched = true;
      queue.set(t.id, t);
    } else {
      queue.delete(t.id);
    }
  }

  /** Asks the loop for a pass when there is something to place (the kick is debounced there). */
  private schedule(): void {
    if (this.stopped || !this.dirty || this.pendingCount === 0) return;
    this.loop.kick();
  }

  /**
   * One pass: decide for every waiting task, then write the decisions in batches. Throws (after
   * every batch was tried) when a write failed, so the loop retries after `retryMs`.
   */
  private async pass(): Promise<void> {
    if (this.stopped) return;
    this.dirty = false;
    const decisions: Decision[] = [];
    this.placePreassigned(decisions);
    this.placeUnassigned(decisions);
    let failed: unknown;
    for (let i = 0; i < decisions.length && !this.stopped; i += this.maxBatch) {
      failed = (await this.write(decisions.slice(i, i + this.maxBatch))) ?? failed;
    }
    if (failed !== undefined) {
      this.dirty = this.touched = true;
      throw new Error(`writing scheduling decisions failed: ${errMessage(failed)}`);
    }
  }

  private placePreassigned(out: Decision[]): void {
    for (const t of this.preassigned.values()) {
      const info = this.nodes.get(t.nodeId);
      this.pipeline.setTask(t);
      // The task already counts on its node; judge the node without it.
      info?.removeTask(t.id);
      if (info && this.pipeline.check(info)) {
        this.preassigned.delete(t.id);
        info.setTask(assigned(t, t.nodeId));
        out.push({ kind: 'assign', task: t, nodeId: t.nodeId });
      } else {
        info?.setTask(t);
        const err = noSuitableNode(info ? this.pipeline.explain() : `node ${t.nodeId} is not in the cluster`);
        if (t.status.err !== err) out.push({ kind: 'pending', task: t, err });
      }
    }
  }

  private placeUnassigned(out: Decision[]): void {
    const groups = new Map<string, Task[]>();
    for (const t of this.unassigned.values()) {
      const key = `${t.serviceId}\u0000${t.specVersion}`;
      const g = groups.get(key);
      if (g) g.push(t);
      else groups.set(key, [t]);
    }
    const keys = [...groups.keys()].sort();
    for (const key of keys) {
      const tasks = groups.get(key)!.sort((a, b) => a.slot - b.slot || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      this.placeGroup(tasks, out);
    }
  }

  private placeGroup(tasks: Task[], out: Decision[]): void {
    const first = tasks[0]!;
    const svc = first.serviceId;
    this.pipeline.setTask(first);
    const now = this.clock.now();
    const heap = new Heap<NodeInfo>((a, b) => {
      const fa = a.failingFor(svc, now), fb = b.failingFor(svc, now);
      if (fa !== fb) return fb;
      const sa = a.activeOf(svc), sb = b.activeOf(svc);
      if (sa !== sb) return sa < sb;
      if (a.activeTotal !== b.activeTotal) return a.activeTotal < b.activeTotal;
      return a.id < b.id;
    });
    for (const info of this.nodes.values()) if (this.pipeline.check(info)) heap.push(info);
    let i = 0;
    for (; i < tasks.length; i++) {
      const t = tasks[i]!;
      const info = this.nextFit(heap);
      if (!info) break;
      this.unassigned.delete(t.id);
      info.setTask(assigned(t, info.id));
      heap.push(info);
      out.push({ kind: 'assign', task: t, nodeId: info.id });
    }
    if (i === tasks.length) return;
    this.pipeline.resetCounts();
    for (const info of this.nodes.values()) this.pipeline.check(info);
    const err = noSuitableNode(this.pipeline.explain());
    for (; i < tasks.length; i++) {
      const t = tasks[i]!;
      if (t.status.err !== err) out.push({ kind: 'pending', task: t, err });
    }
  }

  /**
   * Pops nodes off `heap` until one still passes the pipeline; nodes that fail it are full after
   * this pass's own placements and stay out of the heap for the rest of the group.
   */
  private nextFit(heap: Heap<NodeInfo>): NodeInfo | undefined {
    for (let info = heap.pop(); info; info = heap.pop()) {
      if (this.pipeline.passes(info)) return info;
    }
    return undefined;
  }

  /**
   * Writes one batch of decisions in a transaction, then reconciles the provisional placements
   * with what the store says. Returns the write error (undefined when it committed); never throws.
   */
  private async write(batch: Decision[]): Promise<unknown> {
    const now = isoNow(this.clock);
    let failed: unknown;
    try {
      await this.store.update((tx) => {
        for (const d of batch) {
          const cur = tx.get('tasks', d.task.id);
          if (!cur || !wantsScheduling(cur)) continue;
          if (d.kind === 'assign') {
            if (cur.nodeId !== '' && cur.nodeId !== d.nodeId) continue;
            cur.nodeId = d.nodeId;
            cur.status = { state: 'assigned', timestamp: now, message: 'scheduler assigned task to node' };
          } else {
            if (cur.status.err === d.err) continue;
            cur.status = { ...cur.status, timestamp: now, err: d.err };
          }
          tx.update('tasks', cur);
        }
      });
    } catch (e) {
      failed = e;
    }
    // Reconcile provisional placements with what the store now says.
    for (const d of batch) {
      if (d.kind !== 'assign') continue;
      const cur = this.store.view((tx) => tx.get('tasks', d.task.id));
      const info = this.nodes.get(d.nodeId);
      if (!cur) {
        info?.removeTask(d.task.id);
        this.unassigned.delete(d.task.id);
        this.preassigned.delete(d.task.id);
      } else if (cur.nodeId !== d.nodeId || cur.status.state === 'pending') {
        info?.removeTask(d.task.id);
        this.trackTask(cur, undefined);
      }
    }
    return failed;
  }
}

function assigned(t: Task, nodeId: string): Task {
  return { ...t, nodeId, status: { ...t.status, state: 'assigned' } };
}
