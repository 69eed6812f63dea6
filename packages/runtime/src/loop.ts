import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { errMessage, nopLogger, type Logger } from './logger.js';
import { LATENCY_BUCKETS, type Histogram, type Metrics } from './metrics.js';

export interface ReconcileLoopOptions {
  /** Names the loop in log lines (`'scheduler'`, `'allocator'`, …). */
  name: string;
  /**
   * ms from a {@link ReconcileLoop.kick} to the pass it asks for, so a burst of kicks (one per
   * store event) costs one pass. 0 (default): the next turn of the event loop — `setImmediate`,
   * not the clock, so a test's fake clock need not be advanced for undelayed passes.
   */
  debounceMs?: number;
  /**
   * When greater than `debounceMs`, the debounce is a *quiet gap*: every kick during the wait
   * pushes the pass back to `debounceMs` after that kick, but never past `maxDelayMs` after the
   * first kick of the wait (SwarmKit's scheduler: 50 ms quiet, 1 s at most). Default `debounceMs`:
   * later kicks never push the pass back.
   */
  maxDelayMs?: number;
  /**
   * Wait before retrying after a pass threw: `initialMs`, doubling up to `maxMs`, back to
   * `initialMs` after a pass that succeeds. Kicks during the wait do not shorten it (the retry
   * covers them). Default 50 → 2000 ms.
   */
  backoff?: { initialMs: number; maxMs: number };
  /** Time source for the debounce and backoff waits (default {@link systemClock}). */
  clock?: Clock;
  /** Where failed passes are logged (warn, with `err` and `retryInMs`). Default {@link nopLogger}. */
  logger?: Logger;
  /**
   * Where pass durations go: `shoal_reconcile_pass_duration_seconds{loop=<name>,result=ok|error}`
   * (wall time, `performance.now()`, whatever the clock). Default: nowhere.
   */
  metrics?: Metrics;
}

/** The histogram of {@link ReconcileLoopOptions.metrics}. */
export function passDurationHistogram(m: Metrics): Histogram {
  return m.histogram({
    name: 'shoal_reconcile_pass_duration_seconds',
    help: 'Duration of one reconcile pass (scheduler, allocator, orchestrators, agent sweeps), by loop and result.',
    labelNames: ['loop', 'result'],
    buckets: LATENCY_BUCKETS,
  });
}

/**
 * The single-flight reconcile loop every manager component and the agent run on: "run a pass
 * soon; if asked again while a pass runs, run once more right after it" — never two passes at
 * once, never a request lost, and a burst of requests coalesced into one pass. The pass reads
 * whatever its owner marked dirty, so the loop itself carries no state but *whether* to run.
 *
 * It is the SwarmKit pattern of `manager/orchestrator` and `manager/allocator` (a `for { select }`
 * over store events with a pending-commit flag and a debounce timer), in one place:
 *
 * - {@link kick} asks for a pass `debounceMs` from now (see {@link ReconcileLoopOptions.maxDelayMs}
 *   for the quiet-gap variant). Kicks while a pass runs make one more pass follow it.
 * - A pass that throws is logged and retried with backoff; one that succeeds resets the backoff.
 * - {@link runNow} skips the wait; {@link idle} resolves once no pass is running or due on the
 *   next turn of the event loop — a pass still waiting for its debounce or backoff timer counts as
 *   idle, so tests with a fake clock advance it, then `await idle()`.
 * - {@link stop} cancels waits and resolves once an in-flight pass has finished; the loop starts
 *   stopped, `start()` enables kicks.
 *
 * All waits go through the injected {@link Clock}.
 */
export class ReconcileLoop {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private started = false;
  private running = false;
  /** A pass is queued with setImmediate. */
  private scheduled = false;
  /** A kick arrived while a pass was running. */
  private again = false;
  /** {@link runNow} asked for a pass that must run even on a stopped loop. */
  private forced = false;
  private timer: { handle: TimerHandle; kind: 'debounce' | 'backoff'; firstKickAt: number } | undefined;
  private nextBackoffMs = 0;
  private waiters: (() => void)[] = [];
  private readonly passes: Histogram | undefined;

