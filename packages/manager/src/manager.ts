import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import {
  type Cluster, type DispatcherClient, type Method, type Node, type NodeDescription, type NodeRole, type Params, type Result,
  type Service, type Task, type TaskList, type TaskState,
  DEFAULTS, TABLE_NAMES, ShoalError, failedPrecondition, unavailable,
} from '@shoal/api';
import { nopMetrics, systemClock, type Clock, type Metrics } from '@shoal/runtime';
import { MemoryStore, type StoreEvent } from '@shoal/store';
import { AesGcmCipher, RaftNode, type Member, type NodeStatus, type PeerAddr, type RaftStorage, type Transport } from '@shoal/replication';
import { ControlApi, type WriteCtx } from '@shoal/controlapi';
import { generateJoinToken, generateUnlockKey } from '@shoal/ca';
import { Orchestrators } from '@shoal/orchestrator';
import { Scheduler } from '@shoal/scheduler';
import { Allocator } from '@shoal/allocator';
import { Dispatcher, localDispatcherClient } from '@shoal/dispatcher';
import { RoleManager } from './role-manager.js';

/** The runtime logger (`@shoal/runtime`), under the name this package always exported. */
export type Logger = import('@shoal/runtime').Logger;

export interface ManagerOptions {
  /** The cluster node this manager runs on. */
  nodeId: string;
  /**
   * This membership's Raft ID: fresh for every membership (init, join, promotion) and stable across
   * restarts of the same one; a node that left the group and comes back gets a new one.
   */
  raftId: string;
  /** Raft log, hard state and snapshots live under `<dataDir>/raft` (LevelDB). */
  dataDir: string;
  advertiseAddr: string;
  logger: Logger;
  /** Raft tick in ms (default 100). */
  tickMs?: number;
  /** Restart as a single-voter cluster keeping all state (`swarm init --force-new-cluster`). */
  forceNewCluster?: boolean;
  /** The Raft peer transport (on the node's cluster gRPC server). Omit for a transport-less single node (tests). */
  transport?: Transport;
  /** Joining an existing cluster: address hints of its managers (the leader adds this node as a learner). */
  join?: { peers: PeerAddr[] };
  /**
   * The data encryption key the Raft log and snapshots are sealed with (docs/SECURITY.md); data
   * still in the clear is encrypted with it on open. Absent: stored in the clear (tests).
   */
  dataKey?: { id: string; key: Buffer };
  /**
   * Time source of Raft, the store's timestamps and every leader component (default
   * {@link systemClock}). The in-process cluster harness (`@shoal/testkit/cluster`) passes one fake
   * clock to every manager and agent.
   */
  clock?: Clock;
  /** Randomness of Raft's election timeouts, in [0, 1) (default `Math.random`; the harness seeds it). */
  random?: () => number;
  /** Raft storage, already opened, instead of LevelDB under `<dataDir>/raft` (the harness keeps it in memory). */
  storage?: RaftStorage;
  /** Take a Raft snapshot after this many applied entries (default 10,000; tests lower it to exercise snapshots). */
  snapshotEvery?: number;
  /** Log entries kept behind a snapshot for slow followers (default 500). */
  keepEntries?: number;
  /**
   * Where Raft, store and leader-component metrics go (docs/OPERATING.md lists them). Default
   * {@link nopMetrics}.
   */
  metrics?: Metrics;
}

/**
 * What the web view shows of the replicated state (`shoald --ui-addr`), read from this manager's
 * store: live objects, shared with the store — the reader must not change them.
 */
export interface ObservedState {
  nodes: readonly Node[];
  services: readonly Service[];
  tasks: readonly Task[];
  /** Node ID of the Raft leader, `''` when none is known. */
  leaderId: string;
}

/** What `node ls` shows as MANAGER STATUS for one manager, from the Raft view. */
export interface ManagerStatus {
  leader: boolean;
  reachability: 'reachable' | 'unreachable' | 'unknown';
  addr: string;
  raftId: string;
}

/** The control methods a manager runs (the rest — init, join, leave, info, unlock — act on the node). */
export type ControlMethod = Exclude<Method, 'swarm.init' | 'swarm.join' | 'swarm.leave' | 'swarm.info' | 'swarm.unlock'>;

