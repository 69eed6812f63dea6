/**
 * Knowing when an in-process cluster has nothing left to do at the current (fake) time. Everything
 * the harness runs is driven by the fake clock, promise continuations and `setImmediate` (the
 * runtime's `ReconcileLoop` queues its passes with it): no I/O, no real timers. So "settled" means:
 * no `setImmediate` callback is pending once the microtasks have run. {@link trackImmediates}
 * counts them by wrapping the global `setImmediate`/`clearImmediate` while a harness lives.
 */

type Immediate = ReturnType<typeof setImmediate>;

let installs = 0;
let pending = new Set<Immediate>();
let original: { set: typeof setImmediate; clear: typeof clearImmediate } | undefined;

/**
 * Starts counting pending `setImmediate` callbacks (process-wide). Returns the function that stops
 * counting (the last one restores the globals).
 */
export function trackImmediates(): () => void {
  if (installs++ === 0) {
    const set = globalThis.setImmediate;
    const clear = globalThis.clearImmediate;
    original = { set, clear };
    pending = new Set();
    const wrapped = ((fn: (...a: unknown[]) => void, ...args: unknown[]) => {
      const h: Immediate = set(() => {
        pending.delete(h);
        fn(...args);
      });
      pending.add(h);
      return h;
    }) as unknown as typeof setImmediate;
    globalThis.setImmediate = Object.assign(wrapped, { __promisify__: (set as unknown as { __promisify__: unknown }).__promisify__ }) as typeof setImmediate;
    globalThis.clearImmediate = ((h: Immediate | undefined) => {
      if (h) pending.delete(h);
      clear(h);
    }) as typeof clearImmediate;
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--installs === 0 && original) {
      globalThis.setImmediate = original.set;
      globalThis.clearImmediate = original.clear;
      original = undefined;
    }
  };
}

/** Resolves on the next turn of the event loop (with the real `setImmediate`). */
export function nextTurn(): Promise<void> {
  const set = original?.set ?? globalThis.setImmediate;
  return new Promise((resolve) => void set(resolve));
}

/**
 * Resolves once no `setImmediate` callback is pending (after at least one turn of the event loop).
 * @throws Error after `maxTurns` turns (something re-queues itself forever).
 */
export async function settle(maxTurns = 100_000): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    await nextTurn();
    if (pending.size === 0) return;
  }
  throw new Error(`the cluster did not settle within ${maxTurns} turns of the event loop (something re-queues itself forever)`);
}
