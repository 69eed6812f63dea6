import { DEFAULTS, type Service, type Task, type UpdateConfig } from '@shoal/api';
import { iso } from './tasks.js';

/** One slot (replicated) or node (global) of a service, as the updater sees it. */
export interface UpdateSlot {
  key: string;
  /** The slot's desired-running task, if any. */
  cur?: Task;
  /** The slot's latest task when it has no desired-running one. */
  last?: Task;
  /** The task created before `cur` in this slot, if any. */
  prev?: Task;
  /** `last` (or `cur`) can no longer be running anywhere. */
  stopped: boolean;
}

export type UpdateStatus = NonNullable<Service['updateStatus']>;

export interface UpdatePlan {
  /** Slots whose out-of-date task is to be shut down now (and replaced once it has stopped). */
  replace: string[];
  /** New `service.updateStatus`, when it changes. */
  status?: UpdateStatus;
  /** Call back at this time (ms) to continue (update delay). */
  wakeAtMs?: number;
}

interface Memory {
  /** specVersion the pause applies to. */
  pausedSpec?: number;
  /** Slots in flight in the previous pass. */
  inflight: Set<string>;
  /** Earliest time (ms) the next slot may start (the update delay after a slot finished). */
  gateMs: number;
  /** When (ms) a slot last finished (its replacement RUNNING). */
  lastDoneMs?: number;
  /** Tasks of spec version `failSpec` that failed during the update. */
  failSpec: number;
  failed: Set<string>;
}

const ACTIVE = new Set(['updating', 'rollback_started']);

/**
 * Rolling updates (behaviour of SwarmKit `orchestrator/update`), driven by the orchestrators'
 * reconcile passes instead of goroutines. A slot is *out of date* when its task's `specVersion`
 * differs from the service's. Each pass:
 * - at most `parallelism` slots (0 = all) are in flight — an out-of-date task being replaced and
 *   its replacement not yet RUNNING;
 * - order `stop-first` (default): the old task is shut down and the replacement created once it has
 *   stopped, so a slot never has two desired-running tasks; `start-first`: the replacement is
 *   created while the old task keeps running, and the old one is shut down once the replacement is
 *   RUNNING — the one case where a slot briefly has two desired-running tasks (so a service up to
 *   `replicas + parallelism`), which is what start-first means;
 * - after a slot's replacement reaches RUNNING the next slot waits `delayMs`; with stop-first, a
 *   replacement the scheduler cannot place (PENDING with a reason) also lets the next slot go and
 *   does not keep the update from completing (acceptance case B03);
 * - `updateStatus` goes `updating` → `completed` (or `rollback_started` → `rollback_completed`)
 *   `monitorMs` (default 5 s) after the last slot finished (a new leader completes at once);
 * - a task of the new spec that ends by itself during the update (monitor window included) is a
 *   failure; when failures exceed
 *   `maxFailureRatio` of the slots touched, `failureAction` applies: `pause` (status `paused`, no more
 *   slots until the next spec change), `continue`, or `rollback` (spec ← previousSpec, specVersion+1,
 *   status `rollback_started`; a failing rollback pauses as `rollback_paused`).
 * Memory (in-flight set, delay gate, failure count) is per leader; a new leader resumes from the
 * store (paused stays paused until the spec changes).
 */
export class RollingUpdater {
  private mem = new Map<string, Memory>();

  forget(serviceId: string): void {
    this.mem.delete(serviceId);
  }

  /** The update config in force: `rollback` while rolling back, else `update`, else Docker's defaults. */
  static config(svc: Service): UpdateConfig {
    const rolling = svc.updateStatus?.state.startsWith('rollback') ?? false;
    return (rolling ? svc.spec.rollback ?? svc.spec.update : svc.spec.update) ?? DEFAULTS.update;
  }