interface LeaderComponent {
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/**
 * A manager node (SwarmKit `manager/manager.go`): the Raft-replicated store, the control API on
 * every manager, and the leader-only components — dispatcher, allocator, scheduler,
 * orchestrators, role manager — started when this node becomes the Raft leader and stopped when
 * it stops being one. Components never call each other: they watch the store and write to it.
 *
 * The store is private: outside the reconcilers, every write goes through the control API
 * ({@link call} for client methods; the membership operations below for the join flow).
 *
 * Events: `'leadership' (isLeader)`, `'removed' ()` (this manager's Raft member was removed:
 * the node turns into a worker), `'fatal' (err)` (Raft stopped on a disk error).
 */
export class Manager extends EventEmitter {
  private readonly store: MemoryStore;
  private readonly control: ControlApi;
  private readonly clock: Clock;
  private raft!: RaftNode;
  private dispatcher: Dispatcher | undefined;
  private components: LeaderComponent[] = [];
  private leading = false;
  private transition: Promise<void> = Promise.resolve();
  private joining = new Map<string, Promise<void>>();
  private log: Logger;
  private readonly metrics: Metrics;
  private uncollect: (() => void) | undefined;

  private constructor(readonly opts: ManagerOptions) {
    super();
    this.log = opts.logger;
    this.metrics = opts.metrics ?? nopMetrics;
    this.clock = opts.clock ?? systemClock;
    this.store = new MemoryStore(undefined, { now: () => this.clock.now() });
    this.control = new ControlApi(this.store, {
      membership: { removalProblem: (id) => this.removalProblem(id), isMember: (id) => !!this.memberOfNode(id) },
      clock: this.clock,
    });
  }

  /** Opens (or creates) the manager's Raft state under `<dataDir>/raft` and starts replicating. */
  static async open(opts: ManagerOptions): Promise<Manager> {
    const m = new Manager(opts);
    if (!opts.storage) migrateRaftDir(opts.dataDir, opts.logger);
    m.raft = await RaftNode.open({
      id: opts.raftId,
      nodeId: opts.nodeId,
      dataDir: opts.dataDir,
      tickMs: opts.tickMs ?? 100,
      clock: m.clock,
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.storage ? { storage: opts.storage } : {}),
      ...(opts.snapshotEvery !== undefined ? { snapshotEvery: opts.snapshotEvery } : {}),
      ...(opts.keepEntries !== undefined ? { keepEntries: opts.keepEntries } : {}),
      applier: m.store,
      ...(opts.transport ? { transport: opts.transport } : {}),
      ...(opts.join ? { join: opts.join } : {}),
      ...(opts.forceNewCluster ? { forceNewCluster: true } : {}),
      ...(opts.dataKey ? { encryption: { cipher: new AesGcmCipher(opts.dataKey.key, opts.dataKey.id) } } : {}),
      logger: opts.logger,
      metrics: m.metrics,
    });
    m.store.setProposer(m.raft);
    m.collectStoreMetrics();
    m.raft.on('leader-change', (_leader: string, isLocal: boolean) => m.onLeadership(isLocal));
    // This member was removed from the Raft group (demoted, left, or shut out by a
    // force-new-cluster elsewhere): the node turns into a worker.
    m.raft.on('removed', () => m.emit('removed'));
    // A disk write failed and Raft stopped: the daemon must exit (and be restarted) rather than
    // stay up without a store that can change.
    m.raft.on('error', (e: Error) => m.emit('fatal', e));
    if (m.raft.isLeader()) m.onLeadership(true);
    return m;
  }

  /** True when this member learned (perhaps while opening) that it was removed from the Raft group. */
  get removed(): boolean {
    return this.raft.removedFromGroup;
  }

  isLeader(): boolean {
    return this.raft.isLeader();
  }

  /** The node ID of the current leader, `''` if none is known. */
  leaderNodeId(): string {
    const lead = this.raft.leaderId();
    if (!lead) return '';
    const m = this.raft.members().find((x) => x.id === lead);
    return m?.nodeId || lead;
  }

  /** The cluster-port address of the current leader, if known. */
  leaderAddr(): string | undefined {
    const lead = this.raft.leaderId();
    return lead ? this.raft.peerAddr(lead) : undefined;
  }

  /** Raft members with the nodes they run on and their addresses. */
  members(): Member[] {
    return this.raft.members();
  }

  /** This member's Raft state (term, leader, configuration, removed IDs, commit and apply indexes), for diagnostics and checkers. */
  raftStatus(): NodeStatus {
    return this.raft.status();
  }

