import path from 'node:path';
import { EventEmitter } from 'node:events';
import {
  type Cluster, type DispatcherClient, type Node, type NodeDescription, DEFAULTS, ShoalError, newId,
} from '@shoal/api';
import { MemoryStore } from '@shoal/store';
import { RaftNode } from '@shoal/replication';
import { ControlApi, defaultClusterSpec } from '@shoal/controlapi';
import { Orchestrators } from '@shoal/orchestrator';
import { Scheduler } from '@shoal/scheduler';
import { Allocator } from '@shoal/allocator';
import { Dispatcher, localDispatcherClient } from '@shoal/dispatcher';

export interface Logger {
  info(o: unknown, msg?: string): void;
  warn(o: unknown, msg?: string): void;
  error(o: unknown, msg?: string): void;
  debug(o: unknown, msg?: string): void;
}

export interface ManagerOptions {
  nodeId: string;
  /** Raft log, hard state and snapshots live under `<dataDir>/raft` (LevelDB). */
  dataDir: string;
  advertiseAddr: string;
  logger: Logger;
  /** Raft tick in ms (default 100). */
  tickMs?: number;
  /** Restart as a single-voter cluster keeping all state (`swarm init --force-new-cluster`). */
  forceNewCluster?: boolean;
}

interface LeaderComponent {
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/**
 * A manager node (SwarmKit `manager/manager.go`): the Raft-replicated store, the control API on
 * every manager, and the leader-only components — dispatcher, allocator, scheduler,
 * orchestrators — started when this node becomes the Raft leader and stopped when it stops
 * being one. Components never call each other: they watch the store and write to it.
 */
export class Manager extends EventEmitter {
  readonly store = new MemoryStore();
  readonly control: ControlApi;
  private raft!: RaftNode;
  private dispatcher: Dispatcher | undefined;
  private components: LeaderComponent[] = [];
  private leading = false;
  private transition: Promise<void> = Promise.resolve();

  private constructor(readonly opts: ManagerOptions) {
    super();
    this.control = new ControlApi(this.store);
  }

  /** Opens (or creates) the manager's Raft state under `dataDir` and starts replicating. */
  static async open(opts: ManagerOptions): Promise<Manager> {
    const m = new Manager(opts);
    m.raft = await RaftNode.open({
      id: opts.nodeId,
      dataDir: path.join(opts.dataDir, 'raft'),
      tickMs: opts.tickMs ?? 100,
      applier: m.store,
      ...(opts.forceNewCluster ? { forceNewCluster: true } : {}),
      logger: opts.logger,
    });
    m.store.setProposer(m.raft);
    m.raft.on('leader-change', (_leader: string, isLocal: boolean) => m.onLeadership(isLocal));
    if (m.raft.isLeader()) m.onLeadership(true);
    return m;
  }

  isLeader(): boolean {
    return this.raft.isLeader();
  }

  leaderId(): string {
    return this.raft.leaderId();
  }

  /** Resolves once this node leads and its leader components run (single-voter start-up). */
  async waitLeader(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.leading && this.dispatcher)) {
      if (Date.now() > deadline) throw new ShoalError('Unavailable', `no Raft leader after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
      await this.transition;
    }
  }

  /**
   * Writes the objects of a new cluster: the cluster record and this node as its first manager.
   * Called once by `swarm init`, after this node leads its single-voter Raft group.
   */
  async bootstrap(desc: NodeDescription, extra: Partial<Cluster> = {}): Promise<void> {
    const now = new Date().toISOString();
    await this.store.update((tx) => {
      if (tx.list('clusters').length === 0) {
        tx.create('clusters', { id: newId(), meta: { version: 0, createdAt: now, updatedAt: now }, spec: defaultClusterSpec(), ...extra });
      }
      if (!tx.get('nodes', this.opts.nodeId)) {
        const node: Node = {
          id: this.opts.nodeId,
          meta: { version: 0, createdAt: now, updatedAt: now },
          spec: { labels: {}, desiredRole: 'manager', availability: 'active' },
          role: 'manager',
          description: desc,
          status: { state: 'unknown', message: '', addr: this.opts.advertiseAddr },
          managerStatus: { leader: true, reachability: 'reachable', addr: this.opts.advertiseAddr, raftId: this.opts.nodeId },
        };
        tx.create('nodes', node);
      }
    });
  }

  /**
   * A dispatcher client for this node's own agent. It follows leadership: calls go to the
   * dispatcher of this process while it leads, and fail with Unavailable otherwise (the agent
   * retries and re-opens its session).
   */
  localDispatcherClient(): DispatcherClient {
    const current = (): DispatcherClient => {
      if (!this.dispatcher) throw new ShoalError('Unavailable', 'this manager is not the leader');
      return localDispatcherClient(this.dispatcher);
    };
    return {
      openSession: async (req) => current().openSession(req),
      heartbeat: async (sid) => current().heartbeat(sid),
      updateTaskStatus: async (sid, u) => current().updateTaskStatus(sid, u),
      watchAssignments: (sid, on, end) => {
        try {
          return current().watchAssignments(sid, on, end);
        } catch (e) {
          queueMicrotask(() => end(e as Error));
          return () => {};
        }
      },
    };
  }

  private onLeadership(isLocal: boolean): void {
    this.transition = this.transition.then(async () => {
      if (isLocal === this.leading) return;
      this.leading = isLocal;
      if (isLocal) {
        this.opts.logger.info({ nodeId: this.opts.nodeId }, 'became leader: starting dispatcher, allocator, scheduler, orchestrators');
        const cluster = this.store.view((tx) => tx.list('clusters')[0]);
        this.dispatcher = new Dispatcher(this.store, {
          heartbeatPeriodMs: cluster?.spec.dispatcher.heartbeatPeriodMs ?? DEFAULTS.cluster.dispatcher.heartbeatPeriodMs,
          graceMultiplier: DEFAULTS.heartbeatGraceMultiplier,
        });
        this.components = [this.dispatcher, new Allocator(this.store), new Scheduler(this.store), new Orchestrators(this.store)];
        for (const c of this.components) await c.start();
      } else {
        this.opts.logger.info({ nodeId: this.opts.nodeId }, 'lost leadership: stopping leader components');
        await this.stopComponents();
      }
      this.emit('leadership', isLocal);
    }).catch((e) => this.opts.logger.error({ err: String(e) }, 'leadership transition failed'));
  }

  private async stopComponents(): Promise<void> {
    for (const c of this.components.reverse()) {
      try {
        await c.stop();
      } catch (e) {
        this.opts.logger.warn({ err: String(e) }, 'component stop failed');
      }
    }
    this.components = [];
    this.dispatcher = undefined;
  }

  async close(): Promise<void> {
    await this.transition;
    this.leading = false;
    await this.stopComponents();
    await this.raft.close();
  }
}
