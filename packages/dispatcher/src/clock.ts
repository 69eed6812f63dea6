/** Time source and timers, injectable so liveness logic is tested without waiting. Times in ms. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export type TimerHandle = { readonly __timer: unique symbol } | object;

/** Wall clock and Node timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface ManualTimer {
  due: number;
  seq: number;
  fn: () => void;
}

/**
 * A fake clock for tests: time stands still until {@link advance}, which fires due timers in
 * order (by due time, then creation order), each seeing `now()` equal to its due time.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Set<ManualTimer>();

  constructor(start = 1_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { due: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as ManualTimer);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const x of this.timers) if (x.due <= end && (!next || x.due < next.due || (x.due === next.due && x.seq < next.seq))) next = x;
      if (!next) break;
      this.timers.delete(next);
      this.t = next.due;
      next.fn();
    }
    this.t = end;
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.timers.size;
  }
}