  /** Voting members' count and how many make a quorum. */
  quorum(): { voters: number; needed: number } {
    const voters = this.raft.members().filter((m) => m.voter).length;
    return { voters, needed: Math.floor(voters / 2) + 1 };
  }

  private memberOfNode(nodeId: string): Member | undefined {
    return this.raft.members().find((m) => (m.nodeId || m.id) === nodeId);
  }

  /**
   * Manager status per node ID, as `node ls` shows it: Leader, or Reachable/Unreachable from the
   * leader's view of replication progress (followers answer from their own view: reachable while
   * they know a leader).
   */
  managerStatus(): Map<string, ManagerStatus> {
    const st = this.raft.status();
    const out = new Map<string, ManagerStatus>();
    const progress = st.raft.progress ?? {};
    for (const m of this.raft.members()) {
      let reach: ManagerStatus['reachability'];
      if (m.id === st.leader) reach = 'reachable';
      else if (this.raft.isLeader()) reach = progress[m.id]?.recentActive === false ? 'unreachable' : 'reachable';
      else reach = m.id === this.raft.id ? (st.leader ? 'reachable' : 'unreachable') : 'unknown';
      out.set(m.nodeId || m.id, { leader: m.id === st.leader, reachability: reach, addr: m.addr, raftId: m.id });
    }
    return out;
  }

  /**
   * Why removing node `nodeId`'s Raft member now would lose quorum, or undefined when it is safe (or
   * it has no voting member). Leader's view: reachable = recently active (check-quorum).
   */
  removalProblem(nodeId: string): string | undefined {
    const member = this.memberOfNode(nodeId);
    if (!member?.voter) return undefined;
    const voters = this.raft.members().filter((m) => m.voter);
    const status = this.managerStatus();
    const reachable = voters.filter((v) => v.id !== member.id && status.get(v.nodeId || v.id)?.reachability === 'reachable').length;
    const quorumAfter = Math.floor((voters.length - 1) / 2) + 1;
    if (reachable < quorumAfter) {
      return `the remaining managers would lose quorum (${reachable} of ${voters.length - 1} reachable, ${quorumAfter} needed)`;
    }
    return undefined;
  }

  /** Linearizable read barrier (ReadIndex): resolves once this node has applied everything committed before the call. */
  readBarrier(timeoutMs = 5000): Promise<void> {
    return this.raft.readIndex(timeoutMs);
  }

  // ---- reads for the node (certificates, the join flow, `swarm info`) ------------------------

  /** The cluster object, once replicated here. */
  cluster(): Cluster | undefined {
    return this.store.view((tx) => tx.list('clusters')[0]);
  }

  node(id: string): Node | undefined {
    return this.store.view((tx) => tx.get('nodes', id));
  }

  nodeCount(): number {
    return this.store.view((tx) => tx.list('nodes').length);
  }

  /** True for node IDs removed from the cluster (`node rm`): their certificates are refused. */
  isRevoked(nodeId: string): boolean {
    return !!this.cluster()?.removedNodes?.includes(nodeId);
  }

  /** Calls `fn` after every applied entry and snapshot restore (e.g. to reload the root CA). */
  onCommit(fn: () => void): () => void {
    return this.store.watch((ev: StoreEvent) => (ev.kind === 'commit' || ev.kind === 'restore' ? fn() : undefined));
  }

  /** The nodes (with live manager status), services and tasks of the replicated state, for the web view. */
  observe(): ObservedState {
    const { nodes, services, tasks } = this.store.view((tx) => ({ nodes: tx.list('nodes'), services: tx.list('services'), tasks: tx.list('tasks') }));
    return { nodes: this.withManagerStatus(nodes), services, tasks, leaderId: this.leaderNodeId() };
  }

