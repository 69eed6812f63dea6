/**
 * One node of the in-process cluster: what `SwarmNode` (`packages/node/src/node.ts`) does, minus
 * certificates, gRPC and the control socket. It holds the node's identity (`NodeState`), its Raft
 * "disk" and its container engine (a {@link FakeExecutor}) across restarts, and runs — like
 * `activate` — a {@link Manager} (real Raft over the {@link FakeNetwork}) on managers and an
 * {@link Agent} on every node, all on the harness's one fake clock.
 *
 * Mirrored from `SwarmNode`, method by method (same names): `activate`, `deactivate`,
 * `checkRole` (the periodic certificate/role check; the certificate is modelled by its role only,
 * and never expires), `removedFromRaft`, `joinRaft`/`retryJoinRaft`, `tellRemoved`,
 * `restartServices`, `leaderDispatcher`, `watchManagers`. Calls between nodes (the cluster port)
 * go through {@link FakeCluster}, which checks the network.
 */
import { ShoalError, unavailable, type DispatcherClient, type NodeDescription, type NodeRole } from '@shoal/api';
import { Agent } from '@shoal/agent';
import { Manager } from '@shoal/manager';
import { childLogger, type Logger } from '@shoal/runtime';
import { NO_LEADER, type NodeState } from '@shoal/node';
import type { FakeExecutor } from '../fake-executor.js';
import { FakeDisk, FakeRaftStorage } from './fake-raft-storage.js';
import type { FakeTransport } from './fake-network.js';
import type { FakeCluster } from './cluster.js';
import { seededRandom } from './seeded.js';

/** A promise that rejects when told to (and never reports an unhandled rejection). */
function aborter(): { promise: Promise<never>; reject(e: Error): void } {
  let reject!: (e: Error) => void;
  const promise = new Promise<never>((_, rj) => (reject = rj));
  promise.catch(() => undefined);
  return { promise, reject };
}

/** `m` once a read barrier confirmed its replica is current (cluster-port.ts `desiredRole`). */
async function confirmed(m: Manager): Promise<Manager> {
  await m.readBarrier().catch(() => {
    throw unavailable(`this manager cannot confirm it has the current cluster state; ${NO_LEADER}`);
  });
  return m;
}

/** The notice a node removed from the managers shows (node.ts `removalNotice`). */
export function removalNotice(hostname: string): string {
  return `this node was removed from the swarm's managers (demoted, or shut out by \`swarm init --force-new-cluster\` on another manager) and continues as a worker; to make it a manager again, run \`shoal node promote ${hostname}\` on a manager`;
}

/** A node of a {@link FakeCluster}. */
export class FakeHost {
  /** The cluster-port address (`<name>:2377`). */
  readonly addr: string;
  /** The node's identity, as `node.json` holds it; undefined outside a swarm. */
  state: NodeState | undefined;
  /** The role its certificate names (what `parseCertificate(certPem).role` gives). */
  certRole: NodeRole = 'worker';
  /** `<data-dir>/raft`: survives kills and restarts, wiped when the node stops being a manager. */
  readonly disk = new FakeDisk();
  /**
   * The container engine: survives the node's daemon (its containers die with the host, see
   * {@link FakeCluster.kill}). Made when the node gets its ID (init or join).
   */
  executor!: FakeExecutor;
  manager: Manager | undefined;
  agent: Agent | undefined;
  transport: FakeTransport | undefined;
  /** False while the host is killed. */
  up = true;
  /** Manager memberships (Raft IDs) this host ran, in order (`<name>-r1`, `<name>-r2`, …). */
  memberships = 0;
  private busy: Promise<unknown> = Promise.resolve();
  private roleTimer: ReturnType<FakeCluster['clock']['setTimeout']> | undefined;
  private checking = false;
  private stopped = false;
  /** Rejects when the daemon is killed: what it was waiting for no longer matters. */
  private abort = aborter();
  readonly log: Logger;

  constructor(private readonly cluster: FakeCluster, readonly name: string) {
    this.addr = `${name}:2377`;
    this.log = childLogger(cluster.logger, { node: name });
  }

  /** This node's ID ('' outside a swarm). */
  get nodeId(): string {
    return this.state?.nodeId ?? '';
  }

  /** A fresh Raft ID for a new membership (node.ts `freshRaftId`; readable here: `node4-r2`). */
  freshRaftId(): string {
    return `${this.name}-r${++this.memberships}`;
  }

