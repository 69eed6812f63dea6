declare const timerBrand: unique symbol;

/**
 * An armed one-shot timer, as returned by {@link Clock.setTimeout}. Opaque: only the clock that
 * made it can read it (a Node `Timeout` for {@link systemClock}, a record for a fake clock).
 */
export type TimerHandle = { readonly [timerBrand]: 'TimerHandle' };

/**
 * The one time source of every Shoal component: wall-clock milliseconds and one-shot timers.
 * Production passes {@link systemClock} (the default everywhere); unit tests pass `FakeClock` from
 * `@shoal/testkit`, so restart delays, debounces, heartbeats and backoffs run deterministically
 * without sleeping.
 *
 * Only things that measure or wait for *time* go through the clock. "Run on the next turn of the
 * event loop" (`setImmediate`, microtasks) is ordering, not time, and stays global.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch (like `Date.now()`). */
  now(): number;
  /**
   * Calls `fn` once, `ms` milliseconds from now (a negative `ms` counts as 0); returns a handle for
   * {@link Clock.clearTimeout}. Never calls `fn` synchronously.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Disarms a timer; a handle that already fired or was cleared is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/**
 * Wall clock and Node timers. Timers are `unref()`'d: a pending debounce, backoff or heartbeat
 * deadline never keeps a process alive on its own (servers and sockets do that).
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const h = setTimeout(fn, Math.max(0, ms));
    h.unref();
    return h as unknown as TimerHandle;
  },
  clearTimeout: (h) => clearTimeout(h as unknown as NodeJS.Timeout),
};

/** `clock.now()` as an RFC 3339 string (what task statuses and metadata carry). */
export function isoNow(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}

/** Resolves after `ms` on `clock` (unref'd on the system clock: it does not keep the process alive). */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => void clock.setTimeout(resolve, ms));
}

/**
 * Settles like `p`, or rejects with `new Error('<what> timed out after <ms> ms')` once `ms` pass on
 * `clock` first. The timer is cleared when `p` settles.
 */
export function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = clock.setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clock.clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clock.clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
