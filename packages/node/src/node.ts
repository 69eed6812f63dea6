import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type http from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  type DispatcherClient, type Handlers, type NodeDescription, type NodeRole, type Params, type SwarmInfo,
  failedPrecondition, invalidArgument, newId, unavailable,
} from '@shoal/api';
import { Manager, type ControlMethod } from '@shoal/manager';
import { Agent } from '@shoal/agent';
import {
  MANAGER_CHANNEL_OPTIONS, RootCA, TlsIdentity, WrongKeyError, clientCredentials, createKeyAndCsr, generateJoinTokens, generateUnlockKey, issueNodeCertificate,
  needsRenewal, parseCertificate, serverCredentials, type TlsMaterial,
} from '@shoal/ca';
import {
  ClusterClient, RemoteDispatcherClient, createClusterServer, joinCluster, normalizeManagerAddr, registerCluster, renewNodeCertificate, type ClusterServer,
} from '@shoal/rpc';
import { GrpcTransport } from '@shoal/replication';
import { serveRpc, assertSocketFree } from './socket.js';
import { ControlRouter, noLeaderMessage } from './control.js';
import { clusterPortHandler } from './cluster-port.js';
import { loadMaterial, loadState, saveMaterial, saveState, wipeAll, wipeRaft, type NodeState } from './state.js';
import { NodeKeys } from './keys.js';
import type { Logger, NodeRuntime, PlatformFactory } from './platform.js';
import { Observability, clusterView, unavailableView, type ClusterView } from './observe/index.js';

export interface NodeOptions {
  dataDir: string;
  /** The local control socket (`unix` path). */
  socket: string;
  hostname: string;
  /** Default cluster listen address (`--listen-addr`). */
  listenAddr: string;
  /** Default advertised address (`--advertise-addr`). */
  advertiseAddr?: string;
  logger: Logger;
  /** The machine: executor, network plane, clean-up on leave (see platform.ts). */
  platform: PlatformFactory;
  /** ms between certificate/role checks (default 2000). */
  roleCheckMs?: number;
  /** Raft tick, ms (default 100). */
  tickMs?: number;
  /**
   * Raft stopped on a disk error: the process should exit so that it is restarted with a store
   * that can change (default: exit with status 70).
   */
  onFatal?: (err: Error) => void;
  /**
   * `--metrics-addr`: serve Prometheus metrics at `http://ADDR/metrics` (`HOST:PORT`, or `PORT` for
   * 127.0.0.1; port 0 picks one). Off when absent (Docker's `metrics-addr`). docs/OPERATING.md.
   */
  metricsAddr?: string;
  /**
   * `--ui-addr`: serve the read-only live web view at `http://ADDR/` (`HOST:PORT`, or `PORT` for
   * 127.0.0.1). A manager shows the swarm; other nodes say where to look. Off when absent.
   */
  uiAddr?: string;
}

/** What every command but `swarm unlock` and `info` gets from a locked manager (Docker's words). */
export const SWARM_LOCKED = 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "shoal swarm unlock" to unlock it.';
/** `swarm leave` without `--force` on a locked manager (Docker's words). */
export const LEAVE_LOCKED = 'Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message.';
/** Methods a locked manager still serves. */
const WHILE_LOCKED: ReadonlySet<string> = new Set(['swarm.info', 'swarm.unlock', 'swarm.leave']);

/** A fresh Raft ID: one per membership (never reused; see `@shoal/replication` membership.ts). */
function freshRaftId(): string {
  return randomBytes(8).toString('hex');
}

/** Refusal of `swarm init --force-new-cluster` on a manager without cluster state. */
export const FNC_NO_STATE = 'this manager holds no cluster state (it never caught up with the other managers\' Raft log); run `swarm init --force-new-cluster` on a manager that did';

/** The message a node removed from the managers shows, with the way back. */
function removalNotice(hostname: string): string {
  return `this node was removed from the swarm's managers (demoted, or shut out by \`swarm init --force-new-cluster\` on another manager) and continues as a worker; to make it a manager again, run \`shoal node promote ${hostname}\` on a manager`;
}

/**
 * A node of a swarm (SwarmKit `node/node.go`): its identity, `swarm init/join/leave`, its role
 * changes and certificate renewal, and the services its role needs — on every node the agent and
 * the network plane; on managers also the cluster port (Raft, dispatcher, join, forwarded control
 * calls) and the manager. Serves the local control socket (the control contract).
 *
 * Lifecycle: {@link start} loads the identity (`<dataDir>/node.json`) and activates the node's
 * services; init/join write the identity and activate; a role change (promotion, demotion,
 * removal from the Raft group) or a certificate renewal deactivates and activates again on the
 * new certificate. Swarm-level changes run one at a time.
 */
