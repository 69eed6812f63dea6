import { taskStateRank, unavailable, type TaskStatus } from '@shoal/api';
import { ReconcileLoop, type Clock, type Logger } from '@shoal/runtime';
import type { MemoryStore } from '@shoal/store';

interface QueuedStatus {
  nodeId: string;
  status: TaskStatus;
}

/**
 * Batches task status updates from agents into store transactions (SwarmKit `dispatcher.go`
 * `processUpdates`): an update is written at most `batchMs` after it arrives, at once when
 * `maxBatch` are queued; one write at a time, on the runtime's {@link ReconcileLoop}. Per task only
 * the most advanced queued status is kept.
 *
 * The write applies only forward moves (or a changed status at the same state) of tasks still
 * assigned to the reporting node; others are dropped (logged), never bounced back to the agent,
 * whose reporter would resend them forever.
 */
export class StatusBatcher {
  private queued = new Map<string, QueuedStatus>();
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly loop: ReconcileLoop;

  constructor(
    private readonly store: MemoryStore,
    private readonly batchMs: number,
    private readonly maxBatch: number,
    clock: Clock,
    private readonly log: Logger,
  ) {
    // Never throws (a failed write rejects its waiters; agents resend), so no backoff is needed.
    this.loop = new ReconcileLoop(() => this.write(), { name: 'dispatcher status batcher', debounceMs: batchMs, clock, logger: log });
    this.loop.start();
  }

  /** Updates waiting to be written. */
  get size(): number {
    return this.queued.size;
  }

  /**
   * Queues `status` of task `taskId` reported by node `nodeId`, unless a more advanced status of
   * the task is queued already. Call {@link done} once per batch of calls.
   */
  add(nodeId: string, taskId: string, status: TaskStatus): void {
    const prev = this.queued.get(taskId);
    if (prev && taskStateRank(prev.status.state) > taskStateRank(status.state)) return;
    this.queued.set(taskId, { nodeId, status });
  }

  /**
   * Promise of the updates queued so far: resolves once the batch holding them is committed.
   * @throws (rejects) Unavailable when the write fails (the agent resends).
   */
  done(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.queued.size >= this.maxBatch) void this.loop.runNow();
    else this.loop.kick();
    return p;
  }

  /** Writes what is queued now (one store transaction); resolves once the loop is idle. */
  flush(): Promise<void> {
    return this.loop.runNow();
  }

  private async write(): Promise<void> {
    const batch = this.queued;
    const waiters = this.waiters;
    this.queued = new Map();
    this.waiters = [];
    if (batch.size === 0) {
      for (const w of waiters) w.resolve();
      return;
    }
    try {
      await this.store.update((tx) => {
        for (const [taskId, q] of batch) {
          const cur = tx.get('tasks', taskId);
          if (!cur) continue;
          if (cur.nodeId !== q.nodeId) {
            this.log.warn({ nodeId: q.nodeId, taskId, assignedTo: cur.nodeId }, 'node reported a task that is not assigned to it');
            continue;
          }
          const from = taskStateRank(cur.status.state);
          const to = taskStateRank(q.status.state);
          if (to < from || (to === from && JSON.stringify(cur.status) === JSON.stringify(q.status))) continue;
          cur.status = structuredClone(q.status);
          tx.update('tasks', cur);
        }
      });
      for (const w of waiters) w.resolve();
    } catch (e) {
      const err = unavailable(`task status not recorded: ${(e as Error).message}`);
      for (const w of waiters) w.reject(err);
    }
  }
}