  /**
   * Store gauges, read at scrape time: `shoal_store_objects{table}`, `shoal_service_tasks{service,
   * state}` (every task the store holds, history included, by observed state; SwarmKit
   * `swarm_manager_tasks_total`) and `shoal_nodes{role,status,availability}`.
   */
  private collectStoreMetrics(): void {
    const objects = this.metrics.gauge({ name: 'shoal_store_objects', help: 'Objects in the replicated store, by table.', labelNames: ['table'] });
    const tasks = this.metrics.gauge({ name: 'shoal_service_tasks', help: 'Tasks in the store by service name and observed state (history included).', labelNames: ['service', 'state'] });
    const nodes = this.metrics.gauge({ name: 'shoal_nodes', help: 'Nodes of the cluster by role, status and availability.', labelNames: ['role', 'status', 'availability'] });
    const off = this.metrics.onCollect(() => {
      objects.reset();
      tasks.reset();
      nodes.reset();
      this.store.view((tx) => {
        for (const t of TABLE_NAMES) objects.set(tx.list(t).length, { table: t });
        const names = new Map(tx.list('services').map((s) => [s.id, s.spec.name]));
        const counts = new Map<string, { service: string; state: string; n: number }>();
        for (const t of tx.list('tasks')) {
          const service = names.get(t.serviceId) ?? t.serviceId;
          const key = `${service}\u0000${t.status.state}`;
          const c = counts.get(key) ?? { service, state: t.status.state, n: 0 };
          c.n++;
          counts.set(key, c);
        }
        for (const c of counts.values()) tasks.set(c.n, { service: c.service, state: c.state });
        const byNode = new Map<string, { role: string; status: string; availability: string; n: number }>();
        for (const n of tx.list('nodes')) {
          const key = `${n.role}/${n.status.state}/${n.spec.availability}`;
          const c = byNode.get(key) ?? { role: n.role, status: n.status.state, availability: n.spec.availability, n: 0 };
          c.n++;
          byNode.set(key, c);
        }
        for (const c of byNode.values()) nodes.set(c.n, { role: c.role, status: c.status, availability: c.availability });
      });
    });
    this.uncollect = () => {
      off();
      objects.reset();
      tasks.reset();
      nodes.reset();
    };
  }

  /** A canonical dump of the replicated state (see `MemoryStore.dump`), for replica comparisons. */
  dump(): string {
    return this.store.dump();
  }

  // ---- the control methods (leader) ------------------------------------------------------------

  /**
   * Runs control method `method` here. Call it on the leader: reads are answered after a ReadIndex
   * barrier; writes carry `ctx.requestId` into the store, which makes them exactly-once.
   * @throws ShoalError from the method; Unavailable when this manager is not the leader.
   */
  async call<M extends ControlMethod>(method: M, params: Params<M>, ctx: WriteCtx = {}): Promise<Result<M>> {
    if (!this.raft.isLeader()) throw unavailable('this manager is not the leader');
    const h = this.handlers[method] as unknown as ((p: Params<M>, ctx: WriteCtx) => Promise<Result<M>> | Result<M>) | undefined;
    if (!h) throw new ShoalError('Unimplemented', `unknown control method ${String(method)}`);
    return h(params, ctx);
  }

