/**
 * Local snapshots: capture the state machine at the applied index, serialize and persist it in the
 * background, then compact the log keeping `keepEntries` behind it — while the Ready loop keeps
 * running (heartbeats, commits), so tens of MiB never stall replication.
 */
import type { ConfState } from '@shoal/raft';
import type { RaftStorage } from './level-storage.js';
import { wrapSnapshot } from './envelope.js';
import type { MembershipHeader } from './membership.js';

/** What the snapshotter needs of the state machine (the `Applier`'s snapshot half). */
export interface SnapshotSource {
  snapshot(): Uint8Array;
  snapshotLater?(): () => Promise<Uint8Array>;
}

export interface SnapshotterOptions {
  storage: RaftStorage;
  source: SnapshotSource;
  /** Log entries kept behind a snapshot for slow followers. */
  keepEntries: number;
  log: { info(o: object, msg?: string): void };
  /** A write failed: the node must stop (disk trouble). */
  onFatal(err: Error): void;
  /** A snapshot finished (durable or failed): the Ready loop may want to run. */
  onSettled(): void;
  /** A local snapshot is durable: its size (bytes) and how long capture, serialization and write took (seconds). */
  onTaken?(bytes: number, seconds: number): void;
}

export class Snapshotter {
  /** The background write of a local snapshot, while one runs. */
  running: Promise<void> | undefined;
  /** Index of the last durable local snapshot (or the one restored). */
  index = 0;
  /** Index of the last local snapshot started (durable or not). */
  pendingIndex = 0;
  private requests: { resolve(index: number): void; reject(e: Error): void }[] = [];

  constructor(private readonly o: SnapshotterOptions) {}

  /** True when `applied` is `every` entries past the last snapshot and none is being written. */
  due(applied: number, every: number): boolean {
    return !this.running && applied - Math.max(this.index, this.pendingIndex) >= every;
  }

  /** Queues an explicit request (`snapshotNow`); served by {@link serveRequests}. */
  request(): Promise<number> {
    return new Promise((resolve, reject) => this.requests.push({ resolve, reject }));
  }

  get hasRequests(): boolean {
    return this.requests.length > 0;
  }

  /** Serves queued requests: starts a snapshot if anything was applied since the last one. */
  serveRequests(applied: number, capture: () => { conf: ConfState; header: MembershipHeader }, failure: () => Error | undefined): void {
    if (this.requests.length === 0 || this.running) return;
    const reqs = this.requests;
    this.requests = [];
    if (applied > this.index) {
      const c = capture();
      this.start(applied, c.conf, c.header);
    }
    void (this.running ?? Promise.resolve()).then(() => {
      const f = failure();
      for (const r of reqs) (f ? r.reject(f) : r.resolve(this.index));
    });
  }

  failRequests(err: Error): void {
    for (const r of this.requests) r.reject(err);
    this.requests = [];
  }

  /**
   * Captures the state machine now (synchronously, so it is exactly `index`) and persists it in
   * the background; `index` advances when the snapshot is durable.
   */
  start(index: number, conf: ConfState, header: MembershipHeader): void {
    const t0 = performance.now();
    const later = this.o.source.snapshotLater?.();
    const eager = later ? undefined : this.o.source.snapshot();
    const compactIndex = Math.max(0, index - this.o.keepEntries);
    this.pendingIndex = index;
    const p: Promise<void> = (later ? later() : Promise.resolve(eager!))
      .then((state) => {
        const data = wrapSnapshot(header, state);
        return this.o.storage.saveSnapshot(index, conf, data, compactIndex).then(() => data.byteLength);
      })
      .then(
        (bytes) => {
          this.index = Math.max(this.index, index);
          this.o.onTaken?.(bytes, (performance.now() - t0) / 1000);
          this.o.log.info({ index, bytes, compactIndex }, 'raft: snapshot taken, log compacted');
        },
        (err: Error) => this.o.onFatal(err),
      );
    this.running = p;
    void p.finally(() => {
      if (this.running === p) this.running = undefined;
      this.o.onSettled();
    });
  }
}
