import { type Cluster, DEFAULTS, type Node, type Task, isTerminal } from '@shoal/api';
import type { MemoryStore, ReadTx, StoreEvent, Tx } from '@shoal/store';
import { Reconciler, type ComponentOptions } from './reconciler.js';
import { byAge, hasStopped, isRetired, isRunnable, raiseDesired } from './tasks.js';

export interface TaskReaperOptions extends ComponentOptions {
  /** Batching period: dirty slots are pruned together at most this often. Default 250 ms (SwarmKit's). */
  batchMs?: number;
  /** Keep desired-REMOVE tasks until they can no longer run (default false: delete at once). */
  removeWaitsForStop?: boolean;
}

/** Slots pruned per transaction. */
const CHUNK = 200;

/**
 * The task reaper (behaviour of SwarmKit `orchestrator/taskreaper`): bounds task history and deletes
 * dead task records. Leader-only. Changes are batched: slots touched by task events are pruned
 * together every `batchMs` (default 250 ms), in transactions of up to 200 slots.
 *
 * The rule, per *slot* — (service, slot) for replicated tasks, (service, node) for global ones
 * (slot 0) — with `limit` = `cluster.spec.taskHistoryRetentionLimit` (default 5; negative = keep all):
 * - the slot's *current* task is kept: its desired-running task, or, when it has none (restart
 *   delay pending, or restarts given up), its newest task — and then one old task fewer is kept,
 *   since the replacement will turn that newest task into history;
 * - besides it, at most `limit` *old* tasks (desired SHUTDOWN, not REMOVE) are kept; the excess is
 *   deleted oldest first (by creation time). So a slot holds at most `1 + limit` task records, plus
 *   any old task that may still be running (status not terminal on a live node), which is never
 *   deleted before it stops. With limit 0 only the current task is kept.
 * - tasks with desired REMOVE (retired slots, removed services and nodes) are deleted in the next
 *   batch: the dispatcher drops them from their node's assignment set, so the agent removes the
 *   container and reports nothing more about them (their status would never turn terminal). With
 *   `removeWaitsForStop` they are kept until they can no longer run (status terminal, never
 *   dispatched, or node Down/deleted) — SwarmKit's rule, for a dispatcher that keeps REMOVE tasks
 *   assigned until the agent has stopped them;
 * - tasks whose service no longer exists get desired REMOVE, then go by the previous rule.
 * Lowering the limit (`swarm update --task-history-limit`) prunes every slot in the next batch (B06).
 * Attempt counts of the restart policy do not need these records (see RestartSupervisor).
 */
export class TaskReaper extends Reconciler {
  private readonly removeWaitsForStop: boolean;

  constructor(store: MemoryStore, opts: TaskReaperOptions = {}) {
    super(store, opts);
    this.batchMs = opts.batchMs ?? 250;
    this.removeWaitsForStop = opts.removeWaitsForStop ?? false;
  }

  protected allKeys(): string[] {
    return this.store.view((tx) => [...new Set(tx.list('tasks').map(slotKey))]);
  }

  protected onEvent(ev: Extract<StoreEvent, { kind: 'create' | 'update' | 'delete' }>): void {
    switch (ev.table) {
      case 'tasks': {
        if (ev.kind === 'delete') return;
        const t = ev.object as Task;
        const old = ev.old as Task | undefined;
        if (!old || old.desiredState !== t.desiredState || old.status.state !== t.status.state || old.nodeId !== t.nodeId) this.mark(slotKey(t));
        return;
      }
      case 'services':
        if (ev.kind !== 'update') this.markTasks((tx) => tx.tasksByService(ev.object.id));
        return;
      case 'nodes': {
        const n = ev.object as Node;
        if (ev.kind === 'delete' || n.status.state === 'down') this.markTasks((tx) => tx.tasksByNode(n.id));
        return;
      }
      case 'clusters': {
        const before = (ev.old as Cluster | undefined)?.spec.taskHistoryRetentionLimit;
        if (ev.kind !== 'delete' && before !== (ev.object as Cluster).spec.taskHistoryRetentionLimit) this.markAll();
        return;
      }
      default:
    }
  }

  protected async reconcile(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += CHUNK) {
      const chunk = keys.slice(i, i + CHUNK);
      await this.store.update((tx) => this.prune(tx, chunk), { retries: 10 });
    }
  }

  private markTasks(select: (tx: ReadTx) => Task[]): void {
    for (const k of new Set(this.store.view((tx) => select(tx).map(slotKey)))) this.mark(k);
  }

  private prune(tx: Tx, keys: string[]): void {
    // Reads go to the committed state without copying (see ServiceOrchestrator.reconcileService);
    // the keys are distinct slots, so no read below depends on a write made for another key.
    this.store.view((read) => this.pruneIn(tx, read, keys));
  }

  private pruneIn(tx: Tx, read: ReadTx, keys: string[]): void {
    const limit = read.list('clusters')[0]?.spec.taskHistoryRetentionLimit ?? DEFAULTS.cluster.taskHistoryRetentionLimit;
    const byService = new Map<string, Task[]>();
    const nodes = new Map<string, Node | undefined>();
    const node = (id: string) => {
      if (!nodes.has(id)) nodes.set(id, id ? read.get('nodes', id) : undefined);
      return nodes.get(id);
    };
    const deletable = (t: Task) => hasStopped(t, node(t.nodeId));
    for (const key of keys) {
      const [serviceId, slotStr, nodeId] = key.split('|') as [string, string, string];
      let all = byService.get(serviceId);
      if (!all) byService.set(serviceId, (all = read.tasksByService(serviceId)));
      const slot = Number(slotStr);
      const tasks = all.filter((t) => t.slot === slot && (slot !== 0 || t.nodeId === nodeId));
      const orphan = !read.get('services', serviceId);
      const keep: Task[] = [];
      for (const frozen of tasks) {
        let t = frozen;
        if (orphan && !isRetired(t)) {
          t = { ...frozen };
          raiseDesired(t, 'remove');
          if (this.removeWaitsForStop && !deletable(t)) tx.update('tasks', t);
        }
        if (isRetired(t)) {
          if (!this.removeWaitsForStop || deletable(t)) tx.delete('tasks', t.id);
        } else {
          keep.push(t);
        }
      }
      if (limit < 0 || keep.length === 0) continue;
      keep.sort(byAge);
      const current = keep.filter(isRunnable);
      // No runnable task: a replacement is due (restart delay) and will push the newest dead task
      // into the history, so keep one old task fewer now — the slot never exceeds 1 + limit records.
      const pendingReplacement = current.length === 0;
      if (pendingReplacement) current.push(keep[keep.length - 1]!);
      const old = keep.filter((t) => !current.includes(t));
      let excess = old.length - (pendingReplacement ? Math.max(limit - 1, 0) : limit);
      for (const t of old) {
        if (excess <= 0) break;
        if (isTerminal(t.status.state) || deletable(t)) {
          tx.delete('tasks', t.id);
          excess--;
        }
      }
    }
  }
}

/** `<serviceId>|<slot>|<nodeId for global tasks>`. */
function slotKey(t: Task): string {
  return `${t.serviceId}|${t.slot}|${t.slot === 0 ? t.nodeId : ''}`;
}