  /** One implementation per control method; the compiler checks the table is complete and typed. */
  private readonly handlers: { [M in ControlMethod]: (p: Params<M>, ctx: WriteCtx) => Promise<Result<M>> | Result<M> } = {
    'swarm.joinToken': (p, ctx) => this.joinToken(p.role, false, ctx),
    'swarm.rotateJoinToken': (p, ctx) => this.joinToken(p.role, true, ctx),
    'swarm.update': (p, ctx) => this.updateCluster(p, ctx).then(() => ({})),
    'swarm.unlockKey': () => ({ key: this.control.getCluster().unlockKey ?? '' }),
    'swarm.rotateUnlockKey': (_p, ctx) => this.rotateUnlockKey(ctx),
    'service.create': (p, ctx) => this.control.createService(p, ctx),
    'service.ls': () => this.control.listServices(),
    'service.inspect': (p) => this.control.getService(p.ref),
    'service.ps': (p) => this.taskList(this.control.listTasks({
      service: p.ref, ...(p.desiredState ? { desiredState: p.desiredState as TaskState } : {}), ...(p.node ? { node: p.node } : {}),
    })),
    'service.update': (p, ctx) => this.control.updateService(p.ref, p, ctx),
    'service.scale': (p, ctx) => this.control.scaleService(p.ref, p.replicas, ctx),
    'service.rm': (p, ctx) => this.control.removeService(p.ref, ctx),
    'node.ls': () => ({ nodes: this.withManagerStatus(this.control.listNodes()), selfId: '' }),
    'node.inspect': (p) => this.withManagerStatus([this.control.getNode(p.ref)])[0]!,
    'node.update': ({ ref, ...change }, ctx) => this.control.updateNode(ref, change, ctx),
    'node.rm': (p, ctx) => this.control.removeNode(p.ref, !!p.force, ctx),
    'node.ps': (p) => this.taskList(this.control.listTasks({ node: p.ref })),
    'network.create': (p, ctx) => this.control.createNetwork(p, ctx),
    'network.ls': () => this.control.listNetworks(),
    'network.inspect': (p) => this.control.getNetwork(p.ref),
    'network.rm': (p, ctx) => this.control.removeNetwork(p.ref, ctx),
    'task.inspect': (p) => this.control.getTask(p.ref),
    'stack.deploy': (p, ctx) => this.control.deployStack(p, ctx),
    'stack.ls': () => this.control.listStacks(),
    'stack.services': (p) => this.control.stackServices(p.stack),
    'stack.ps': (p) => this.taskList(this.control.stackTasks(p.stack, p.desiredState as TaskState | undefined)),
    'stack.rm': (p, ctx) => this.control.removeStack(p.stack, ctx),
    'secret.create': (p, ctx) => this.control.createSecretLike('secrets', p, ctx),
    'secret.ls': (p) => this.control.listSecretLike('secrets', p.filters),
    'secret.inspect': (p) => this.control.getSecret(p.ref),
    'secret.update': (p, ctx) => this.control.updateSecretLike('secrets', p.ref, { labels: p.labels, ...(p.version !== undefined ? { version: p.version } : {}) }, ctx),
    'secret.rm': (p, ctx) => this.control.removeSecretLike('secrets', p.ref, ctx),
    'config.create': (p, ctx) => this.control.createSecretLike('configs', p, ctx),
    'config.ls': (p) => this.control.listSecretLike('configs', p.filters),
    'config.inspect': (p) => this.control.getConfig(p.ref),
    'config.update': (p, ctx) => this.control.updateSecretLike('configs', p.ref, { labels: p.labels, ...(p.version !== undefined ? { version: p.version } : {}) }, ctx),
    'config.rm': (p, ctx) => this.control.removeSecretLike('configs', p.ref, ctx),
  };

  /** `swarm update`: turning autolock on makes a fresh unlock key (kept when it is on already). */
  private updateCluster(p: Params<'swarm.update'>, ctx: WriteCtx): Promise<void> {
    const on = p.autolock === true && !this.control.getCluster().spec.encryption?.autoLockManagers;
    return this.control.updateCluster({ ...p, ...(on ? { unlockKey: generateUnlockKey() } : {}) }, ctx);
  }

  /** `swarm unlock-key --rotate`: a new unlock key; every manager re-wraps its keys with it. */
  private async rotateUnlockKey(ctx: WriteCtx): Promise<{ key: string }> {
    await this.control.setUnlockKey(generateUnlockKey(), ctx);
    // A retried rotation answers with the key the first one stored.
    return { key: this.control.getCluster().unlockKey ?? '' };
  }

  /** Tasks with the hostnames of their nodes. */
  private taskList(tasks: Task[]): TaskList {
    return { tasks, nodes: Object.fromEntries(this.control.listNodes().map((n) => [n.id, n.description?.hostname ?? n.id])) };
  }

  /** Nodes with MANAGER STATUS from the live Raft view, not the stored record. */
  private withManagerStatus(nodes: Node[]): Node[] {
    const st = this.managerStatus();
    return nodes.map((n) => {
      const s = st.get(n.id);
      if (!s) return n.role === 'manager' ? { ...n, managerStatus: { leader: false, reachability: 'unreachable', addr: n.managerStatus?.addr ?? '', raftId: n.managerStatus?.raftId ?? '' } } : n;
      return { ...n, managerStatus: { leader: s.leader, reachability: s.reachability, addr: s.addr, raftId: s.raftId } };
    });
  }

  private async joinToken(role: NodeRole, rotate: boolean, ctx: WriteCtx): Promise<{ token: string; managerAddr: string }> {
    const c = this.control.getCluster();
    if (!c.joinTokens || !c.rootCaCert) throw failedPrecondition('this cluster has no join tokens');
    let token = c.joinTokens[role];
    if (rotate) {
      token = generateJoinToken(c.rootCaCert);
      await this.control.setJoinToken(role, token, ctx);
      // A retried rotation answers with the token the first one stored.
      token = this.control.getCluster().joinTokens?.[role] ?? token;
    }
    return { token, managerAddr: this.opts.advertiseAddr };
  }

