import { DEFAULTS, type Node, type Service, type Task, taskStateRank } from '@shoal/api';
import type { MemoryStore } from '@shoal/store';
import { type Constraint, matches, parseConstraints } from './constraints.js';
import { byAge, iso } from './tasks.js';
import { type OrchestratorOptions, ServiceOrchestrator, type ServiceWork, type Slot } from './service-orchestrator.js';

export { type OrchestratorOptions } from './service-orchestrator.js';

/**
 * How long (ms) a RUNNING task drained off its node keeps running while its replacement starts,
 * for services whose update order is start-first ({@link Task.handoff}`.until` = now + this).
 * Default of {@link OrchestratorOptions.drainHandoffMs}.
 */
export const DRAIN_HANDOFF_MS = 60_000;

/**
 * The replicated orchestrator (behaviour of SwarmKit `orchestrator/replicated`): keeps each
 * replicated service at `spec.mode.replicated.replicas` slots, each with exactly one task whose
 * desired state is at most RUNNING. Leader-only: `start()` on becoming leader, `stop()` on losing it.
 *
 * Desired-state rules, applied to one service per transaction after every relevant commit:
 * 1. A desired-running task whose status is terminal (COMPLETE/FAILED/REJECTED/SHUTDOWN — the
 *    manager did not ask for it) ended by itself: desired → SHUTDOWN; its slot is refilled by the
 *    restart policy ({@link RestartSupervisor}): at once, after `restart.delayMs`, or never.
 * 2. A desired-running task on a node that is Down, deleted, drained, or no longer satisfies the
 *    service's placement constraints (labels changed): desired → SHUTDOWN and a replacement is
 *    created in the same slot in the same transaction (no delay, no attempt counted; acceptance
 *    B02/B08). Tasks on healthy nodes are never touched; a paused node keeps its tasks.
 *    Graceful drain: when the service's update order is start-first (`spec.update.order`) and the
 *    task is RUNNING on a node that is drained (not Down, still matching the constraints), the old
 *    task also gets `handoff = { to: <replacement id>, until: now + drainHandoffMs }`: the
 *    dispatcher keeps it running (and serving) until the replacement is RUNNING, has ended, or
 *    `until` passes ({@link handoffPending}). Its desired state is SHUTDOWN all the same, so the
 *    count rule below holds in the store; only the container outlives the decision.
 * 3. Scale down: the surplus slots are retired — every task in them gets desired REMOVE (the task
 *    reaper deletes them once stopped). Victims, in order: slots with no desired-running task, then
 *    tasks not yet RUNNING (least advanced first), then RUNNING tasks on the nodes holding the most
 *    tasks of the service, highest slot first. One `scale` is enough (B04).
 * 4. Scale up: new tasks (desired RUNNING, state NEW, no node) in the lowest free slot numbers,
 *    at most 200 per transaction (the next pass continues).
 * 5. Spec change (`specVersion` bump): rolling update, stop-first ({@link RollingUpdater}).
 * Service removal is not the orchestrator's: controlapi deletes the service and sets its tasks to
 * desired REMOVE in the same transaction, agents stop the containers, the task reaper deletes the
 * records.
 * Invariant: at no moment does a slot hold two tasks with desired state ≤ RUNNING, so a service
 * never has more than `replicas` desired-running tasks.
 */
export class ReplicatedOrchestrator extends ServiceOrchestrator {
  private readonly drainHandoffMs: number;

  constructor(store: MemoryStore, opts: OrchestratorOptions = {}) {
    super(store, opts);
    this.drainHandoffMs = opts.drainHandoffMs ?? DRAIN_HANDOFF_MS;
  }

  protected handles(svc: Service): boolean {
    return 'replicated' in svc.spec.mode;
  }

