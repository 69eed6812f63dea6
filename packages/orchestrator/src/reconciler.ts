import type { MemoryStore, StoreEvent } from '@shoal/store';
import { type Clock, realClock } from './clock.js';

export interface Logger {
  warn(msg: string): void;
  info?(msg: string): void;
}

export interface ComponentOptions {
  /** Time source for delays and batching; tests pass a {@link FakeClock}. Default: real time. */
  clock?: Clock;
  logger?: Logger;
}

const silent: Logger = { warn: () => {} };

/**
 * Event loop shared by the orchestrators and the task reaper (the SwarmKit pattern: watch the store,
 * mark keys dirty, reconcile them after each commit, write back in transactions).
 *
 * - `start()` subscribes to the store and reconciles everything once (which also re-arms whatever a
 *   previous leader left half done); a `restore` event (state replaced from a snapshot) does the same.
 * - Keys marked dirty by {@link Reconciler.onEvent} are reconciled after the entry's `commit` event,
 *   one pass at a time: a pass never overlaps the next, so each pass reads what the previous one
 *   wrote. A failing pass is retried with backoff (50 ms doubling to 2 s).
 */
export abstract class Reconciler {
  protected readonly clock: Clock;
  protected readonly log: Logger;
  private dirtyKeys = new Set<string>();
  private everything = false;
  private started = false;
  private running = false;
  private scheduled = false;
  private unwatch?: () => void;
  /** Batch or backoff timer before the next pass. */
  private timer?: unknown;
  /** Delay between the first dirty mark and the pass (0 = next turn of the event loop). */
  protected batchMs = 0;
  private backoffMs = 0;
  private waiters: (() => void)[] = [];

  constructor(protected readonly store: MemoryStore, opts: ComponentOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger ?? silent;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.unwatch = this.store.watch((ev) => this.handle(ev));
    this.markAll();
  }

  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.dirtyKeys.clear();
    this.everything = false;
    this.settle();
  }

  /** True while a pass is running or about to run (a pass waiting for a batch or backoff timer is idle). */
  get busy(): boolean {
    return this.started && (this.running || this.scheduled);
  }

  /** Resolves once no pass is running or about to run. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks one key dirty and makes sure a pass runs soon. */
  protected mark(key: string): void {
    if (!this.started) return;
    this.dirtyKeys.add(key);
    this.kick();
  }

  /** Marks everything dirty (start, restore). */
  protected markAll(): void {
    if (!this.started) return;
    this.everything = true;
    this.kick();
  }

  /** Called for every create/update/delete event; mark what needs reconciling. */
  protected abstract onEvent(ev: Extract<StoreEvent, { kind: 'create' | 'update' | 'delete' }>): void;

  /** All keys, for a full pass. */
  protected abstract allKeys(): string[];

  /** Reconciles `keys`; throwing retries them later. */
  protected abstract reconcile(keys: string[]): Promise<void>;

  protected get isStarted(): boolean {
    return this.started;
  }

  private handle(ev: StoreEvent): void {
    if (ev.kind === 'restore') return this.markAll();
    if (ev.kind === 'commit') return;
    try {
      this.onEvent(ev);
    } catch (e) {
      this.log.warn(`${this.constructor.name}: event handler failed: ${(e as Error).message}`);
    }
  }

  private kick(): void {
    if (!this.started || this.scheduled || this.running || this.timer !== undefined) return;
    if (this.batchMs > 0) this.after(this.batchMs);
    else this.schedule();
  }

  private after(ms: number): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.schedule();
    }, ms);
  }

  private schedule(): void {
    if (!this.started || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running || !this.started) return;
    this.running = true;
    try {
      while (this.started && (this.everything || this.dirtyKeys.size > 0)) {
        const keys = this.everything ? [...new Set([...this.allKeys(), ...this.dirtyKeys])] : [...this.dirtyKeys];
        this.everything = false;
        this.dirtyKeys.clear();
        try {
          await this.reconcile(keys);
          this.backoffMs = 0;
        } catch (e) {
          for (const k of keys) this.dirtyKeys.add(k);
          this.backoffMs = Math.min(2000, this.backoffMs ? this.backoffMs * 2 : 50);
          this.log.warn(`${this.constructor.name}: reconcile failed, retrying in ${this.backoffMs} ms: ${(e as Error).message}`);
          if (this.started) this.after(this.backoffMs);
          break;
        }
      }
    } finally {
      this.running = false;
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
