import { DEFAULTS, type RestartPolicy, type Service, type Task } from '@shoal/api';
import { type Clock, type TimerHandle, systemClock } from '@shoal/runtime';
import { byAge, parseTime } from './tasks.js';

/** What to do with a slot whose task ended on its own (SwarmKit `restart.shouldRestart` behaviour). */
export type RestartDecision =
  | { kind: 'now' }
  /** Restart once the clock reaches `dueMs` (ms since epoch). */
  | { kind: 'at'; dueMs: number }
  /**
   * The policy forbids a restart; `reason` says why. `limit` is set when the attempt budget is used
   * up (the orchestrator then appends the reason to the ended task's `status.err`).
   */
  | { kind: 'never'; reason: string; limit?: boolean };

/**
 * Does `policy.condition` allow restarting after `ended` stopped? `none` never; `on-failure` unless
 * the task COMPLETEd (exit code 0) — FAILED, REJECTED and an unrequested SHUTDOWN count as failures;
 * `any` always.
 */
export function conditionAllows(policy: RestartPolicy, ended: Task): boolean {
  switch (policy.condition) {
    case 'none': return false;
    case 'on-failure': return ended.status.state !== 'complete';
    default: return true;
  }
}

/**
 * The restart supervisor (behaviour of SwarmKit `orchestrator/restart`), shared by the replicated and
 * global orchestrators. It owns no store writes of its own: an orchestrator that finds a slot (or a
 * global service's node) whose last task ended on its own asks {@link RestartSupervisor.decide},
 * creates the replacement itself when told `now`, and otherwise gets a wake-up call
 * ({@link RestartSupervisor.onDue}) when the restart delay has passed. Because the decision is
 * recomputed from the store each time, a new leader re-arms every pending delay simply by
 * reconciling (the delay then counts from the ended task's status timestamp).
 *
 * Policy (`task.spec.restart`, defaults {@link DEFAULTS.restart}):
 * - condition: see {@link conditionAllows};
 * - `maxAttempts` (0 = unlimited): restarts already made in this slot *for the service's current
 *   `specVersion`* within the last `windowMs` (0 = ever) — so any spec change resets the budget
 *   (moby/moby#34007, acceptance B05). Counts live in memory (they survive task-history pruning,
 *   B06); a new leader rebuilds them from the task records still in the store;
 * - `delayMs`: the replacement is created `delayMs` after the old task was seen ending.
 *
 * Infrastructure moves (node Down, node drained) are not restarts: orchestrators replace those tasks
 * at once, ignoring the policy and the delay, and do not count them.
 */
export class RestartSupervisor {
  private readonly clock: Clock;
  /** task id → ms when an orchestrator first saw it end. */
  private ended = new Map<string, number>();
  /** slot key → restart times for one spec version. */
  private history = new Map<string, { specVersion: number; times: number[] }>();
  private timers = new Map<string, { dueMs: number; handle: TimerHandle; serviceId: string }>();
  private listeners = new Set<(serviceId: string) => void>();
  private started = false;

  constructor(opts: { clock?: Clock } = {}) {
    this.clock = opts.clock ?? systemClock;
  }

  start(): void {
    this.started = true;
  }

  /** Cancels every pending delay timer and forgets all in-memory state (a new leader rebuilds it). */
  stop(): void {
    this.started = false;
    for (const t of this.timers.values()) this.clock.clearTimeout(t.handle);
    this.timers.clear();
    this.ended.clear();
    this.history.clear();
  }