  /**
   * @param pass one reconcile pass. It may throw (or reject): the loop logs and retries it with
   *   backoff. It must not call {@link runNow}/{@link idle} and await them (it would wait for itself).
   */
  constructor(private readonly pass: () => void | Promise<void>, opts: ReconcileLoopOptions) {
    this.name = opts.name;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? nopLogger;
    this.debounceMs = Math.max(0, opts.debounceMs ?? 0);
    this.maxDelayMs = Math.max(this.debounceMs, opts.maxDelayMs ?? this.debounceMs);
    this.backoff = opts.backoff ?? { initialMs: 50, maxMs: 2000 };
    this.passes = opts.metrics ? passDurationHistogram(opts.metrics) : undefined;
  }

  readonly name: string;

  /** Accepts kicks from now on (does not run a pass by itself). */
  start(): void {
    this.started = true;
  }

  /** Stops accepting kicks and cancels waits; resolves once an in-flight pass has finished. */
  stop(): Promise<void> {
    this.started = false;
    this.again = false;
    this.cancelTimer();
    this.nextBackoffMs = 0;
    return this.idle();
  }

  /** False until {@link start} and after {@link stop}. */
  get isStarted(): boolean {
    return this.started;
  }

  /** True while a pass is running or queued for the next turn of the event loop. */
  get busy(): boolean {
    return this.running || this.scheduled;
  }

  /** True while a debounce or backoff wait is armed. */
  get waiting(): boolean {
    return this.timer !== undefined;
  }

  /** True while a backoff wait (after a failed pass) is armed. */
  get backingOff(): boolean {
    return this.timer?.kind === 'backoff';
  }

  /** Resolves once no pass is running or queued (waits for timers do not count). */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Asks for a pass after the debounce (no-op while stopped). */
  kick(): void {
    if (!this.started) return;
    if (this.timer) {
      if (this.timer.kind === 'debounce' && this.maxDelayMs > this.debounceMs) this.armDebounce(this.timer.firstKickAt);
      return;
    }
    if (this.scheduled) return;
    if (this.debounceMs === 0) {
      if (this.running) this.again = true;
      else this.queue();
      return;
    }
    this.armDebounce(this.clock.now());
  }

  /**
   * Runs a pass as soon as possible — now, or right after the running one — skipping any debounce
   * or backoff wait, even on a stopped loop (for a final flush). Resolves once the loop is idle.
   */
  runNow(): Promise<void> {
    this.cancelTimer();
    this.forced = true;
    if (this.running) this.again = true;
    else if (!this.scheduled) void this.run();
    return this.idle();
  }

  private armDebounce(firstKickAt: number): void {
    this.cancelTimer();
    const now = this.clock.now();
    const wait = Math.max(0, Math.min(this.debounceMs, firstKickAt + this.maxDelayMs - now));
    const handle = this.clock.setTimeout(() => this.fire(), wait);
    this.timer = { handle, kind: 'debounce', firstKickAt };
  }

  private fire(): void {
    this.timer = undefined;
    if (!this.started) return;
    if (this.running) this.again = true;
    else this.queue();
  }

  private cancelTimer(): void {
    if (this.timer) this.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
  }

  private queue(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running) return;
    if (!this.started && !this.forced) return this.settle();
    this.running = true;
    this.again = false;
    this.forced = false;
    const t0 = this.passes ? performance.now() : 0;
    try {
      await this.pass();
      this.passes?.observe((performance.now() - t0) / 1000, { loop: this.name, result: 'ok' });
      this.nextBackoffMs = 0;
    } catch (e) {
      this.passes?.observe((performance.now() - t0) / 1000, { loop: this.name, result: 'error' });
      const ms = (this.nextBackoffMs = this.nextBackoffMs ? Math.min(this.backoff.maxMs, this.nextBackoffMs * 2) : this.backoff.initialMs);
      this.log.warn({ err: errMessage(e), retryInMs: ms }, `${this.name}: pass failed; retrying`);
      if (this.started) {
        // The retry covers kicks made during the failed pass.
        this.again = false;
        this.cancelTimer();
        const handle = this.clock.setTimeout(() => this.fire(), ms);
        this.timer = { handle, kind: 'backoff', firstKickAt: this.clock.now() };
      }
    } finally {
      this.running = false;
      if (this.again && (this.started || this.forced)) this.queue();
      this.again = false;
      this.settle();
    }
  }

  private settle(): void {
    if (this.busy) return;
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }
}
