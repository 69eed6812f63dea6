import path from 'node:path';
import { EventEmitter } from 'node:events';
import {
  type Cluster, type DispatcherClient, type Node, type NodeDescription, DEFAULTS, ShoalError, newId,
} from '@shoal/api';
import { MemoryStore } from '@shoal/store';
import { RaftNode, type GrpcTransport, type PeerAddr } from '@shoal/replication';
import { ControlApi, defaultClusterSpec } from '@shoal/controlapi';
import { Orchestrators } from '@shoal/orchestrator';
import { Scheduler } from '@shoal/scheduler';
import { Allocator } from '@shoal/allocator';
import { Dispatcher, localDispatcherClient } from '@shoal/dispatcher';

/** The runtime logger (`@shoal/runtime`), under the name this package always exported. */
export type Logger = import('@shoal/runtime').Logger;

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
  /** The Raft peer transport (on the node's cluster gRPC server). Omit for a transport-less single node (tests). */
  transport?: GrpcTransport;
  /** Joining an existing cluster: address hints of its managers (the leader adds this node as a learner). */
  join?: { peers: PeerAddr[] };
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
  private membership: Promise<unknown> = Promise.resolve();

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
      ...(opts.transport ? { transport: opts.transport } : {}),
      ...(opts.join ? { join: opts.join } : {}),
      ...(opts.forceNewCluster ? { forceNewCluster: true } : {}),
      logger: opts.logger,
    });
    m.store.setProposer(m.raft);
    m.raft.on('leader-change', (_leader: string, isLocal: boolean) => m.onLeadership(isLocal));
    // This manager was removed from the Raft group (demoted or left): the daemon turns it into a worker.
    m.raft.on('removed', () => m.emit('removed'));
    // A disk write failed and Raft stopped: the daemon must exit (and be restarted) rather than
    // stay up without a store that can change.
    m.raft.on('error', (e: Error) => m.emit('fatal', e));
    if (m.raft.isLeader()) m.onLeadership(true);
    return m;
  }

  isLeader(): boolean {
    return this.raft.isLeader();
  }

  leaderId(): string {
    return this.raft.leaderId();
  }

  /** Address of a Raft member, if known. */
  peerAddr(id: string): string | undefined {
    return this.raft.peerAddr(id);
  }

  /** Raft members with their addresses. */
  members(): { id: string; addr: string; voter: boolean }[] {
    return this.raft.members();
  }

  /**
   * Manager status per member as `node ls` shows it: Leader, or Reachable/Unreachable from the
   * leader's view of replication progress (followers answer from their own view: reachable while
   * they know a leader).
   */
  managerStatus(): Map<string, { leader: boolean; reachability: 'reachable' | 'unreachable' | 'unknown'; addr: string }> {
    const st = this.raft.status();
    const out = new Map<string, { leader: boolean; reachability: 'reachable' | 'unreachable' | 'unknown'; addr: string }>();
    const progress = (st.raft as unknown as { progress?: Record<string, { recentActive?: boolean }> }).progress ?? {};
    for (const m of this.raft.members()) {
      let reach: 'reachable' | 'unreachable' | 'unknown';
      if (m.id === st.leader) reach = 'reachable';
      else if (this.raft.isLeader()) reach = progress[m.id]?.recentActive === false ? 'unreachable' : 'reachable';
      else reach = m.id === this.opts.nodeId ? (st.leader ? 'reachable' : 'unreachable') : 'unknown';
      out.set(m.id, { leader: m.id === st.leader, reachability: reach, addr: m.addr });
    }
    return out;
  }

  /** Linearizable read barrier (ReadIndex): resolves once this node has applied everything committed before the call. */
  readBarrier(timeoutMs = 5000): Promise<void> {
    return this.raft.readIndex(timeoutMs);
  }

  /**
   * Adds a manager: first as a learner that catches up from the log or a snapshot, then promoted
   * to voter (Raft thesis §4.2.1), so the quorum never waits on an empty member. Leader only;
   * one membership change at a time.
   */
  async addManager(id: string, addr: string, timeoutMs = 30_000): Promise<void> {
    const run = this.membership.then(async () => {
      const deadline = Date.now() + timeoutMs;
      const member = this.raft.members().find((m) => m.id === id);
      if (!member) await this.raft.addLearner(id, addr);
      if (member?.voter) return;
      for (;;) {
        const st = this.raft.status();
        const pr = (st.raft as unknown as { progress?: Record<string, { match: number }> }).progress?.[id];
        if (pr && pr.match >= st.commit - 1) break;
        if (Date.now() > deadline) throw new ShoalError('Unavailable', `manager ${id} did not catch up within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await this.raft.promote(id);
    });
    this.membership = run.catch(() => undefined);
    return run;
  }

  /** Removes a manager from the Raft group (leader only). Hands leadership over first when removing itself. */
  async removeManager(id: string): Promise<void> {
    const run = this.membership.then(async () => {
      if (id === this.opts.nodeId && this.raft.isLeader()) {
        await this.raft.transferLeadership();
        return;
      }
      if (this.raft.members().some((m) => m.id === id)) await this.raft.removeMember(id);
    });
    this.membership = run.catch(() => undefined);
    return run;
  }

  /** Hands Raft leadership to another voter (`node demote` of the leader). */
  transferLeadership(to?: string): Promise<void> {
    return this.raft.transferLeadership(to);
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
        // Apply everything committed before this term first, so components start from the whole state.
        await this.raft.readIndex(5000).catch(() => undefined);
        if (!this.raft.isLeader()) return void (this.leading = false);
        this.opts.logger.info({ nodeId: this.opts.nodeId }, 'became leader: starting dispatcher, allocator, scheduler, orchestrators');
        const cluster = this.store.view((tx) => tx.list('clusters')[0]);
        this.dispatcher = new Dispatcher(this.store, {
          heartbeatPeriodMs: cluster?.spec.dispatcher.heartbeatPeriodMs ?? DEFAULTS.cluster.dispatcher.heartbeatPeriodMs,
          graceMultiplier: DEFAULTS.heartbeatGraceMultiplier,
          logger: this.opts.logger,
        });
        this.components = [this.dispatcher, new Allocator(this.store, { logger: this.opts.logger }), new Scheduler(this.store, { logger: this.opts.logger }), new Orchestrators(this.store, { logger: this.opts.logger })];
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