  plan(svc: Service, slots: readonly UpdateSlot[], nowMs: number): UpdatePlan {
    const m = this.memory(svc.id);
    const cfg = RollingUpdater.config(svc);
    const v = svc.specVersion;
    const stale = slots.filter((s) => s.cur && s.cur.specVersion !== v).sort((a, b) => slotOrder(a) - slotOrder(b));
    const inflight = new Set<string>();
    // Stop-first: a replacement the scheduler cannot place (PENDING with its reason) is as far as
    // this slot's update can go — its old task is gone already — so it no longer holds up the next
    // slot nor the update's completion (B03: SwarmKit's updater waits for it forever). Start-first
    // keeps waiting: its old task still runs and is shut down only once the replacement runs.
    const unplaceable = (t: Task): boolean => cfg.order !== 'start-first' && t.status.state === 'pending' && !!t.status.err;
    for (const s of slots) {
      if (!s.cur && s.last && s.last.specVersion !== v) inflight.add(s.key); // old task stopping or replacement due
      else if (s.cur && s.cur.specVersion === v && s.prev && s.prev.specVersion !== v
        && s.cur.status.state !== 'running' && s.cur.status.state !== 'complete' && !unplaceable(s.cur)) inflight.add(s.key);
    }
    // A slot that left the in-flight set finished: the next one waits the update delay.
    for (const k of m.inflight) {
      if (inflight.has(k)) continue;
      m.lastDoneMs = nowMs;
      if (cfg.delayMs > 0) m.gateMs = Math.max(m.gateMs, nowMs + cfg.delayMs);
    }
    m.inflight = inflight;

    const plan: UpdatePlan = { replace: [] };
    const st = svc.updateStatus;
    if (stale.length === 0 && inflight.size === 0) {
      // Monitor: the update completes `monitorMs` after its last slot finished (failures inside
      // that window still trigger the failure action).
      const until = m.lastDoneMs === undefined ? 0 : m.lastDoneMs + cfg.monitorMs;
      if (st && ACTIVE.has(st.state) && nowMs < until) {
        plan.wakeAtMs = until;
        return plan;
      }
      if (st?.state === 'updating') plan.status = { ...st, state: 'completed', completedAt: iso(nowMs), message: 'update completed' };
      else if (st?.state === 'rollback_started') plan.status = { ...st, state: 'rollback_completed', completedAt: iso(nowMs), message: 'rollback completed' };
      return plan;
    }
    let state = st?.state;
    if (state === 'paused' || state === 'rollback_paused') {
      if (m.pausedSpec === undefined) m.pausedSpec = v; // new leader: the pause was for this spec
      if (m.pausedSpec === v) return plan;
      state = undefined; // the spec changed since the pause: a new update
    }
    if (!state || !ACTIVE.has(state)) {
      plan.status = { state: 'updating', startedAt: iso(nowMs), message: 'update in progress' };
      m.pausedSpec = undefined;
    }
    if (nowMs < m.gateMs) {
      plan.wakeAtMs = m.gateMs;
      return plan;
    }
    const room = cfg.parallelism > 0 ? Math.max(0, cfg.parallelism - inflight.size) : stale.length;
    plan.replace = stale.slice(0, room).map((s) => s.key);
    return plan;
  }

  /**
   * Called when a task of the service's current spec ended by itself while the service is updating.
   * Returns the reaction: nothing, a pause, or a rollback (with the new status to write).
   */
  taskFailed(svc: Service, task: Task, slotsTouched: number): 'none' | 'pause' | 'rollback' {
    const st = svc.updateStatus?.state;
    if (!st || !ACTIVE.has(st) || task.specVersion !== svc.specVersion) return 'none';
    const m = this.memory(svc.id);
    if (m.failSpec !== svc.specVersion) {
      m.failSpec = svc.specVersion;
      m.failed = new Set();
    }
    m.failed.add(task.id);
    const cfg = RollingUpdater.config(svc);
    if (cfg.failureAction === 'continue') return 'none';
    if (m.failed.size <= cfg.maxFailureRatio * Math.max(1, slotsTouched)) return 'none';
    if (cfg.failureAction === 'rollback' && st === 'updating' && svc.previousSpec) return 'rollback';
    m.pausedSpec = svc.specVersion;
    return 'pause';
  }

  private memory(id: string): Memory {
    let m = this.mem.get(id);
    if (!m) this.mem.set(id, (m = { inflight: new Set(), gateMs: 0, failSpec: -1, failed: new Set() }));
    return m;
  }
}

const slotOrder = (s: UpdateSlot): number => s.cur?.slot ?? 0;