  protected reconcileSlots(w: ServiceWork): Slot[] {
    const svc = w.svc;
    const replicas = 'replicated' in svc.spec.mode ? svc.spec.mode.replicated.replicas : 0;
    let constraints: Constraint[] | undefined;
    try {
      constraints = parseConstraints(svc.spec.task.placement?.constraints ?? []);
    } catch {
      constraints = undefined; // invalid constraints: the scheduler reports them; move nothing
    }
    const fits = (n: Node | undefined) => !n || !constraints || matches(n, constraints);
    const bySlot = new Map<number, Task[]>();
    for (const t of w.tasks) {
      let l = bySlot.get(t.slot);
      if (!l) bySlot.set(t.slot, (l = []));
      l.push(t);
    }
    const startFirst = (svc.spec.update ?? DEFAULTS.update).order === 'start-first';
    /** Slots whose RUNNING task was drained off its node and may hand over (start-first). */
    const handing = new Map<Slot, Task>();
    const live: Slot[] = [];
    for (const [slot, all] of bySlot) {
      const hist = all.filter((t) => taskStateRank(t.desiredState) < taskStateRank('remove')).sort(byAge);
      if (hist.length === 0) continue;
      if (slot < 1) {
        for (const t of hist) w.setDesired(t, 'remove'); // not a replica slot (e.g. left from global mode)
        continue;
      }
      const s: Slot = { key: `${svc.id}/${slot}`, slot, nodeId: '', hist };
      this.settleSlot(w, s);
      if (s.cur && (w.onDeadNode(s.cur) || w.onDrainedNode(s.cur) || !fits(w.node(s.cur.nodeId)))) {
        const old = s.cur;
        if (startFirst && old.status.state === 'running' && !w.onDeadNode(old) && w.onDrainedNode(old) && fits(w.node(old.nodeId))) {
          handing.set(s, old);
        }
        w.setDesired(old, 'shutdown');
        s.cur = undefined;
      }
      live.push(s);
    }

    if (live.length > replicas) {
      const copies = new Map<string, number>();
      for (const s of live) if (s.cur?.nodeId) copies.set(s.cur.nodeId, (copies.get(s.cur.nodeId) ?? 0) + 1);
      const group = (s: Slot) => (!s.cur ? 0 : s.cur.status.state === 'running' ? 2 : 1);
      live.sort((a, b) => {
        const g = group(a) - group(b);
        if (g !== 0) return g;
        if (group(a) === 1) {
          const r = taskStateRank(a.cur!.status.state) - taskStateRank(b.cur!.status.state);
          if (r !== 0) return r;
        }
        if (group(a) === 2) {
          const c = (copies.get(b.cur!.nodeId) ?? 0) - (copies.get(a.cur!.nodeId) ?? 0);
          if (c !== 0) return c;
        }
        return b.slot - a.slot;
      });
      for (const victim of live.splice(0, live.length - replicas)) {
        for (const t of victim.hist) w.setDesired(t, 'remove');
        w.effects.push(() => this.restart.forgetSlot(victim.key));
      }
    }

    for (const s of live) if (!s.cur) this.refill(w, s, () => this.createIn(w, s));
    // Graceful drain: the drained task keeps running until the replacement made just now is RUNNING.
    // Slots retired by a scale-down (no longer in `live`) or not refilled in this pass get none.
    for (const [s, old] of handing) {
      if (!s.cur || s.cur === old || !live.includes(s)) continue;
      old.handoff = { to: s.cur.id, until: iso(w.now + this.drainHandoffMs) };
      w.markChanged(old);
    }

    if (live.length < replicas) {
      const used = new Set(live.map((s) => s.slot));
      for (let n = 1; live.length < replicas && !w.full; n++) {
        if (used.has(n)) continue;
        const s: Slot = { key: `${svc.id}/${n}`, slot: n, nodeId: '', hist: [] };
        s.cur = this.createIn(w, s);
        live.push(s);
      }
    }
    return live.sort((a, b) => a.slot - b.slot);
  }

  protected createIn(w: ServiceWork, s: Slot): Task {
    const t = w.create(s.slot, '', w.tasks.filter((x) => x.slot === s.slot));
    s.hist.push(t);
    return t;
  }
}