export class SwarmNode {
  private manager: Manager | undefined;
  private agent: Agent | undefined;
  private runtime: NodeRuntime | undefined;
  private server: ClusterServer | undefined;
  private transport: GrpcTransport | undefined;
  private client: ClusterClient | undefined;
  private http: http.Server | undefined;
  private state: NodeState | undefined;
  private material: TlsMaterial | undefined;
  /** A manager's keys at rest (keys.ts); loaded at start, opened by the local KEK or `swarm unlock`. */
  private keys: NodeKeys | undefined;
  /** The cluster object version the unlock key was last followed at. */
  private keysFollowedAt = -1;
  private leaderClients = new Map<string, ClusterClient>();
  private busy: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;
  readonly router: ControlRouter;
  private ownsPid = false;
  private roleTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private stopped = false;
  private readonly observe: Observability;
  /** Web view subscribers: called after every store commit of this node's manager. */
  private readonly viewListeners = new Set<() => void>();

  /** @throws Error for a malformed `metricsAddr`/`uiAddr` (one line naming the flag and the fix). */
  constructor(private readonly opts: NodeOptions) {
    this.log = opts.logger;
    this.observe = new Observability({
      ...(opts.metricsAddr !== undefined ? { metricsAddr: opts.metricsAddr } : {}),
      ...(opts.uiAddr !== undefined ? { uiAddr: opts.uiAddr } : {}),
      log: opts.logger,
    });
    this.router = new ControlRouter({
      nodeId: () => this.state?.nodeId,
      manager: () => this.manager,
      notice: () => this.state?.notice,
      leaderClient: () => this.leaderClient(),
    });
  }

  /** This node's identity (for tests and `swarm info`); undefined outside a swarm. */
  get identity(): Readonly<NodeState> | undefined {
    return this.state;
  }

  /** `http://host:port/metrics` while `metricsAddr` is served. */
  get metricsUrl(): string | undefined {
    return this.observe.metricsUrl;
  }

  /** `http://host:port/` of the web view while `uiAddr` is served. */
  get uiUrl(): string | undefined {
    return this.observe.uiUrl;
  }

  /** The web view's picture now: the swarm from this manager's store, or why this node has none. */
  clusterView(): ClusterView {
    const m = this.manager;
    if (m) return clusterView(m.observe());
    if (this.state) {
      return unavailableView(`${this.opts.hostname} is a worker: the web view shows a manager's replicated state; open the --ui-addr of a manager`);
    }
    return unavailableView(`${this.opts.hostname} is not part of a swarm yet: run \`shoal swarm init\` or \`shoal swarm join\``);
  }

  /** The manager running on this node, if it is one (tests). */
  get managerForTests(): Manager | undefined {
    return this.manager;
  }

  /** This node's agent while its services run (tests). */
  get agentForTests(): Agent | undefined {
    return this.agent;
  }

