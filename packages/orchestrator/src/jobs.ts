import { type Node, type Service, type Task, isJobMode, isTerminal } from '@shoal/api';
import type { MemoryStore, ReadTx, StoreEvent, Tx } from '@shoal/store';
import { type Constraint, matches, parseConstraints } from './constraints.js';
import { Reconciler } from './reconciler.js';
import { RestartSupervisor } from './restart.js';
import { GAVE_UP, type OrchestratorOptions, ServiceWork } from './service-orchestrator.js';
import { byAge, isRetired, isRunnable } from './tasks.js';

/** How one slot (replicated job) or node (global job) of the current run stands. */
type SlotState = 'done' | 'active' | 'failed';

/**
 * The jobs orchestrator (behaviour of SwarmKit `manager/orchestrator/jobs`): runs the tasks of
 * `replicated-job` and `global-job` services to completion. Leader-only.
 *
 * A job's run is its `Service.jobStatus.jobIteration` (0 at create, +1 on every `service update`
 * and `service scale`, changed or not — that is how a job is re-run); only tasks made for the
 * current iteration (`Task.jobIteration`) count. Tasks of older runs that are still running get
 * desired REMOVE (SwarmKit's rule), finished ones stay as history for the task reaper.
 *
 * Job tasks are created desired RUNNING like service tasks (so the allocator, scheduler,
 * dispatcher and agents treat them alike); when one COMPLETEs (exit 0) its desired state becomes
 * COMPLETE and it is never restarted. One that FAILs (or is REJECTED) follows the restart policy in
 * its slot (per node for global jobs) — delay, max attempts, window; condition `any` acts as
 * `on-failure`, since restarting a completed job task makes no sense (SwarmKit `restart.go`).
 * A slot whose restarts are used up stays failed: the run then ends with fewer completions.
 *
 * - `replicated-job` `{ totalCompletions, maxConcurrent }`: slots 1..totalCompletions are filled in
 *   order; at most `maxConcurrent` slots are active (a task not yet complete, or a restart pending)
 *   at once. A task on a node that goes Down, is drained or stops matching the constraints is
 *   replaced at once in its slot (no delay, no attempt counted).
 * - `global-job`: one task per eligible node (Ready, active, constraints satisfied), including
 *   nodes that join later; a node whose task completed (or gave up) gets no other in this run. A
 *   task on a node that goes Down or is drained is shut down (not moved: it belongs to that node).
 */
export class JobOrchestrator extends Reconciler {
  private readonly restart: RestartSupervisor;
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

  protected allKeys(): string[] {
    return this.store.view((tx) => tx.list('services').filter((s) => isJobMode(s.spec.mode)).map((s) => s.id));
  }

  protected onEvent(ev: Extract<StoreEvent, { kind: 'create' | 'update' | 'delete' }>): void {
    if (ev.table === 'services') {
      const svc = ev.object as Service;
      if (ev.kind === 'delete') this.restart.forgetService(svc.id);
      else if (isJobMode(svc.spec.mode)) this.mark(svc.id);
    } else if (ev.table === 'tasks') {
      const t = ev.object as Task;
      const old = ev.old as Task | undefined;
      if (ev.kind === 'delete') this.restart.forgetTask(t.id);
      if (t.jobIteration === undefined) return;
      if (ev.kind !== 'update' || !old || old.desiredState !== t.desiredState || old.status.state !== t.status.state || old.nodeId !== t.nodeId) {
        this.mark(t.serviceId);
      }
    } else if (ev.table === 'nodes') {
      const n = ev.object as Node;
      const old = ev.old as Node | undefined;
      if (ev.kind === 'update' && old && old.status.state === n.status.state && JSON.stringify(old.spec) === JSON.stringify(n.spec)) return;
      // A node can gain (global jobs) or lose (both kinds) a job's task.
      for (const id of this.allKeys()) this.mark(id);
    }
  }

  protected async reconcile(keys: string[]): Promise<void> {
    let firstError: unknown;
    for (const id of keys) {
      if (!this.isStarted) return;
      try {
        const effects = await this.store.update((tx) => this.store.view((read) => {
          const cur = read.get('services', id);
          return cur && isJobMode(cur.spec.mode) ? this.reconcileIn(tx, read, { ...cur }) : [];
        }), { retries: 10 });
        for (const fx of effects) fx();
      } catch (e) {
        firstError ??= e;
      }
    }
    if (firstError) throw firstError;
  }

  private reconcileIn(tx: Tx, read: ReadTx, svc: Service): (() => void)[] {
    const w = new ServiceWork(tx, read, svc, this.clock.now(), this.restart);
    const it = svc.jobStatus?.jobIteration ?? 0;
    for (const t of w.tasks) {
      if (t.jobIteration === it || isRetired(t)) continue;
      // A task of an earlier run: stop it if it still runs (SwarmKit: desired REMOVE); keep the record otherwise.
      if (!isTerminal(t.status.state)) w.setDesired(t, 'remove');
      else if (isRunnable(t)) w.setDesired(t, t.status.state === 'complete' ? 'complete' : 'shutdown');
    }
    const current = w.tasks.filter((t) => t.jobIteration === it && !isRetired(t));
    let constraints: Constraint[] | undefined;
    try {
      constraints = parseConstraints(svc.spec.task.placement?.constraints ?? []);
    } catch (e) {
      this.log.warn({ serviceId: svc.id, service: svc.spec.name, err: (e as Error).message }, 'invalid placement constraints; no node is eligible');
    }
    const fits = (n: Node | undefined): n is Node => !!n && !!constraints && matches(n, constraints);
    if ('replicatedJob' in svc.spec.mode) this.replicated(w, current, it, svc.spec.mode.replicatedJob, fits);
    else this.global(w, current, it, fits);
    w.flush();
    if (w.full) w.effects.push(() => this.mark(svc.id));
    return w.effects;
  }

