import { handoffPending, isTerminal, taskStateRank, type Config, type Secret, type Task } from '@shoal/api';
import type { Clock, TimerHandle } from '@shoal/runtime';
import type { ReadTx } from '@shoal/store';
import type { Watcher } from './liveness.js';

const ASSIGNED = taskStateRank('assigned');
const RUNNING = taskStateRank('running');
const REMOVE = taskStateRank('remove');

/** A task as the agent acts on it: everything but metadata and the status it reported itself. */
function stableKey(t: Task): string {
  const { meta: _m, status: _s, ...rest } = t;
  return JSON.stringify(rest);
}

/** Tasks a node must know about: placed on it, at least ASSIGNED, desired state before REMOVE; by ID. */
export function assignedTo(tasks: Task[]): Task[] {
  return tasks
    .filter((t) => taskStateRank(t.status.state) >= ASSIGNED && taskStateRank(t.desiredState) < REMOVE)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Node `nodeId`'s assignment set as it is sent at `nowMs`: the tasks it must know about, each one
 * whose handoff is pending ({@link handoffPending}) as a copy with desired state RUNNING (`held`;
 * the store keeps its SHUTDOWN), so its container keeps serving until its successor is RUNNING.
 */
export function assignmentsOf(tx: Pick<ReadTx, 'tasksByNode' | 'get'>, nodeId: string, nowMs: number): { task: Task; held: boolean }[] {
  return assignedTo(tx.tasksByNode(nodeId)).map((t) => {
    const held = t.handoff !== undefined && handoffPending(t, tx.get('tasks', t.handoff.to), nowMs);
    return { task: held ? { ...t, desiredState: 'running' } : t, held };
  });
}

/**
 * The secrets and configs the tasks of a node's set use, with their data (SwarmKit
 * `assignments.go`): those referenced by tasks that have not ended (observed state up to RUNNING),
 * and nothing else — a node never gets the secrets of tasks it does not run, and drops them once
 * its tasks that used them have ended. By ID; `key` names the set (IDs) for change detection.
 */
export function dependenciesOf(tx: Pick<ReadTx, 'get'>, tasks: readonly Task[]): { secrets: Secret[]; configs: Config[]; key: string } {
  const secretIds = new Set<string>();
  const configIds = new Set<string>();
  for (const t of tasks) {
    if (taskStateRank(t.status.state) > RUNNING) continue;
    for (const r of t.spec.container.secrets ?? []) secretIds.add(r.secretId);
    for (const r of t.spec.container.configs ?? []) configIds.add(r.configId);
  }
  const secrets = [...secretIds].sort().map((id) => tx.get('secrets', id)).filter((x): x is Secret => !!x);
  const configs = [...configIds].sort().map((id) => tx.get('configs', id)).filter((x): x is Config => !!x);
  return { secrets, configs, key: `${secrets.map((x) => x.id).join(',')}|${configs.map((x) => x.id).join(',')}` };
}

/**
 * Records `set` as what watcher `w` is sent and says whether it differs from what `w` got last.
 * A change of a task's observed status alone (the agent's own report) does not count; anything
 * else about a member (desired state, spec, networks, being held…) does, and so does `netJson`
 * (the network view's JSON, for sessions that asked for it) or `depsKey` (the secrets and configs,
 * {@link dependenciesOf}) differing from the last one sent.
 */
export function recordSent(w: Watcher, set: { task: Task; held: boolean }[], netJson: string | undefined, depsKey = ''): boolean {
  const prev = w.sent;
  const next = new Map<string, { version: number; held: boolean; stable: string }>();
  let changed = !prev || prev.size !== set.length;
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
  if (netJson !== undefined) {
    if (w.sentNet !== netJson) changed = true;
    w.sentNet = netJson;
  }
  // The secrets and configs sent change with the set (a task that ended releases its own).
  if ((w.sentDeps ?? '') !== depsKey) changed = true;
  w.sentDeps = depsKey;
  return changed;
}

/**
 * The handoff holds that may still apply (graceful drain, {@link Task.handoff}): for each old task
 * whose handoff may hold, its successor and node, and a timer at its `handoff.until`. The
 * dispatcher asks it which nodes must get a fresh set when a successor changes, and is called back
 * (`onDue`) when an `until` passes.
 */
export class HandoffHolds {
  /** Successor task id → (old task id → old task's node id). */
  private readonly handoffs = new Map<string, Map<string, string>>();
  /** Per old task: the timer firing at its `handoff.until`. */
  private readonly timers = new Map<string, TimerHandle>();

  /** @param onDue an old task's `until` passed: its node (if known) must get a fresh set. */
  constructor(private readonly clock: Clock, private readonly onDue: (nodeId: string | undefined) => void) {}

  /**
   * Keeps the holds in step with task `t` (just written, or deleted): an old task whose handoff
   * may still hold is watched until it stops, is deleted, or `until` passes.
   */
  track(t: Task, deleted: boolean): void {
    const h = t.handoff;
    const until = h ? Date.parse(h.until) : NaN;
    const desired = taskStateRank(t.desiredState);
    const watch = !deleted && h !== undefined && desired > RUNNING && desired < REMOVE && !isTerminal(t.status.state)
      && this.clock.now() < until;
    if (!watch) {
      this.untrack(t.id, h?.to);
      return;
    }
    let olds = this.handoffs.get(h.to);
    if (!olds) this.handoffs.set(h.to, (olds = new Map()));
    olds.set(t.id, t.nodeId);
    if (!this.timers.has(t.id)) {
      this.timers.set(t.id, this.clock.setTimeout(() => this.due(t.id, h.to), until - this.clock.now()));
    }
  }

  /**
   * `t` changed or went away: returns the nodes of the tasks handing over to it (they must get a
   * fresh set). Once `t` is running, ended, no longer wanted or gone, no handoff to it holds.
   */
  successorChanged(t: Task, deleted: boolean): string[] {
    const olds = this.handoffs.get(t.id);
    if (!olds) return [];
    const nodes = [...olds.values()];
    if (deleted || t.status.state === 'running' || isTerminal(t.status.state) || taskStateRank(t.desiredState) > RUNNING) {
      for (const oldId of [...olds.keys()]) this.untrack(oldId, t.id);
    }
    return nodes;
  }

  /** Forgets every hold and disarms every timer. */
  clear(): void {
    for (const h of this.timers.values()) this.clock.clearTimeout(h);
    this.timers.clear();
    this.handoffs.clear();
  }

  /** Rebuilds the holds from `tasks` (start, snapshot restore). */
  rescan(tasks: Iterable<Task>): void {
    this.clear();
    for (const t of tasks) if (t.handoff) this.track(t, false);
  }

  private untrack(oldId: string, to: string | undefined): void {
    const timer = this.timers.get(oldId);
    if (timer) this.clock.clearTimeout(timer);
    this.timers.delete(oldId);
    if (to === undefined) return;
    const olds = this.handoffs.get(to);
    olds?.delete(oldId);
    if (olds?.size === 0) this.handoffs.delete(to);
  }

  private due(oldId: string, to: string): void {
    const nodeId = this.handoffs.get(to)?.get(oldId);
    this.timers.delete(oldId);
    this.untrack(oldId, to);
    this.onDue(nodeId);
  }
}
