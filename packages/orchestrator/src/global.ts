import { type Node, type Service, type Task, taskStateRank } from '@shoal/api';
import { matches, parseConstraints, type Constraint } from './constraints.js';
import { ServiceOrchestrator, type ServiceWork, type Slot } from './service-orchestrator.js';
import { byAge } from './tasks.js';

/**
 * The global orchestrator (behaviour of SwarmKit `orchestrator/global`): one task per eligible node
 * for every global service. Leader-only.
 *
 * - Eligible node: status `ready`, availability `active`, and the service's placement constraints
 *   satisfied ({@link matches}). Each eligible node without a desired-running task of the service
 *   gets one at once — created with `nodeId` set and state NEW (the allocator and the scheduler
 *   take it from there) — so a node that joins gets its task as soon as it is Ready (B07).
 * - A node that is Down, deleted, drained or no longer satisfies the constraints has its tasks
 *   retired: desired REMOVE (the reaper deletes them once stopped); nothing replaces them there.
 *   A paused node or one whose liveness is `unknown` (e.g. just after a leader change) keeps its
 *   task but gets no new one.
 * - A task that ended by itself on an eligible node is restarted on the same node by the restart
 *   policy (delay, max attempts; per node instead of per slot).
 * - Spec change: rolling update per node ({@link RollingUpdater}); nodes that are paused or not
 *   Ready keep their out-of-date task until they are eligible again.
 */
export class GlobalOrchestrator extends ServiceOrchestrator {
  protected handles(svc: Service): boolean {
    return 'global' in svc.spec.mode;
  }

  /** Node changes can make any global service gain or lose a task. */
  protected override onNodeChange(_n: Node): void {
    for (const id of this.allKeys()) this.mark(id);
  }

  protected reconcileSlots(w: ServiceWork): Slot[] {
    const svc = w.svc;
    let constraints: Constraint[] | undefined;
    try {
      constraints = parseConstraints(svc.spec.task.placement?.constraints ?? []);
    } catch (e) {
      this.log.warn({ serviceId: svc.id, service: svc.spec.name, err: (e as Error).message }, 'invalid placement constraints; no node is eligible');
    }
    const fits = (n: Node | undefined): n is Node => !!n && !!constraints && matches(n, constraints);
    const keep = (n: Node | undefined) => fits(n) && n.status.state !== 'down' && n.spec.availability !== 'drain';
    const eligible = (n: Node | undefined) => fits(n) && n.status.state === 'ready' && n.spec.availability === 'active';

    const byNode = new Map<string, Task[]>();
    for (const t of w.tasks) {
      let l = byNode.get(t.nodeId);
      if (!l) byNode.set(t.nodeId, (l = []));
      l.push(t);
    }
    const live = new Map<string, Slot>();
    for (const [nodeId, all] of byNode) {
      const hist = all.filter((t) => taskStateRank(t.desiredState) < taskStateRank('remove')).sort(byAge);
      if (hist.length === 0) continue;
      const s: Slot = { key: `${svc.id}/node:${nodeId}`, slot: 0, nodeId, hist };
      if (!keep(w.node(nodeId))) {
        for (const t of hist) w.setDesired(t, 'remove');
        w.effects.push(() => this.restart.forgetSlot(s.key));
        continue;
      }
      this.settleSlot(w, s);
      live.set(nodeId, s);
    }
    for (const s of live.values()) if (!s.cur && eligible(w.node(s.nodeId))) this.refill(w, s, () => this.createIn(w, s));
    for (const n of w.allNodes()) {
      if (w.full) break;
      if (live.has(n.id) || !eligible(n)) continue;
      const s: Slot = { key: `${svc.id}/node:${n.id}`, slot: 0, nodeId: n.id, hist: [] };
      s.cur = this.createIn(w, s);
      live.set(n.id, s);
    }
    // Only slots that can get a replacement take part in a rolling update: a paused (or not yet
    // Ready) node keeps its out-of-date task until it is eligible again.
    return [...live.values()].filter((s) => eligible(w.node(s.nodeId)));
  }

  protected createIn(w: ServiceWork, s: Slot): Task {
    const t = w.create(0, s.nodeId, w.tasks.filter((x) => x.nodeId === s.nodeId));
    s.hist.push(t);
    return t;
  }
}
