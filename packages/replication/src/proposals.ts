/**
 * The host's waiting rooms: proposals and membership changes waiting to be applied, and ReadIndex
 * requests waiting for the leader's confirmation and then for the apply index to reach theirs
 * (Raft thesis §6.4). Each is keyed by a sequence number this process gave it; entries carry
 * `instance:seq` (envelope.ts) so only the proposer settles its own.
 */
import type { ReadState } from '@shoal/raft';
import { systemClock, type Clock, type TimerHandle } from '@shoal/runtime';
import { TimeoutError } from './errors.js';

interface PendingOp {
  resolve(v: { index: number }): void;
  reject(e: Error): void;
  timer: TimerHandle;
}

interface PendingRead {
  resolve(): void;
  reject(e: Error): void;
  timer: TimerHandle;
  /** Read index once the leader confirmed it; -1 while waiting. */
  index: number;
}

export class Proposals {
  private readonly ops = new Map<number, PendingOp>();
  private readonly reads = new Map<number, PendingRead>();

  /** @param clock times the deadlines (default {@link systemClock}). */
  constructor(private readonly clock: Clock = systemClock) {}

  /** A promise for the proposal `seq`, rejected with TimeoutError after `timeoutMs` ms (outcome unknown). */
  track(seq: number, op: string, timeoutMs: number): Promise<{ index: number }> {
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        if (this.ops.delete(seq)) reject(new TimeoutError(op, timeoutMs));
      }, timeoutMs);
      this.ops.set(seq, { resolve, reject, timer });
    });
  }

  /** The proposal `seq` was applied at `index` (or the applier refused it with `err`). */
  settle(seq: number, index: number, err?: Error): void {
    const op = this.ops.get(seq);
    if (!op) return;
    this.ops.delete(seq);
    this.clock.clearTimeout(op.timer);
    if (err) op.reject(err);
    else op.resolve({ index });
  }

  /** Rejects every pending proposal (leadership lost, node closed). */
  failProposals(err: Error): void {
    for (const [seq, op] of this.ops) {
      this.clock.clearTimeout(op.timer);
      this.ops.delete(seq);
      op.reject(err);
    }
  }

  /** A promise for the read `seq`, rejected with TimeoutError after `timeoutMs` ms. */
  trackRead(seq: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        if (this.reads.delete(seq)) reject(new TimeoutError('readIndex', timeoutMs));
      }, timeoutMs);
      this.reads.set(seq, { resolve, reject, timer, index: -1 });
    });
  }

  /** The leader confirmed a read of ours: remember its index. `instance` tags this process's requests. */
  onReadState(rs: ReadState, instance: number): void {
    const ctx = rs.requestCtx;
    if (!ctx || ctx.byteLength !== 8) return;
    const b = Buffer.from(ctx.buffer, ctx.byteOffset, 8);
    if (b.readUInt32LE(0) !== instance) return;
    const r = this.reads.get(b.readUInt32LE(4));
    if (r) r.index = rs.index;
  }

  /** Resolves confirmed reads whose index is applied. */
  settleReads(applied: number): void {
    if (this.reads.size === 0) return;
    for (const [seq, r] of this.reads) {
      if (r.index >= 0 && applied >= r.index) {
        this.reads.delete(seq);
        this.clock.clearTimeout(r.timer);
        r.resolve();
      }
    }
  }

  /** Rejects reads not yet confirmed (they were addressed to a leader that is gone). */
  failUnconfirmedReads(err: Error): void {
    for (const [seq, r] of this.reads) {
      if (r.index < 0) {
        this.clock.clearTimeout(r.timer);
        this.reads.delete(seq);
        r.reject(err);
      }
    }
  }

  /** Rejects everything. */
  failAll(err: Error): void {
    this.failProposals(err);
    for (const [seq, r] of this.reads) {
      this.clock.clearTimeout(r.timer);
      this.reads.delete(seq);
      r.reject(err);
    }
  }
}
