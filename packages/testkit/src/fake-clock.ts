import type { Clock, TimerHandle } from '@shoal/runtime';

interface FakeTimer {
  due: number;
  seq: number;
  fn: () => void;
}

/**
 * The fake {@link Clock} of every unit test: time stands still until {@link FakeClock.advance},
 * which fires the timers that fall due on the way in order (by due time, then creation order),
 * each seeing `now()` equal to its due time, and ends at `now() + ms`. A timer armed by a firing
 * timer fires in the same `advance` if it falls due within it.
 *
 * Timers fire synchronously inside `advance`; work they start on later turns of the event loop
 * (a {@link ReconcileLoop} pass is queued with `setImmediate`) is awaited with the component's
 * `idle()` — or {@link FakeClock.advanceAsync} with a settle function.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Set<FakeTimer>();

  /** @param startMs the initial `now()` (ms since epoch; default 2026-01-01T00:00:00Z). */
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: FakeTimer = { due: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(timer);
    return timer as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as FakeTimer);
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.timers.size;
  }

  /** ms until the next armed timer is due (undefined when none is armed). */
  get nextDueInMs(): number | undefined {
    let next: number | undefined;
    for (const x of this.timers) if (next === undefined || x.due < next) next = x.due;
    return next === undefined ? undefined : next - this.t;
  }

  /** Moves time forward by `ms` (≥ 0), firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.t + Math.max(0, ms);
    for (;;) {
      let next: FakeTimer | undefined;
      for (const x of this.timers) if (x.due <= end && (!next || x.due < next.due || (x.due === next.due && x.seq < next.seq))) next = x;
      if (!next) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.due);
      next.fn();
    }
    this.t = end;
  }

  /**
   * Like {@link advance}, but in steps of at most `stepMs`, awaiting `settle()` (e.g. a component's
   * `idle()`) after each step, so passes started by a timer finish — and arm their own timers —
   * before time moves on.
   */
  async advanceAsync(ms: number, settle: () => Promise<unknown>, stepMs = ms): Promise<void> {
    let left = Math.max(0, ms);
    await settle();
    while (left > 0) {
      const step = Math.min(left, Math.max(1, stepMs));
      this.advance(step);
      left -= step;
      await settle();
    }
  }
}
