import type { MemoryStore } from '@shoal/store';
import type { ComponentOptions } from './reconciler.js';
import type { OrchestratorOptions } from './service-orchestrator.js';
import { GlobalOrchestrator } from './global.js';
import { JobOrchestrator } from './jobs.js';
import { ReplicatedOrchestrator } from './replicated.js';
import { TaskReaper, type TaskReaperOptions } from './reaper.js';
import { RestartSupervisor } from './restart.js';
import { SupersededReaper } from './superseded.js';

/**
 * All leader-only orchestration components over one store, sharing one restart supervisor:
 * `new Orchestrators(store).start()` when this manager becomes Raft leader, `stop()` when it stops
 * being leader. `idle()` resolves once no component has a pass running or due (tests).
 */
export class Orchestrators {
  readonly restart: RestartSupervisor;
  readonly replicated: ReplicatedOrchestrator;
  readonly global: GlobalOrchestrator;
  /** Replicated and global jobs (run to completion). */
  readonly jobs: JobOrchestrator;
  readonly reaper: TaskReaper;
  /** Deletes the secrets and configs a stack redeploy replaced, once unused. */
  readonly superseded: SupersededReaper;

  /**
   * @param opts.reaperBatchMs task reaper batching period (default 250 ms)
   * @param opts.removeWaitsForStop see {@link TaskReaperOptions.removeWaitsForStop}
   * @param opts.drainHandoffMs see {@link OrchestratorOptions.drainHandoffMs}
   */
  constructor(store: MemoryStore, opts: ComponentOptions & { reaperBatchMs?: number; removeWaitsForStop?: boolean; drainHandoffMs?: number } = {}) {
    this.restart = new RestartSupervisor(opts.clock ? { clock: opts.clock } : {});
    const o = { ...opts, restart: this.restart };
    this.replicated = new ReplicatedOrchestrator(store, o);
    this.global = new GlobalOrchestrator(store, o);
    this.jobs = new JobOrchestrator(store, o);
    this.reaper = new TaskReaper(store, {
      ...opts,
      ...(opts.reaperBatchMs !== undefined ? { batchMs: opts.reaperBatchMs } : {}),
    });
    this.superseded = new SupersededReaper(store, opts);
  }

  start(): void {
    this.restart.start();
    this.replicated.start();
    this.global.start();
    this.jobs.start();
    this.reaper.start();
    this.superseded.start();
  }

  stop(): void {
    this.superseded.stop();
    this.reaper.stop();
    this.jobs.stop();
    this.global.stop();
    this.replicated.stop();
    this.restart.stop();
  }

  get busy(): boolean {
    return this.replicated.busy || this.global.busy || this.jobs.busy || this.reaper.busy || this.superseded.busy;
  }

  /** Resolves once every component is idle at the same moment. */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && this.busy; i++) {
      await Promise.all([this.replicated.idle(), this.global.idle(), this.jobs.idle(), this.reaper.idle(), this.superseded.idle()]);
      await new Promise((r) => setImmediate(r));
    }
  }
}