  // ---- membership (leader; called through the cluster port) -----------------------------------

  /**
   * Writes the objects of a new cluster: the cluster record and this node as its first manager.
   * Called once by `swarm init`, after this node leads its single-voter Raft group.
   */
  bootstrap(description: NodeDescription, cluster: Partial<Cluster>): Promise<void> {
    return this.control.bootstrapCluster({ nodeId: this.opts.nodeId, raftId: this.opts.raftId, addr: this.opts.advertiseAddr, description, cluster });
  }

  /**
   * Admits a joining node (the join flow, after its token was checked): a Node object of `role`.
   * @returns its node ID and the voting managers' addresses.
   */
  async admit(role: NodeRole, addr: string, hostname?: string): Promise<{ nodeId: string; managers: string[] }> {
    const { nodeId } = await this.control.admitNode({ role, addr, ...(hostname ? { hostname } : {}) });
    return { nodeId, managers: this.raft.members().filter((x) => x.voter).map((x) => x.addr).filter(Boolean) };
  }

  /**
   * Adds node `nodeId`'s manager to the Raft group as member `raftId` at `addr`: first as a learner
   * that catches up from the log or a snapshot, then as a voter (Raft thesis §4.2.1), so the quorum
   * never waits on an empty member; then records the node as a manager. A node whose earlier
   * member is still in the group (it restarted with a fresh Raft ID) has the old member removed
   * first, so one node never holds two votes. Idempotent for the same `raftId`.
   * @throws Unavailable (not leader, catch-up timeout), FailedPrecondition (the node's desired role
   *   is not manager; a removed Raft ID), InvalidArgument.
   */
  joinRaft(nodeId: string, raftId: string, addr: string, timeoutMs = 60_000): Promise<void> {
    const key = `${nodeId}/${raftId}`;
    let p = this.joining.get(key);
    if (!p) {
      p = this.doJoinRaft(nodeId, raftId, addr, timeoutMs).finally(() => this.joining.delete(key));
      this.joining.set(key, p);
    }
    return p;
  }

  private async doJoinRaft(nodeId: string, raftId: string, addr: string, timeoutMs: number): Promise<void> {
    if (!this.raft.isLeader()) throw unavailable('this manager is not the leader');
    const node = this.node(nodeId);
    if (!node) throw failedPrecondition(`node ${nodeId} is not a member of this cluster; it must join again`);
    if (node.spec.desiredRole !== 'manager') throw failedPrecondition(`node ${node.description?.hostname ?? nodeId} is not to be a manager (desired role ${node.spec.desiredRole})`);
    if (this.raft.isRemoved(raftId)) throw failedPrecondition(`Raft ID ${raftId} was removed from the group; restart the node's manager so that it joins under a fresh Raft ID`);
    const stale = this.memberOfNode(nodeId);
    if (stale && stale.id !== raftId) {
      this.log.info({ nodeId, old: stale.id, new: raftId }, 'a manager rejoins under a fresh Raft ID: removing its old member first');
      const problem = this.removalProblem(nodeId);
      if (problem) throw unavailable(`cannot replace node ${nodeId}'s old Raft member yet: ${problem}`);
      await this.raft.removeMember(stale.id);
    }
    try {
      await this.raft.addMember(raftId, addr, timeoutMs, nodeId);
    } catch (e) {
      throw e instanceof ShoalError ? e : unavailable(`could not add node ${nodeId} to the Raft group: ${(e as Error).message}`);
    }
    await this.control.recordManager(nodeId, raftId, addr);
  }

  /**
   * A manager leaves the swarm (`swarm leave --force` on it): its member is removed (the leader
   * hands over first if it is the one leaving) and the node is recorded as a Down worker.
   */
  async leaveRaft(nodeId: string): Promise<void> {
    const m = this.memberOfNode(nodeId);
    if (m) {
      if (m.id === this.raft.id) {
        await this.raft.transferLeadership();
        throw unavailable('leadership handed over; call again on the new leader');
      }
      await this.raft.removeMember(m.id);
    }
    await this.control.recordWorker(nodeId, { down: 'node left the swarm' });
  }

