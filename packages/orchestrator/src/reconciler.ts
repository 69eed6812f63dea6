import { childLogger, errMessage, nopLogger, ReconcileLoop, systemClock, type Clock, type Logger, type Metrics } from '@shoal/runtime';
import type { MemoryStore, StoreEvent } from '@shoal/store';

/** The runtime logger (`@shoal/runtime`), under the name this package always exported. */
export type { Logger } from '@shoal/runtime';

export interface ComponentOptions {
  /** Time source for delays and batching; tests pass `FakeClock` (`@shoal/testkit`). Default: {@link systemClock}. */
  clock?: Clock;
  /** Default: {@link nopLogger}. Each component logs with `{ component: <class name> }` added. */
  logger?: Logger;
  /** Pass durations go to `shoal_reconcile_pass_duration_seconds{loop=<class name>}`. Default: nowhere. */
  metrics?: Metrics;
}

/**
 * Event loop shared by the orchestrators and the task reaper (the SwarmKit pattern: watch the store,
 * mark keys dirty, reconcile them after each commit, write back in transactions), on the runtime's
 * {@link ReconcileLoop}.
 *
 * - `start()` subscribes to the store and reconciles everything once (which also re-arms whatever a
 *   previous leader left half done); a `restore` event (state replaced from a snapshot) does the same.
 * - Keys marked dirty by {@link Reconciler.onEvent} are reconciled on the next pass, one pass at a
 *   time: a pass never overlaps the next, so each pass reads what the previous one wrote. A failing
 *   pass puts its keys back and is retried with the loop's backoff (50 ms doubling to 2 s).
 */
export abstract class Reconciler {
  protected readonly clock: Clock;
  protected readonly log: Logger;
  private readonly metrics: Metrics | undefined;
  private dirtyKeys = new Set<string>();
  private everything = false;
  private unwatch?: () => void;
  /** Created on first start, so subclasses can set {@link batchMs} in their constructor. */
  private loopInstance?: ReconcileLoop;
  /** Delay between the first dirty mark and the pass (0 = next turn of the event loop). */
  protected batchMs = 0;

  constructor(protected readonly store: MemoryStore, opts: ComponentOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.log = childLogger(opts.logger ?? nopLogger, { component: this.constructor.name });
    this.metrics = opts.metrics;
  }

  private get loop(): ReconcileLoop {
    this.loopInstance ??= new ReconcileLoop(() => this.pass(), {
      name: this.constructor.name, debounceMs: this.batchMs, clock: this.clock, logger: this.log,
      ...(this.metrics ? { metrics: this.metrics } : {}),
    });
    return this.loopInstance;
  }

  start(): void {
    if (this.loop.isStarted) return;
    this.loop.start();
    this.unwatch = this.store.watch((ev) => this.handle(ev));
    this.markAll();
  }

  stop(): void {
    if (!this.loop.isStarted) return;
    void this.loop.stop();
    this.unwatch?.();
    this.unwatch = undefined;
    this.dirtyKeys.clear();
    this.everything = false;
  }

  /** True while a pass is running or about to run (a pass waiting for a batch or backoff timer is idle). */
  get busy(): boolean {
    return this.loop.isStarted && this.loop.busy;
  }

  /** Resolves once no pass is running or about to run. */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Marks one key dirty and makes sure a pass runs soon. */
  protected mark(key: string): void {
    if (!this.loop.isStarted) return;
    this.dirtyKeys.add(key);
    this.loop.kick();
  }

  /** Marks everything dirty (start, restore). */
  protected markAll(): void {
    if (!this.loop.isStarted) return;
    this.everything = true;
    this.loop.kick();
  }

  /** Called for every create/update/delete event; mark what needs reconciling. */
  protected abstract onEvent(ev: Extract<StoreEvent, { kind: 'create' | 'update' | 'delete' }>): void;

  /** All keys, for a full pass. */
  protected abstract allKeys(): string[];

  /** Reconciles `keys`; throwing retries them later. */
  protected abstract reconcile(keys: string[]): Promise<void>;

  protected get isStarted(): boolean {
    return this.loop.isStarted;
  }

  private handle(ev: StoreEvent): void {
    if (ev.kind === 'restore') return this.markAll();
    if (ev.kind === 'commit') return;
    try {
      this.onEvent(ev);
    } catch (e) {
      this.log.warn({ err: errMessage(e) }, 'event handler failed');
    }
  }

  /** One loop pass: everything dirty so far; on failure the keys go back for the retry. */
  private async pass(): Promise<void> {
    if (!this.loop.isStarted || (!this.everything && this.dirtyKeys.size === 0)) return;
    const keys = this.everything ? [...new Set([...this.allKeys(), ...this.dirtyKeys])] : [...this.dirtyKeys];
    this.everything = false;
    this.dirtyKeys.clear();
    try {
      await this.reconcile(keys);
    } catch (e) {
      for (const k of keys) this.dirtyKeys.add(k);
      throw e;
    }
  }
}