  /** Serializes swarm-level state changes (node.ts `exclusive`). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  /** Resolves once the swarm-level change under way (if any) has finished. */
  idle(): Promise<unknown> {
    return this.busy;
  }

  private describe(): NodeDescription {
    return {
      hostname: this.name,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 2e9, memoryBytes: 4 * 1024 ** 3 },
      engine: { engineVersion: 'fake', labels: {} },
    };
  }

  // ---- activation (node.ts `activate`, `deactivate`) ------------------------------------------

  /**
   * Starts the node's services for its identity: on managers the Raft transport and the manager;
   * on every node the agent. `bootstrap` writes a new cluster's objects; `joinRaft` asks the leader
   * to add this manager to the Raft group.
   */
  async activate(o: { bootstrap?: { clusterId: string }; joinRaft?: boolean; forceNewCluster?: boolean }): Promise<void> {
    this.alive();
    const st = this.state!;
    if (this.executor?.nodeId !== st.nodeId) this.executor = this.cluster.engine(st.nodeId, this.name);
    let dispatcher: DispatcherClient;
    if (st.role === 'manager') {
      st.raftId ??= this.freshRaftId();
      const commitBefore = this.disk.hardState.commit;
      const transport = this.cluster.net.transport({ id: st.raftId, host: this.name, addr: this.addr });
      this.transport = transport;
      const manager = await this.live(Manager.open({
        nodeId: st.nodeId, raftId: st.raftId, dataDir: `/nonexistent/shoal-harness/${this.name}`, advertiseAddr: this.addr,
        logger: this.log, transport, storage: await FakeRaftStorage.open(this.disk), clock: this.cluster.clock,
        random: seededRandom(this.cluster.seed, st.raftId), tickMs: this.cluster.tickMs, ...this.cluster.raftOptions,
        ...(o.joinRaft ? { join: { peers: [] } } : {}),
        ...(o.forceNewCluster ? { forceNewCluster: true } : {}),
      }), (m) => void m.close().finally(() => transport.close()));
      if (this.stopped) {
        await manager.close();
        this.alive();
      }
      this.manager = manager;
      this.cluster.onManagerOpened(this, manager, { ...o, commitBefore });
      manager.once('fatal', (e: Error) => this.log.error({ err: String(e) }, 'Raft stopped on a fatal storage error'));
      manager.on('removed', () => this.removedFromRaft(manager));
      // The leader tells a member it removed at once (it would otherwise learn it from Raft).
      manager.on('member-removed', (mem: { addr: string }) => this.tellRemoved(mem.addr));
      if (manager.removed) this.cluster.later(() => this.removedFromRaft(manager));
      if (o.bootstrap) {
        await this.live(manager.waitLeader());
        await this.live(manager.bootstrap(this.describe(), { id: o.bootstrap.clusterId }));
      }
      if (o.joinRaft) {
        // A failed join must not leave the node without an agent: keep trying in the background.
        await this.live(this.joinRaft()).catch((e) => {
          if (!this.stopped) this.retryJoinRaft(manager, e as Error);
        });
      }
      this.alive();
      dispatcher = this.leaderDispatcher(manager);
    } else {
      dispatcher = this.cluster.remoteDispatcher(this);
    }
    this.agent = new Agent({
      nodeId: st.nodeId, addr: this.addr, dispatcher: this.watchManagers(dispatcher), executor: this.executor,
      logger: this.log, hostname: this.name, clock: this.cluster.clock,
    });
    this.agent.start();
    this.watchRole();
  }

  async deactivate(): Promise<void> {
    if (this.roleTimer) this.cluster.clock.clearTimeout(this.roleTimer);
    this.roleTimer = undefined;
    const agent = this.agent;
    const manager = this.manager;
    const transport = this.transport;
    this.agent = this.manager = this.transport = undefined;
    await agent?.stop().catch(() => undefined);
    await manager?.close().catch(() => undefined);
    await transport?.close().catch(() => undefined);
  }

  /** The daemon stops cleanly: no more role checks; services stopped once a change under way is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.exclusive(() => this.deactivate());
  }

  /**
   * The daemon dies at once (SIGKILL): whatever it was doing stops mid-way — an activation waiting
   * for a Raft join gives up at once rather than finish on a dead node — and its services stop now.
   */
  async kill(): Promise<void> {
    this.stopped = true;
    this.abort.reject(new Error(`node ${this.name} was killed`));
    await this.deactivate();
  }

  /** The daemon starts again on the same data (node.ts `start`). */
  async start(): Promise<void> {
    this.stopped = false;
    this.abort = aborter();
    if (this.state) await this.exclusive(() => this.activate({}));
  }

  /** `p`, or a rejection as soon as the daemon is killed (`undo` cleans up what `p` makes, if it comes later). */
  private live<T>(p: Promise<T>, undo?: (v: T) => void): Promise<T> {
    if (undo) void p.then((v) => this.stopped && undo(v), () => undefined);
    return Promise.race([p, this.abort.promise]);
  }

  /** @throws when the daemon was stopped or killed (an activation in flight stops there). */
  private alive(): void {
    if (this.stopped) throw new Error(`node ${this.name} was stopped`);
  }

  // ---- roles (node.ts `watchRole`, `checkRole`, `restartServices`) -----------------------------

  private watchRole(): void {
    if (this.roleTimer) this.cluster.clock.clearTimeout(this.roleTimer);
    const arm = (): void => {
      this.roleTimer = this.cluster.clock.setTimeout(() => {
        void this.checkRole().catch((e) => this.log.warn({ err: String(e) }, 'certificate/role check failed'));
        arm();
      }, this.cluster.roleCheckMs);
    };
    arm();
  }

  /**
   * Every `roleCheckMs`: reports an earlier removal from the Raft group until the leader recorded
   * it; renews the certificate when the desired role differs from the certificate's (a manager
   * being demoted keeps its certificate until its member is removed); a worker whose desired role
   * is manager restarts as a manager under a fresh Raft ID and joins the Raft group.
   */
  async checkRole(): Promise<void> {
    if (this.checking || this.stopped || !this.state) return;
    this.checking = true;
    try {
      const st = this.state;
      if (st.removedRaftId && !this.manager) {
        const r = await this.cluster.clusterCall(this, 'node.managerRemoved', (m) => m.managerRemoved(st.nodeId, st.removedRaftId!), { leader: true });
        if (r.worker) delete st.removedRaftId;
      }
      const certRole = this.certRole;
      let desired: NodeRole | undefined;
      if (this.manager) desired = this.manager.node(st.nodeId)?.spec.desiredRole;
      else desired = await this.cluster.clusterCall(this, 'node.desiredRole', async (m) => (await confirmed(m)).node(st.nodeId)?.spec.desiredRole, { leader: false });
      const renew = desired !== undefined && desired !== certRole && !(this.manager && desired === 'worker');
      const promoting = st.role === 'worker' && desired === 'manager' && !st.removedRaftId;
      if (!renew && !promoting) return;
      let role = certRole;
      if (renew) {
        // `renewNodeCertificate`: the manager reached signs the role its replica holds.
        const r = await this.cluster.clusterCall(this, 'ca.renewNodeCertificate', async (m) => {
          const want = (await confirmed(m)).node(st.nodeId)?.spec.desiredRole;
          if (!want) throw new ShoalError('FailedPrecondition', `node ${st.nodeId} is not a member of this cluster`);
          return want;
        }, { leader: !!this.manager });
        this.log.info({ role: r, was: certRole }, 'node certificate renewed');
        role = r;
      }
      await this.exclusive(async () => {
        if (this.state !== st || this.stopped) return;
        this.certRole = role;
        const promote = promoting && role === 'manager';
        await this.deactivate();
        if (promote) {
          st.role = 'manager';
          st.raftId = this.freshRaftId();
          delete st.notice;
          this.disk.wipe();
          this.log.info({ raftId: st.raftId }, 'promoted: starting the manager; joining the Raft group');
        }
        await this.restartServices(st, promote ? { joinRaft: true } : {});
      });
    } finally {
      this.checking = false;
    }
  }

  /** Activates again after the services were stopped, retrying every 2 s (≤ 30 times). */
  async restartServices(st: NodeState, o: { joinRaft?: boolean }): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.activate(o);
        return;
      } catch (e) {
        this.log.error({ err: String(e), attempt }, 'could not restart the node services; retrying in 2 s');
        await this.deactivate();
        if (attempt >= 30) throw e;
        await this.cluster.sleep(2000);
        if (this.state !== st || this.stopped) return;
      }
    }
  }

  /**
   * This manager's Raft member was removed from the group: it carries on as a worker of the same
   * swarm, with empty Raft data, and tells the leader (until it has, a manager certificate is not a
   * promotion).
   */
  removedFromRaft(m: Manager): void {
    void this.exclusive(async () => {
      if (!this.state || this.state.role !== 'manager' || this.manager !== m) return;
      const st = this.state;
      const managers = m.members().map((x) => x.addr).filter((a) => a && a !== this.addr);
      st.notice = removalNotice(this.name);
      this.log.warn({ managers }, 'removed from the Raft group; continuing as a worker');
      await this.deactivate();
      this.disk.wipe();
      st.role = 'worker';
      if (st.raftId) st.removedRaftId = st.raftId;
      delete st.raftId;
      if (managers.length) st.managers = managers;
      await this.restartServices(st, {});
    }).catch((e) => this.log.error({ err: String(e) }, 'could not continue as a worker'));
  }

  /** Tells the node at `addr` that its Raft member was removed (best effort; `manager.removed`). */
  private tellRemoved(addr: string): void {
    const target = this.cluster.hostByAddr(addr);
    if (!target || !target.up || !this.cluster.net.reachable(this.name, target.name)) return;
    const m = target.manager;
    if (m) this.cluster.later(() => target.removedFromRaft(m));
  }

  // ---- dispatcher and Raft join (node.ts `leaderDispatcher`, `watchManagers`, `joinRaft`) -------

  /** Keeps the manager list (fail-over targets) current from session info and the assignment stream. */
  private watchManagers(d: DispatcherClient): DispatcherClient {
    const learn = (managers: { addr: string }[]): void => {
      const addrs = managers.map((m) => m.addr).filter(Boolean);
      if (this.state && addrs.length && addrs.join() !== this.state.managers.join()) this.state.managers = addrs;
    };
    return {
      ...d,
      openSession: async (req) => {
        const info = await d.openSession(req);
        learn(info.managers);
        return info;
      },
      watchAssignments: (s, on, end) => d.watchAssignments(s, (a) => {
        if (a.managers) learn(a.managers);
        on(a);
      }, end),
    };
  }

  /** A manager's agent talks to the dispatcher in process while this node leads, else to the leader it knows. */
  private leaderDispatcher(m: Manager): DispatcherClient {
    const local = m.localDispatcherClient();
    const pick = (): DispatcherClient => (m.isLeader() ? local : this.cluster.leaderDispatcherOf(this, m));
    return {
      openSession: (r) => Promise.resolve().then(() => pick().openSession(r)),
      heartbeat: (s) => Promise.resolve().then(() => pick().heartbeat(s)),
      updateTaskStatus: (s, u) => Promise.resolve().then(() => pick().updateTaskStatus(s, u)),
      watchAssignments: (s, on, end) => {
        try {
          return pick().watchAssignments(s, on, end);
        } catch (e) {
          queueMicrotask(() => end(e as Error));
          return () => {};
        }
      },
    };
  }

  /** Retries {@link joinRaft} every 2 s while `m` is still this node's manager and not yet a member. */
  private retryJoinRaft(m: Manager, first: Error): void {
    this.log.warn({ err: String(first) }, 'could not join the Raft group yet; retrying every 2 s');
    const again = (): void => {
      this.cluster.clock.setTimeout(() => {
        const st = this.state;
        if (this.manager !== m || !st || m.members().some((x) => x.id === st.raftId)) return;
        this.joinRaft().then(
          () => this.log.info({}, 'joined the Raft group'),
          (e) => {
            this.log.warn({ err: String(e) }, 'could not join the Raft group yet; retrying in 2 s');
            again();
          },
        );
      }, 2000);
    };
    again();
  }

  /** Asks the leader (through any manager) to add this node to the Raft group, then waits to catch up. */
  private async joinRaft(): Promise<void> {
    const st = this.state!;
    const others = st.managers.filter((a) => a !== this.addr);
    if (others.length === 0) throw unavailable('no other manager is known to ask for joining the Raft group');
    const raftId = st.raftId!;
    await this.cluster.clusterCall(this, 'manager.joinRaft', async (leader) => {
      await leader.joinRaft(st.nodeId, raftId, this.addr);
      this.cluster.hooks.memberJoined?.(this, raftId, leader);
    }, { leader: true, via: others });
    const deadline = this.cluster.clock.now() + 30_000;
    while (!this.manager?.leaderNodeId() || !this.manager.cluster()) {
      if (this.cluster.clock.now() > deadline) throw unavailable('joined the Raft group but no leader or cluster state arrived within 30 s');
      await this.cluster.sleep(50);
    }
  }
}