  /**
   * A node reports that its manager's Raft member `raftId` was removed from the group (it learned it
   * from Raft). If the store still records the node as a manager with that member — the case a
   * force-new-cluster leaves behind — the node is recorded as a worker, with desired role worker:
   * it becomes a manager again only when promoted. A late report about an older membership (the
   * node was demoted, and perhaps promoted again since) changes nothing.
   * @returns whether the node is a worker now (the reporter may stop reporting).
   */
  async managerRemoved(nodeId: string, raftId: string): Promise<{ worker: boolean }> {
    if (this.memberOfNode(nodeId)?.id === raftId) return { worker: false };
    const n = this.node(nodeId);
    if (n?.role === 'manager' && (n.managerStatus?.raftId === raftId || !n.managerStatus)) {
      if (this.memberOfNode(nodeId)) return { worker: true }; // a newer membership is under way
      await this.control.recordWorker(nodeId);
    }
    return { worker: true };
  }

  /** Hands Raft leadership to another voter. */
  transferLeadership(to?: string): Promise<void> {
    return this.raft.transferLeadership(to);
  }

  /** Resolves once this node leads and its leader components run (single-voter start-up). */
  async waitLeader(timeoutMs = 10_000): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    while (!(this.leading && this.dispatcher)) {
      if (this.clock.now() > deadline) throw new ShoalError('Unavailable', `no Raft leader after ${timeoutMs} ms`);
      await new Promise<void>((r) => void this.clock.setTimeout(r, 20));
      await this.transition;
    }
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
        this.log.info({ nodeId: this.opts.nodeId }, 'became leader: starting dispatcher, allocator, scheduler, orchestrators, role manager');
        const cluster = this.cluster();
        const clock = this.clock;
        this.dispatcher = new Dispatcher(this.store, {
          heartbeatPeriodMs: cluster?.spec.dispatcher.heartbeatPeriodMs ?? DEFAULTS.cluster.dispatcher.heartbeatPeriodMs,
          graceMultiplier: DEFAULTS.heartbeatGraceMultiplier,
          logger: this.opts.logger,
          clock,
          metrics: this.metrics,
        });
        const roles = new RoleManager({
          store: this.store, control: this.control, raft: this.raft, log: this.log, clock,
          removalProblem: (id) => this.removalProblem(id),
          onRemoved: (m) => this.emit('member-removed', m),
        });
        this.components = [
          this.dispatcher, new Allocator(this.store, { logger: this.log, metrics: this.metrics, clock }), new Scheduler(this.store, { logger: this.log, metrics: this.metrics, clock }),
          new Orchestrators(this.store, { logger: this.log, metrics: this.metrics, clock }), roles,
        ];
        for (const c of this.components) await c.start();
      } else {
        this.log.info({ nodeId: this.opts.nodeId }, 'lost leadership: stopping leader components');
        await this.stopComponents();
      }
      this.emit('leadership', isLocal);
    }).catch((e) => this.log.error({ err: String(e) }, 'leadership transition failed'));
  }

  private async stopComponents(): Promise<void> {
    for (const c of this.components.reverse()) {
      try {
        await c.stop();
      } catch (e) {
        this.log.warn({ err: String(e) }, 'component stop failed');
      }
    }
    this.components = [];
    this.dispatcher = undefined;
  }

  async close(): Promise<void> {
    await this.transition;
    this.leading = false;
    await this.stopComponents();
    this.uncollect?.();
    this.uncollect = undefined;
    await this.raft.close();
  }
}

/**
 * Raft data used to land in `<dataDir>/raft/raft` (the manager and the Raft host both added
 * `raft`); it belongs in `<dataDir>/raft`. Moves an old layout once, by renames (atomic per step;
 * a crash between the two leaves `raft.migrating`, finished on the next start).
 */
function migrateRaftDir(dataDir: string, log: Logger): void {
  const dir = path.join(dataDir, 'raft');
  const nested = path.join(dir, 'raft');
  const tmp = path.join(dataDir, 'raft.migrating');
  try {
    if (fs.existsSync(nested) && !fs.existsSync(path.join(dir, 'CURRENT'))) {
      fs.renameSync(dir, tmp);
    }
    if (fs.existsSync(tmp)) {
      fs.renameSync(path.join(tmp, 'raft'), dir);
      fs.rmSync(tmp, { recursive: true, force: true });
      log.info({ dir }, 'moved Raft data from <data-dir>/raft/raft to <data-dir>/raft');
    }
  } catch (e) {
    log.warn({ err: String(e), dir }, 'could not move Raft data to its new place; leaving it');
  }
}
