import type { TaskStatusUpdate } from '@shoal/api';
import { taskStateRank } from '@shoal/api';
import { nopLogger, systemClock, type Clock, type Logger, type TimerHandle } from '@shoal/runtime';

/** Sends one batch; rejects when the session is gone (the batch is kept and sent again later). */
export type SendStatuses = (updates: TaskStatusUpdate[]) => Promise<void>;

export interface StatusReporterOptions {
  /** Longest a status waits before it is sent, in ms. Default 100 (SwarmKit batches ≤ 100 ms). */
  batchMs?: number;
  /** Delay before resending a batch whose send failed, in ms. Default 1000. */
  retryMs?: number;
  /** Pending updates kept while no session is open; beyond it only the latest per task is kept. Default 1000. */
  maxPending?: number;
  logger?: Logger;
  /** Time source for the batch and retry timers (default `systemClock`). */
  clock?: Clock;
}

/**
 * Batches task status updates for `DispatcherClient.updateTaskStatus` (SwarmKit `agent/reporter.go`).
 *
 * `push()` queues an update and arranges a send within `batchMs`. Updates of one task keep their
 * order and a state never goes backwards (an update ranking below the task's last queued or sent
 * state is dropped). While no sender is set (no session) updates stay queued and go out with the
 * next `setSender()`; a failed batch is put back and resent after `retryMs` (or at once by a new sender).
 */
export class StatusReporter {
  private readonly batchMs: number;
  private readonly maxPending: number;
  private readonly retryMs: number;
  private readonly logger: Logger;
  private pending: TaskStatusUpdate[] = [];
  private readonly lastRank = new Map<string, number>();
  private sender: SendStatuses | undefined;
  private timer: TimerHandle | undefined;
  private readonly clock: Clock;
  private inflight: Promise<void> | undefined;
  private closed = false;

  constructor(opts: StatusReporterOptions = {}) {
    this.batchMs = opts.batchMs ?? 100;
    this.maxPending = opts.maxPending ?? 1000;
    this.retryMs = opts.retryMs ?? 1000;
    this.logger = opts.logger ?? nopLogger;
    this.clock = opts.clock ?? systemClock;
  }

  /** Queues a status; returns false (and queues nothing) if it would move the task backwards. */
  push(update: TaskStatusUpdate): boolean {
    const rank = taskStateRank(update.status.state);
    const last = this.lastRank.get(update.taskId);
    if (last !== undefined && rank < last) return false;
    this.lastRank.set(update.taskId, rank);
    this.pending.push(update);
    if (this.pending.length > this.maxPending) this.compact();
    this.schedule();
    return true;
  }

  /** Sets (or clears, with undefined) the function that sends batches; a new sender flushes the queue. */
  setSender(sender: SendStatuses | undefined): void {
    this.sender = sender;
    if (sender) this.schedule(0);
  }

  /** Forgets a task's rank (after its container is removed and it left the assignment set). */
  forget(taskId: string): void {
    this.lastRank.delete(taskId);
  }

  /** Number of updates not yet acknowledged by the dispatcher. */
  get size(): number {
    return this.pending.length;
  }

  /** Sends what is queued now (if a sender is set) and resolves when that send settles. */
  async flush(): Promise<void> {
    if (this.timer) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.inflight) await this.inflight;
    const sender = this.sender;
    if (!sender || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    let failed = false;
    this.inflight = sender(batch).then(
      () => undefined,
      (err: unknown) => {
        // Put the batch back in front of anything queued meanwhile; the next sender retries.
        this.pending = batch.concat(this.pending);
        failed = true;
        this.logger.warn({ err: String(err), updates: batch.length }, 'task status update failed; will resend');
      },
    ).finally(() => {
      this.inflight = undefined;
      if (this.pending.length > 0) this.schedule(failed ? this.retryMs : this.batchMs);
    });
    await this.inflight;
  }

  /** Stops the timer; queued updates are dropped (the next agent re-reports from the containers). */
  close(): void {
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delay = this.batchMs): void {
    if (this.closed || !this.sender) return;
    if (this.timer) {
      if (delay !== 0) return;
      this.clock.clearTimeout(this.timer);
    }
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  /** Keeps only the latest update of each task (ordered by that update). */
  private compact(): void {
    const latest = new Map<string, TaskStatusUpdate>();
    for (const u of this.pending) {
      latest.delete(u.taskId);
      latest.set(u.taskId, u);
    }
    this.pending = [...latest.values()];
  }
}