  /** Registers `fn(serviceId)`, called when a restart delay of that service has run out. */
  onDue(fn: (serviceId: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Records that `task` was seen ending at `nowMs` (first sighting wins). */
  noteEnded(task: Task, nowMs: number): void {
    if (!this.ended.has(task.id)) this.ended.set(task.id, nowMs);
  }

  /**
   * Decides whether and when slot `slotKey` of `service` gets a replacement for `last`, the slot's
   * latest task, which ended on its own. `slotTasks` are the slot's tasks still in the store
   * (used to rebuild the attempt count after a leader change).
   */
  decide(service: Service, slotKey: string, last: Task, slotTasks: readonly Task[], nowMs: number): RestartDecision {
    const policy = last.spec.restart ?? DEFAULTS.restart;
    if (!conditionAllows(policy, last)) {
      return { kind: 'never', reason: `restart condition is ${policy.condition}; task ended ${last.status.state}` };
    }
    if (policy.maxAttempts > 0) {
      const used = this.attempts(service, slotKey, slotTasks, policy, nowMs);
      if (used >= policy.maxAttempts) {
        return { kind: 'never', reason: `restart limit reached (${used} of ${policy.maxAttempts} attempts used)`, limit: true };
      }
    }
    const endedAt = Math.min(this.ended.get(last.id) ?? parseTime(last.status.timestamp) ?? nowMs, nowMs);
    const dueMs = endedAt + Math.max(0, policy.delayMs);
    return dueMs <= nowMs ? { kind: 'now' } : { kind: 'at', dueMs };
  }

  /** Records a restart made in `slotKey` at `nowMs` (call after the replacement is committed). */
  recordRestart(service: Service, slotKey: string, endedTaskId: string, nowMs: number): void {
    let h = this.history.get(slotKey);
    if (!h || h.specVersion !== service.specVersion) this.history.set(slotKey, (h = { specVersion: service.specVersion, times: [] }));
    h.times.push(nowMs);
    this.ended.delete(endedTaskId);
    this.cancel(slotKey);
  }

  /** Arms (or moves) the wake-up for `slotKey` at `dueMs`. */
  wake(serviceId: string, slotKey: string, dueMs: number): void {
    if (!this.started) return;
    const cur = this.timers.get(slotKey);
    if (cur && cur.dueMs === dueMs) return;
    if (cur) this.clock.clearTimeout(cur.handle);
    const handle = this.clock.setTimeout(() => {
      if (this.timers.get(slotKey)?.handle !== handle) return;
      this.timers.delete(slotKey);
      for (const fn of this.listeners) fn(serviceId);
    }, dueMs - this.clock.now());
    this.timers.set(slotKey, { dueMs, handle, serviceId });
  }

  /** Cancels a pending wake-up of `slotKey`. */
  cancel(slotKey: string): void {
    const cur = this.timers.get(slotKey);
    if (cur) this.clock.clearTimeout(cur.handle);
    this.timers.delete(slotKey);
  }

  /** Drops the state of a retired slot (scale-down, global node gone): a reused slot starts afresh. */
  forgetSlot(slotKey: string): void {
    this.cancel(slotKey);
    this.history.delete(slotKey);
  }

  /** Drops all state of a deleted service. */
  forgetService(serviceId: string): void {
    for (const [k, t] of this.timers) if (t.serviceId === serviceId) this.cancel(k);
    for (const k of this.history.keys()) if (k.startsWith(`${serviceId}/`)) this.history.delete(k);
  }

  /** Drops the end time of a deleted task. */
  forgetTask(taskId: string): void {
    this.ended.delete(taskId);
  }

  /** Pending wake-ups (for tests and diagnostics). */
  get pendingRestarts(): number {
    return this.timers.size;
  }

  private attempts(service: Service, slotKey: string, slotTasks: readonly Task[], policy: RestartPolicy, nowMs: number): number {
    const since = policy.windowMs > 0 ? nowMs - policy.windowMs : -Infinity;
    let h = this.history.get(slotKey);
    if (!h || h.specVersion !== service.specVersion) {
      // Rebuild (new leader, or first look at this slot): a current-spec task that follows a
      // current-spec task which ended by itself (COMPLETE/FAILED/REJECTED) was a restart.
      const cur = slotTasks.filter((t) => t.specVersion === service.specVersion).sort(byAge);
      const times: number[] = [];
      for (let i = 1; i < cur.length; i++) {
        if (['complete', 'failed', 'rejected'].includes(cur[i - 1]!.status.state)) times.push(parseTime(cur[i]!.meta.createdAt) ?? nowMs);
      }
      this.history.set(slotKey, (h = { specVersion: service.specVersion, times }));
    }
    return h.times.filter((t) => t > since).length;
  }
}