  /**
   * Starts: takes the data directory (one daemon per directory), activates the node's services
   * if it is in a swarm, and serves the socket.
   * @throws Error when another daemon holds the socket or the data directory.
   */
  async start(): Promise<void> {
    fs.mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o700 });
    this.lockDataDir();
    await assertSocketFree(this.opts.socket);
    this.state = loadState(this.opts.dataDir);
    await this.observe.start(
      () => (this.state ? { nodeId: this.state.nodeId, clusterId: this.state.clusterId, role: this.state.role, hostname: this.opts.hostname } : undefined),
      {
        read: () => this.clusterView(),
        subscribe: (fn) => {
          this.viewListeners.add(fn);
          return () => void this.viewListeners.delete(fn);
        },
      },
    );
    if (this.state) {
      this.keys = NodeKeys.load(this.opts.dataDir);
      if (this.keys.locked) this.log.warn({}, 'this manager is locked (autolock): run `shoal swarm unlock` with the swarm\'s unlock key');
      else await this.activate({});
    }
    this.http = await serveRpc(this.opts.socket, this.handlers(), this.log, (m, sec, code) => this.observe.observeSocketCall(m, sec, code));
    const state = !this.state ? 'inactive' : this.keys?.locked ? 'locked' : 'active';
    this.log.info({ socket: this.opts.socket, state, role: this.state?.role }, 'shoald ready');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
    await this.exclusive(() => this.deactivate());
    await this.observe.stop();
    if (this.ownsPid) fs.rmSync(this.pidPath, { force: true });
  }

  private get pidPath() {
    return path.join(this.opts.dataDir, 'shoald.pid');
  }

  /**
   * One daemon per data directory (`<data-dir>/shoald.pid`): two would run the same node twice.
   * A pid file of a process that is gone (a crash, `kill -9`) is replaced.
   * @throws Error naming the other daemon's pid and the fix.
   */
  private lockDataDir(): void {
    let other = 0;
    try {
      other = Number(fs.readFileSync(this.pidPath, 'utf8').trim());
    } catch {
      /* none */
    }
    if (other > 0 && other !== process.pid && alive(other)) {
      throw new Error(`another shoald (pid ${other}) uses --data-dir ${this.opts.dataDir}; stop it first, or give this one its own --data-dir`);
    }
    fs.writeFileSync(this.pidPath, `${process.pid}\n`, { mode: 0o600 });
    this.ownsPid = true;
  }

  private save(): void {
    if (this.state) saveState(this.opts.dataDir, this.state);
  }

  private defaultAdvertise(given: string | undefined, listen: string): string {
    const port = listen.split(':').pop() || '2377';
    const a = given ?? this.opts.advertiseAddr;
    if (a) return a.includes(':') ? a : `${a}:${port}`;
    const host = listen.slice(0, listen.lastIndexOf(':'));
    if (host && host !== '0.0.0.0' && host !== '::' && host !== '[::]') return `${host}:${port}`;
    for (const list of Object.values(os.networkInterfaces())) {
      for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) return `${i.address}:${port}`;
    }
    return `127.0.0.1:${port}`;
  }

  // ---- activation --------------------------------------------------------------------------

  /**
   * Starts the node's services for the persisted identity: on managers the cluster port, Raft and
   * the manager; on every node the agent. `bootstrap` writes a new cluster's objects; `joinRaft`
   * asks the leader to add this manager to the Raft group.
   */
  private async activate(o: { bootstrap?: { root: RootCA; tokens: { worker: string; manager: string }; unlockKey?: string }; joinRaft?: boolean; forceNewCluster?: boolean }): Promise<void> {
    const st = this.state!;
    this.keys ??= NodeKeys.load(this.opts.dataDir);
    if (st.role === 'manager') this.keys.ensureManager();
    this.material = loadMaterial(this.opts.dataDir, this.keys);
    this.runtime = await this.opts.platform(st.nodeId, this.log, { metrics: this.observe.metrics });
    let dispatcher: DispatcherClient;
    if (st.role === 'manager') {
      st.raftId ??= st.nodeId; // identities written before Raft IDs were separate
      const identity = new TlsIdentity(this.material);
      this.server = createClusterServer({ identity, clusterId: st.clusterId, isRevoked: (id) => !!this.manager?.isRevoked(id) });
      const port = await this.server.listen(st.listenAddr);
      if (st.advertiseAddr.endsWith(':0')) st.advertiseAddr = st.advertiseAddr.replace(/:0$/, `:${port}`);
      if (st.listenAddr.endsWith(':0')) st.listenAddr = st.listenAddr.replace(/:0$/, `:${port}`);
      this.transport = new GrpcTransport({
        id: st.raftId, server: this.server, advertise: st.advertiseAddr, clusterId: st.clusterId,
        credentials: { server: serverCredentials(identity, { requireClientCert: false }), client: clientCredentials(this.material) },
        // Certificates name nodes, not addresses: a fixed TLS server name (identity is checked by
        // the cluster CA and node ID), which also keeps Node from warning about IP server names.
        channelOptions: { ...MANAGER_CHANNEL_OPTIONS },
        logger: this.log,
      });
      await this.transport.start();
      const manager = await Manager.open({
        nodeId: st.nodeId, raftId: st.raftId, dataDir: this.opts.dataDir, advertiseAddr: st.advertiseAddr, logger: this.log, transport: this.transport,
        ...(this.opts.tickMs ? { tickMs: this.opts.tickMs } : {}),
        ...(o.joinRaft ? { join: { peers: [] } } : {}),
        ...(o.forceNewCluster ? { forceNewCluster: true } : {}),
        metrics: this.observe.metrics,
        dataKey: this.keys.dek(),
      });
      this.manager = manager;
      // Autolock follows the cluster object: re-wrap the keys whenever its unlock key changes.
      this.keysFollowedAt = -1;
      manager.onCommit(() => {
        this.followUnlockKey(manager);
        for (const fn of this.viewListeners) fn();
      });
      this.followUnlockKey(manager);
      registerCluster(this.server, this.observe.timeCluster(clusterPortHandler({
        log: this.log, router: this.router, leaderClient: () => this.leaderClient(), removedFromRaft: () => this.removedFromRaft(manager),
      }, manager, st.clusterId)));
      manager.once('fatal', (e: Error) => {
        this.log.error({ err: String(e) }, 'Raft stopped on a fatal storage error; exiting so the daemon can be restarted');
        (this.opts.onFatal ?? (() => process.exit(70)))(e);
      });
      manager.on('removed', () => this.removedFromRaft(manager));
      // The leader tells a member it removed at once (it would otherwise learn it from Raft).
      manager.on('member-removed', (mem: { addr: string }) => this.tellRemoved(mem.addr));
      if (manager.removed) setImmediate(() => this.removedFromRaft(manager));
      if (o.bootstrap) {
        await manager.waitLeader();
        await manager.bootstrap(await this.describe(), {
          id: st.clusterId, rootCaCert: o.bootstrap.root.certPem, rootCaKey: o.bootstrap.root.keyPem, joinTokens: o.bootstrap.tokens,
          ...(o.bootstrap.unlockKey ? { unlockKey: o.bootstrap.unlockKey } : {}),
        });
      }
      if (o.joinRaft) {
        // A failed join (no leader right now, a timeout) must not leave the node without an agent:
        // keep trying in the background; the agent finds the leader once this node is a member.
        await this.joinRaft().catch((e) => this.retryJoinRaft(manager, e as Error));
      }
      dispatcher = this.leaderDispatcher(manager);
    } else {
      this.client = new ClusterClient({ managers: st.managers, ...this.material, clusterId: st.clusterId });
      dispatcher = new RemoteDispatcherClient(this.client);
    }
    const rt = this.runtime;
    this.agent = new Agent({
      nodeId: st.nodeId, addr: st.advertiseAddr, dispatcher: this.watchManagers(dispatcher), executor: rt.executor,
      logger: this.log, hostname: this.opts.hostname, metrics: this.observe.metrics,
      ...(rt.network ? { network: rt.network, dataplane: rt.network.kind, drainDelayMs: rt.network.drainDelayMs } : {}),
    });
    await this.agent.start();
    this.save();
    this.watchRole();
  }

  /**
   * Re-wraps this manager's keys when the cluster's autolock setting or unlock key changed (keys.ts
   * `follow`): with autolock on, the DEK and the node key are wrapped by the unlock key and nothing
   * that opens them stays on disk; with it off, by a local KEK file. Runs in the commit that changed
   * the cluster object, so a `swarm init --autolock` or `unlock-key --rotate` that returned has done it
   * on this manager.
   */
  private followUnlockKey(m: Manager): void {
    const c = m.cluster();
    if (!c || !this.keys?.exists || !this.material || this.manager !== m || c.meta.version === this.keysFollowedAt) return;
    this.keysFollowedAt = c.meta.version;
    try {
      const change = this.keys.follow(c.spec.encryption?.autoLockManagers ? c.unlockKey : undefined, c.meta.version, this.material.keyPem);
      if (change) this.log.info({ change, clusterVersion: c.meta.version }, `manager keys ${change === 'rotated' ? 're-wrapped with the new unlock key' : change === 'locked' ? 'locked with the unlock key (autolock on)' : 'unlocked (autolock off)'}`);
    } catch (e) {
      this.keysFollowedAt = -1;
      this.log.error({ err: String(e) }, 'could not re-wrap the manager keys; will retry on the next change');
    }
  }

  private async deactivate(): Promise<void> {
    clearInterval(this.roleTimer);
    await this.agent?.stop().catch(() => undefined);
    await this.manager?.close().catch(() => undefined);
    await this.transport?.close().catch(() => undefined);
    await this.server?.close().catch(() => undefined);
    this.client?.close();
    for (const c of this.leaderClients.values()) c.close();
    this.leaderClients.clear();
    this.agent = this.manager = this.transport = this.server = this.client = undefined;
  }

  /** Serializes swarm-level state changes (init/join/leave, role changes). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async describe(): Promise<NodeDescription> {
    const d = await this.runtime!.describe();
    return { ...d, hostname: this.opts.hostname || d.hostname };
  }

  // ---- roles and certificates --------------------------------------------------------------

  /**
   * Every `roleCheckMs`: renews this node's certificate when it enters its renewal window (50–80 %
   * of its lifetime) or when its desired role differs from its certificate's (promotion). The
   * renewed certificate carries the desired role. A worker promoted this way restarts as a manager
   * and joins the Raft group under a fresh Raft ID; any other renewal restarts the node's services
   * on the new certificate. A manager being demoted keeps its certificate until its Raft member is
   * removed (a manager with a worker certificate could not talk Raft).
   */
  private watchRole(): void {
    clearInterval(this.roleTimer);
    this.roleTimer = setInterval(() => void this.checkRole().catch((e) => this.log.warn({ err: String(e) }, 'certificate/role check failed')), this.opts.roleCheckMs ?? 2000);
    this.roleTimer.unref();
  }

  private async checkRole(): Promise<void> {
    if (this.checking || this.stopped || !this.state || !this.material) return;
    this.checking = true;
    try {
      const st = this.state;
      if (st.removedRaftId && this.client) {
        // Tell the leader this node's manager was removed, so it records the node as a worker.
        const r = await this.client.call<{ worker: boolean }>('node.managerRemoved', { raftId: st.removedRaftId }, { timeoutMs: 5000 });
        if (r.worker) {
          delete st.removedRaftId;
          this.save();
        }
      }
      const certRole = parseCertificate(this.material.certPem).role;
      let desired: NodeRole | undefined;
      if (this.manager) desired = this.manager.node(st.nodeId)?.spec.desiredRole;
      else if (this.client) desired = (await this.client.call<{ desiredRole?: NodeRole }>('node.desiredRole', {}, { timeoutMs: 5000 })).desiredRole;
      const due = needsRenewal(this.material.certPem);
      // A manager being demoted keeps its certificate until its Raft member is removed.
      const renew = due || (desired !== undefined && desired !== certRole && !(this.manager && desired === 'worker'));
      // A worker to be a manager: promoted (with a manager certificate, renewed now if needed) —
      // unless it has not yet told the leader about an earlier removal.
      const promoting = st.role === 'worker' && desired === 'manager' && !st.removedRaftId;
      if (!renew && !promoting) return;
      let material: TlsMaterial = this.material;
      if (renew) {
        const via = this.client ?? (this.manager ? this.leaderClient() : undefined);
        if (!via) return;
        const renewed = await renewNodeCertificate(via, this.material, { timeoutMs: 10_000 });
        this.log.info({ role: renewed.role, was: certRole, due }, 'node certificate renewed');
        material = renewed;
      }
      await this.exclusive(async () => {
        if (this.state !== st || this.stopped) return;
        if (material !== this.material) saveMaterial(this.opts.dataDir, material, this.keys);
        const promote = promoting && parseCertificate(material.certPem).role === 'manager';
        await this.deactivate();
        if (promote) {
          st.role = 'manager';
          st.raftId = freshRaftId();
          delete st.notice;
          wipeRaft(this.opts.dataDir);
          this.save();
          this.log.info({ raftId: st.raftId }, 'promoted: starting the manager; joining the Raft group');
        }
        await this.restartServices(st, promote ? { joinRaft: true } : {});
      });
    } finally {
      this.checking = false;
    }
  }

  /**
   * Activates again after the services were stopped, retrying (a port still being released, an
   * engine restarting) rather than leave the node Down for good. @throws after ~1 min of failures.
   */
  private async restartServices(st: NodeState, o: { joinRaft?: boolean }): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.activate(o);
        return;
      } catch (e) {
        this.log.error({ err: String(e), attempt }, 'could not restart the node services; retrying in 2 s');
        await this.deactivate();
        if (attempt >= 30) throw e; // ~1 min: give up; restarting shoald starts them again
        await new Promise((r) => setTimeout(r, 2000));
        if (this.state !== st || this.stopped) return;
      }
    }
  }

  /**
   * This manager's Raft member was removed from the group (it applied its removal, a member refused
   * its messages, or the leader said so): it carries on as a worker of the same swarm, with empty
   * Raft data, and tells the leader (until it has, a manager certificate is not a promotion).
   */
  private removedFromRaft(m: Manager): void {
    void this.exclusive(async () => {
      if (!this.state || this.state.role !== 'manager' || this.manager !== m) return;
      const st = this.state;
      const self = st.advertiseAddr;
      const managers = m.members().map((x) => x.addr).filter((a) => a && a !== self);
      st.notice = removalNotice(this.opts.hostname);
      this.log.warn({ managers }, `removed from the Raft group: ${st.notice}`);
      await this.deactivate();
      wipeRaft(this.opts.dataDir);
      // Workers are never locked: the node key goes back to its plain file, the manager keys go.
      this.keys?.drop(this.material?.keyPem);
      st.role = 'worker';
      if (st.raftId) st.removedRaftId = st.raftId;
      delete st.raftId;
      if (managers.length) st.managers = managers;
      this.save();
      await this.restartServices(st, {});
    }).catch((e) => this.log.error({ err: String(e) }, 'could not continue as a worker'));
  }

  /** Tells the node at `addr` (cluster port) that its Raft member was removed. Best effort. */
  private tellRemoved(addr: string): void {
    if (!addr || !this.material || !this.state) return;
    const c = new ClusterClient({ managers: [addr], ...this.material, clusterId: this.state.clusterId, callTimeoutMs: 5000 });
    void c.call('manager.removed', {}).catch((e) => this.log.debug({ addr, err: String(e) }, 'could not tell a removed manager')).finally(() => c.close());
  }

  // ---- dispatcher and leader clients -------------------------------------------------------

  /** Keeps the manager list of workers (and of ClusterClient fail-over) current from session info and the assignment stream. */
  private watchManagers(d: DispatcherClient): DispatcherClient {
    const learn = (managers: { addr: string }[]): void => {
      const addrs = managers.map((m) => m.addr).filter(Boolean);
      if (this.state && addrs.length && addrs.join() !== this.state.managers.join()) {
        this.state.managers = addrs;
        this.client?.setManagers(addrs);
        this.save();
      }
    };
    return {
      ...d,
      openSession: async (req) => {
        const info = await d.openSession(req);
        learn(info.managers);
        return info;
      },
      heartbeat: (s) => d.heartbeat(s),
      updateTaskStatus: (s, u) => d.updateTaskStatus(s, u),
      // The list changes during a long session too (promotions, demotions): the dispatcher sends it
      // with the assignments, so the node can still find a manager when the leader goes.
      watchAssignments: (s, on, end) => d.watchAssignments(s, (a) => {
        if (a.managers) learn(a.managers);
        on(a);
      }, end),
    };
  }

  /** A manager's agent talks to the dispatcher in process while this node leads, else over gRPC to the leader. */
  private leaderDispatcher(m: Manager): DispatcherClient {
    const local = m.localDispatcherClient();
    const pick = (): DispatcherClient => (m.isLeader() ? local : new RemoteDispatcherClient(this.leaderClient()));
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

  /** A client of the current Raft leader's cluster port. @throws Unavailable when there is no leader. */
  private leaderClient(): ClusterClient {
    const m = this.manager;
    const addr = m?.leaderAddr();
    if (!m || !addr) throw unavailable(noLeaderMessage(m));
    let c = this.leaderClients.get(addr);
    if (!c) {
      c = new ClusterClient({ managers: [addr], ...this.material!, clusterId: this.state!.clusterId, callTimeoutMs: 15_000 });
      this.leaderClients.set(addr, c);
    }
    return c;
  }

  /** Retries {@link joinRaft} every 2 s while `m` is still this node's manager and not yet a member. */
  private retryJoinRaft(m: Manager, first: Error): void {
    this.log.warn({ err: String(first) }, 'could not join the Raft group yet; retrying every 2 s');
    const again = (): void => {
      setTimeout(() => {
        const st = this.state;
        if (this.manager !== m || !st || m.members().some((x) => x.id === st.raftId)) return;
        this.joinRaft().then(
          () => this.log.info('joined the Raft group'),
          (e) => {
            this.log.warn({ err: String(e) }, 'could not join the Raft group yet; retrying in 2 s');
            again();
          },
        );
      }, 2000).unref();
    };
    again();
  }

  /** Asks the leader (through any manager) to add this node to the Raft group, then waits to catch up. */
  private async joinRaft(): Promise<void> {
    const st = this.state!;
    const others = st.managers.filter((a) => a !== st.advertiseAddr);
    if (others.length === 0) throw unavailable('no other manager is known to ask for joining the Raft group');
    const c = new ClusterClient({ managers: others, ...this.material!, clusterId: st.clusterId, callTimeoutMs: 60_000 });
    try {
      await c.call('manager.joinRaft', { addr: st.advertiseAddr, raftId: st.raftId }, { timeoutMs: 60_000 });
    } finally {
      c.close();
    }
    const deadline = Date.now() + 30_000;
    while (!this.manager!.leaderNodeId() || !this.manager!.cluster()) {
      if (Date.now() > deadline) throw unavailable('joined the Raft group but no leader or cluster state arrived within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // ---- swarm init / join / leave / info -----------------------------------------------------

  private async init(p: Params<'swarm.init'>): Promise<{ nodeId: string }> {
    return this.exclusive(async () => {
      if (p.forceNewCluster) {
        if (!this.state || this.state.role !== 'manager') throw failedPrecondition('--force-new-cluster needs a node that was a manager of a swarm');
        // A manager that never caught up with the Raft log (it was still joining) holds no cluster
        // state: forcing a new cluster from it would keep nothing — not even the cluster object.
        if (this.manager && !this.manager.cluster()) throw failedPrecondition(FNC_NO_STATE);
        await this.deactivate();
        await this.activate({ forceNewCluster: true });
        await this.manager!.waitLeader();
        return { nodeId: this.state.nodeId };
      }
      if (this.state) throw failedPrecondition('This node is already part of a swarm. Use "shoal swarm leave" to leave this swarm and join another one.');
      const listenAddr = p.listenAddr ?? this.opts.listenAddr;
      const nodeId = newId();
      const clusterId = newId();
      const root = await RootCA.create({ clusterId });
      const tokens = generateJoinTokens(root.certPem);
      const { keyPem, csrPem } = await createKeyAndCsr(nodeId);
      const certPem = await issueNodeCertificate(root, { csrPem, nodeId, role: 'manager', clusterId });
      const unlockKey = p.autolock ? generateUnlockKey() : undefined;
      this.state = {
        nodeId, role: 'manager', clusterId, advertiseAddr: this.defaultAdvertise(p.advertiseAddr, listenAddr), listenAddr, managers: [], raftId: freshRaftId(),
      };
      saveMaterial(this.opts.dataDir, { rootPem: root.certPem, certPem, keyPem });
      try {
        await this.activate({ bootstrap: { root, tokens, ...(unlockKey ? { unlockKey } : {}) } });
        this.state.managers = [this.state.advertiseAddr];
        this.save();
        if (p.taskHistoryLimit !== undefined) await this.manager!.call('swarm.update', { taskHistoryLimit: p.taskHistoryLimit });
      } catch (e) {
        await this.deactivate();
        this.state = undefined;
        this.keys = undefined;
        wipeAll(this.opts.dataDir);
        throw e;
      }
      return { nodeId };
    });
  }

  private async join(p: Params<'swarm.join'>): Promise<{ nodeId: string; role: NodeRole }> {
    return this.exclusive(async () => {
      if (this.state) throw failedPrecondition('This node is already part of a swarm. Use "shoal swarm leave" to leave this swarm and join another one.');
      if (!p.token) throw invalidArgument('missing join token: pass --token SWMTKN-1-… (see `shoal swarm join-token worker` on a manager)');
      if (!p.remoteAddr) throw invalidArgument('missing manager address: pass HOST:PORT of a manager, e.g. 10.0.0.1:2377');
      const listenAddr = p.listenAddr ?? this.opts.listenAddr;
      const advertiseAddr = this.defaultAdvertise(p.advertiseAddr, listenAddr);
      const r = await joinCluster({ remoteAddr: normalizeManagerAddr(p.remoteAddr), token: p.token, request: { advertiseAddr, hostname: this.opts.hostname } });
      this.state = {
        nodeId: r.nodeId, role: r.role, clusterId: r.clusterId, advertiseAddr, listenAddr,
        managers: r.managers.length ? r.managers : [normalizeManagerAddr(p.remoteAddr)],
        ...(r.role === 'manager' ? { raftId: freshRaftId() } : {}),
      };
      saveMaterial(this.opts.dataDir, { rootPem: r.rootPem, certPem: r.certPem, keyPem: r.keyPem });
      try {
        await this.activate({ joinRaft: r.role === 'manager' });
      } catch (e) {
        await this.deactivate();
        this.state = undefined;
        this.keys = undefined;
        wipeAll(this.opts.dataDir);
        throw e;
      }
      return { nodeId: r.nodeId, role: r.role };
    });
  }

  /**
   * Leaves the swarm. A manager needs `force` (Docker's warnings otherwise). With `force` it always
   * succeeds locally, whatever the cluster's state — the documented way out of a lost quorum: the
   * node asks the leader to remove its member if there is one to ask (briefly), then stops, removes
   * its task containers and host plumbing, and forgets the swarm. `message` says what is left to do
   * on the remaining managers.
   */
  private async leave(p: Params<'swarm.leave'>): Promise<{ message?: string }> {
    return this.exclusive(async () => {
      if (!this.state) throw failedPrecondition('This node is not part of a swarm');
      if (this.keys?.locked && !p.force) throw failedPrecondition(LEAVE_LOCKED);
      let message: string | undefined;
      const m = this.manager;
      if (m) {
        const voters = m.members().filter((x) => x.voter);
        if (!p.force) {
          const remaining = voters.length - 1;
          throw failedPrecondition(remaining <= 0
            ? 'You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.'
            : `You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves ${remaining} managers out of ${voters.length}. Use \`--force\` to ignore this message.`);
        }
        if (voters.length > 1 || voters.some((v) => v.id !== this.state!.raftId)) {
          const left = await this.leaveRaft(m);
          const name = this.opts.hostname;
          message = left
            ? `The managers recorded this node as down; to remove it from the node list, run \`shoal node rm ${name}\` on a manager.`
            : `The managers could not be told (no leader answered), so they still count this node as a manager: on a manager run \`shoal node demote ${name}\` and \`shoal node rm ${name}\`, or \`shoal swarm init --force-new-cluster\` on a manager if quorum is lost for good.`;
        }
      }
      // A locked manager never started its services: make its runtime just to clean up.
      const rt = this.runtime ?? (this.keys?.locked ? await this.opts.platform(this.state.nodeId, this.log).catch(() => undefined) : undefined);
      await this.deactivate();
      // Containers of this node's tasks go with it (Docker shuts down a leaving node's tasks),
      // then the host plumbing its network plane added.
      await rt?.leave().catch((e) => this.log.warn({ err: String(e) }, 'leave clean-up failed'));
      this.runtime = undefined;
      this.state = undefined;
      this.keys = undefined;
      wipeAll(this.opts.dataDir);
      return message ? { message } : {};
    });
  }

  /** Asks the leader (briefly) to remove this manager's member. @returns whether it was done. */
  private async leaveRaft(m: Manager): Promise<boolean> {
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline) {
      try {
        if (m.isLeader()) await m.leaveRaft(this.state!.nodeId);
        else await this.leaderClient().call('manager.leaveRaft', {}, { timeoutMs: Math.max(500, deadline - Date.now()) });
        return true;
      } catch (e) {
        this.log.warn({ err: String(e) }, 'could not leave the Raft group cleanly yet');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    return false;
  }

  /**
   * `swarm unlock`: opens this locked manager's keys with the unlock key and starts its services.
   * @throws FailedPrecondition when the node is in no swarm or not locked ("swarm is not locked");
   *   InvalidArgument for a malformed key, or one that is not the key this manager's data is
   *   wrapped with ("swarm could not be unlocked: invalid key provided") — nothing changes then.
   */
  private async unlock(p: Params<'swarm.unlock'>): Promise<Record<string, never>> {
    return this.exclusive(async () => {
      if (!this.state) throw failedPrecondition('This node is not part of a swarm');
      const keys = this.keys;
      if (!keys?.locked) throw failedPrecondition('swarm is not locked');
      try {
        keys.unlock(p.key);
      } catch (e) {
        if (e instanceof WrongKeyError) throw invalidArgument('swarm could not be unlocked: invalid key provided');
        throw e;
      }
      try {
        await this.activate({});
      } catch (e) {
        await this.deactivate();
        this.keys = NodeKeys.load(this.opts.dataDir); // locked again
        throw e;
      }
      this.log.info({}, 'unlocked: manager started');
      return {};
    });
  }

  private info(): SwarmInfo {
    const st = this.state;
    if (!st) return { localNodeState: 'inactive', nodeId: '' };
    if (this.keys?.locked) return { localNodeState: 'locked', nodeId: st.nodeId, role: st.role, clusterId: st.clusterId, error: SWARM_LOCKED };
    const info: SwarmInfo = { localNodeState: 'active', nodeId: st.nodeId, role: st.role, clusterId: st.clusterId };
    if (st.notice) info.error = st.notice;
    const m = this.manager;
    if (m) {
      info.isLeader = m.isLeader();
      info.leaderId = m.leaderNodeId();
      const status = m.managerStatus();
      info.managers = m.members().filter((x) => x.voter).map((x) => ({
        nodeId: x.nodeId || x.id, addr: x.addr, reachable: status.get(x.nodeId || x.id)?.reachability === 'reachable',
      }));
      info.nodes = m.nodeCount();
    } else {
      info.managers = st.managers.map((addr) => ({ nodeId: '', addr, reachable: true }));
    }
    return info;
  }

  // ---- the local control socket --------------------------------------------------------------

  /** Every method of the control contract: the node's own, and the control methods through the router. */
  private handlers(): Handlers {
    const c = <M extends ControlMethod>(method: M) => (p: Params<M>) => this.router.control(method, p);
    return this.refuseWhileLocked({
      'swarm.init': (p) => this.init(p),
      'swarm.unlock': (p) => this.unlock(p),
      'swarm.unlockKey': c('swarm.unlockKey'),
      'swarm.rotateUnlockKey': c('swarm.rotateUnlockKey'),
      'swarm.join': (p) => this.join(p),
      'swarm.leave': (p) => this.leave(p),
      'swarm.info': () => this.info(),
      'swarm.joinToken': c('swarm.joinToken'),
      'swarm.rotateJoinToken': c('swarm.rotateJoinToken'),
      'swarm.update': c('swarm.update'),
      'service.create': c('service.create'),
      'service.ls': c('service.ls'),
      'service.inspect': c('service.inspect'),
      'service.ps': c('service.ps'),
      'service.update': c('service.update'),
      'service.scale': c('service.scale'),
      'service.rm': c('service.rm'),
      // `node ls` marks this node with `*`.
      'node.ls': async (p) => ({ ...(await this.router.control('node.ls', p)), selfId: this.state?.nodeId ?? '' }),
      'node.inspect': c('node.inspect'),
      'node.update': c('node.update'),
      'node.rm': c('node.rm'),
      'node.ps': c('node.ps'),
      'network.create': c('network.create'),
      'network.ls': c('network.ls'),
      'network.inspect': c('network.inspect'),
      'network.rm': c('network.rm'),
      'task.inspect': c('task.inspect'),
      'stack.deploy': c('stack.deploy'),
      'stack.ls': c('stack.ls'),
      'stack.services': c('stack.services'),
      'stack.ps': c('stack.ps'),
      'stack.rm': c('stack.rm'),
      'secret.create': c('secret.create'),
      'secret.ls': c('secret.ls'),
      'secret.inspect': c('secret.inspect'),
      'secret.update': c('secret.update'),
      'secret.rm': c('secret.rm'),
      'config.create': c('config.create'),
      'config.ls': c('config.ls'),
      'config.inspect': c('config.inspect'),
      'config.update': c('config.update'),
      'config.rm': c('config.rm'),
    });
  }

  /** While this manager is locked, every method but info, unlock and leave answers {@link SWARM_LOCKED}. */
  private refuseWhileLocked(h: Handlers): Handlers {
    const out: Record<string, (p: unknown) => unknown> = {};
    for (const [name, fn] of Object.entries(h) as [string, (p: unknown) => unknown][]) {
      out[name] = WHILE_LOCKED.has(name) ? fn : (p) => {
        if (this.state && this.keys?.locked) throw unavailable(SWARM_LOCKED);
        return fn(p);
      };
    }
    return out as Handlers;
  }
}

/** Is `pid` a running shoald? (Signal 0 checks existence; the command line rules out a reused pid.) */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('shoald');
  } catch {
    return true; // no /proc: trust the signal
  }
}