  /** The `replicated-job` rules (see the class comment). */
  private replicated(w: ServiceWork, current: Task[], it: number, job: { maxConcurrent: number; totalCompletions: number }, fits: (n: Node | undefined) => boolean): void {
    const bySlot = new Map<number, Task[]>();
    for (const t of current) {
      if (t.slot < 1) {
        w.setDesired(t, 'remove');
        continue;
      }
      bySlot.set(t.slot, [...(bySlot.get(t.slot) ?? []), t]);
    }
    const counts = { done: 0, active: 0, failed: 0 };
    for (const [slot, all] of [...bySlot].sort((a, b) => a[0] - b[0])) {
      const hist = all.sort(byAge);
      const key = `${w.svc.id}/job${it}/${slot}`;
      const moved = (t: Task) => w.onDeadNode(t) || w.onDrainedNode(t) || (t.nodeId !== '' && !fits(w.node(t.nodeId)));
      const state = this.slot(w, key, hist, () => this.create(w, slot, '', hist), moved, true);
      counts[state]++;
    }
    const used = new Set(bySlot.keys());
    for (let slot = 1; counts.active < job.maxConcurrent && counts.done + counts.active + counts.failed < job.totalCompletions && !w.full; slot++) {
      if (used.has(slot)) continue;
      this.create(w, slot, '', []);
      counts.active++;
    }
  }

  /** The `global-job` rules (see the class comment). */
  private global(w: ServiceWork, current: Task[], it: number, fits: (n: Node | undefined) => n is Node): void {
    const eligible = (n: Node | undefined) => fits(n) && n.status.state === 'ready' && n.spec.availability === 'active';
    const byNode = new Map<string, Task[]>();
    for (const t of current) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t]);
    for (const [nodeId, all] of byNode) {
      const hist = all.sort(byAge);
      const key = `${w.svc.id}/job${it}/node:${nodeId}`;
      const node = w.node(nodeId);
      const gone = () => w.onDeadNode(hist[0]!) || w.onDrainedNode(hist[0]!) || !fits(node);
      this.slot(w, key, hist, () => (eligible(node) ? this.create(w, 0, nodeId, hist) : undefined), gone, false);
    }
    for (const n of w.allNodes()) {
      if (w.full) break;
      if (!byNode.has(n.id) && eligible(n)) this.create(w, 0, n.id, []);
    }
  }

  /**
   * Settles one slot of the current run and refills it when due; `hist` is its tasks, oldest
   * first. `misplaced(t)`: the task's node can no longer run it — with `replace` a new task is made
   * at once, else it is only shut down. `create()` makes the slot's next task (undefined: not now).
   * @returns how the slot stands afterwards.
   */
  private slot(w: ServiceWork, key: string, hist: Task[], create: () => Task | undefined, misplaced: (t: Task) => boolean, replace: boolean): SlotState {
    for (const t of hist) {
      if (!isRunnable(t) || !isTerminal(t.status.state)) continue;
      if (t.status.state === 'complete') {
        w.setDesired(t, 'complete');
      } else {
        w.setDesired(t, 'shutdown');
        this.restart.noteEnded(t, w.now);
      }
    }
    const runnable = hist.filter(isRunnable);
    for (const extra of runnable.slice(0, -1)) w.setDesired(extra, 'shutdown'); // never made by us; keep the newest
    const cur = runnable.at(-1);
    if (cur) {
      if (!misplaced(cur)) return 'active';
      w.setDesired(cur, 'shutdown');
      if (!replace) return 'active';
      create();
      return 'active';
    }
    const last = hist.at(-1);
    if (!last) return create() ? 'active' : 'failed';
    if (last.status.state === 'complete') return 'done';
    if (last.status.state !== 'failed' && last.status.state !== 'rejected') {
      // Shut down by the managers (node down, drained), not ended by itself: a new task, no delay.
      create();
      return 'active';
    }
    const d = this.restart.decide(w.svc, key, last, hist, w.now);
    if (d.kind === 'now') {
      if (create()) {
        const svc = w.svc;
        w.effects.push(() => this.restart.recordRestart(svc, key, last.id, w.now));
      }
      return 'active';
    }
    if (d.kind === 'at') {
      const id = w.svc.id;
      w.effects.push(() => this.restart.wake(id, key, d.dueMs));
      return 'active';
    }
    if (d.limit && !(last.status.err ?? '').includes(GAVE_UP)) {
      last.status = { ...last.status, err: `${last.status.err ? `${last.status.err}; ` : ''}${GAVE_UP}: ${d.reason}` };
      w.markChanged(last);
    }
    return 'failed';
  }

  private create(w: ServiceWork, slot: number, nodeId: string, hist: Task[]): Task {
    const t = w.create(slot, nodeId, w.tasks.filter((x) => (slot !== 0 ? x.slot === slot : x.nodeId === nodeId)));
    hist.push(t);
    return t;
  }
}
