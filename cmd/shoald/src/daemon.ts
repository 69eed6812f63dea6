import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type http from 'node:http';
import {
  type DispatcherClient, type Node, type NodeDescription, type NodeRole, type SwarmInfo,
  failedPrecondition, invalidArgument, newId, unavailable,
} from '@shoal/api';
import { Manager, type Logger } from '@shoal/manager';
import { Agent } from '@shoal/agent';
import { DockerExecutor } from '@shoal/executor-docker';
import {
  MANAGER_CHANNEL_OPTIONS, RootCA, TlsIdentity, clientCredentials, createKeyAndCsr, generateJoinTokens, issueNodeCertificate, needsRenewal, parseCertificate,
  serverCredentials, type TlsMaterial,
} from '@shoal/ca';
import {
  ClusterClient, RemoteDispatcherClient, createClusterServer, joinCluster, normalizeManagerAddr,
  registerCluster, renewNodeCertificate, type ClusterServer,
} from '@shoal/rpc';
import { GrpcTransport } from '@shoal/replication';
import { assertSocketFree, serveRpc, type Handler } from './rpc-server.js';
import { NodeNetwork, type NodeNetworkOptions } from './network.js';
import { loadMaterial, saveMaterial, certPaths } from './certs.js';
import { ClusterPort } from './cluster-port.js';
import { ControlRouter, noLeaderMessage } from './control.js';

export interface DaemonOptions {
  dataDir: string;
  socket: string;
  dockerHost: string;
  hostname: string;
  listenAddr: string;
  advertiseAddr?: string;
  logger: Logger;
  /** Overlay, load balancer and DNS of this node (`--lb-dataplane`, `--data-path-port`); see network.ts. */
  network?: NodeNetworkOptions;
}

/** Who this node is; written once init/join succeeded (`<dataDir>/node.json`). */
interface NodeState {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  advertiseAddr: string;
  listenAddr: string;
  /** Manager addresses (`host:port`) last known; workers dial these. */
  managers: string[];
}

/**
 * `shoald`: one per machine. Serves the local control socket; once the node is in a swarm it runs
 * the agent (every node) and, on managers, Raft, the manager components and the cluster gRPC
 * port (mutual TLS from the cluster CA: Raft, dispatcher, join, forwarded control calls).
 * State under `--data-dir`: `node.json` (identity), `certs/` (TLS), `raft/` (LevelDB).
 *
 * This file owns the node's lifecycle: start/stop, activate/deactivate, swarm init/join/leave,
 * role watching and certificate renewal, and the local socket's handlers. Control methods are
 * routed by control.ts (ControlRouter); the cluster port's method table is cluster-port.ts.
 */
export class Daemon {
  private manager: Manager | undefined;
  private agent: Agent | undefined;
  private executor: DockerExecutor | undefined;
  /** This node's overlay, load balancer and DNS (closed with the agent; kept for `swarm leave`). */
  private network: NodeNetwork | undefined;
  private server: ClusterServer | undefined;
  private transport: GrpcTransport | undefined;
  private client: ClusterClient | undefined;
  private http: http.Server | undefined;
  private state: NodeState | undefined;
  private material: TlsMaterial | undefined;
  private leaderClients = new Map<string, ClusterClient>();
  private busy: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;
  private readonly router: ControlRouter;
  private readonly clusterPort: ClusterPort;

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.logger;
    this.router = new ControlRouter({
      state: () => this.state,
      manager: () => this.manager,
      material: () => this.material,
      leaderClient: () => this.leaderClient(),
      log: this.log,
    });
    this.clusterPort = new ClusterPort({
      log: this.log,
      leaderClient: () => this.leaderClient(),
      removeMember: (id) => this.router.removeMember(id),
      control: (method, params) => this.router.control(method, params),
      becomeWorker: () => this.becomeWorker(),
    });
  }

  private get statePath() {
    return path.join(this.opts.dataDir, 'node.json');
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o700 });
    this.lockDataDir();
    await assertSocketFree(this.opts.socket);
    if (fs.existsSync(this.statePath)) {
      this.state = JSON.parse(fs.readFileSync(this.statePath, 'utf8')) as NodeState;
      await this.activate({});
    }
    this.http = await serveRpc(this.opts.socket, this.handlers(), this.log);
    this.log.info({ socket: this.opts.socket, state: this.state ? 'active' : 'inactive', role: this.state?.role }, 'shoald ready');
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

  private ownsPid = false;

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
    await this.deactivate();
    if (this.ownsPid) fs.rmSync(this.pidPath, { force: true });
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  private saveState(): void {
    fs.writeFileSync(this.statePath + '.tmp', JSON.stringify(this.state, null, 2), { mode: 0o600 });
    fs.renameSync(this.statePath + '.tmp', this.statePath);
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

  /**
   * Starts the node for the persisted identity: on managers the cluster port, Raft and the manager
   * components; on every node the agent. `bootstrap` writes a new cluster's objects; `joinRaft`
   * asks the leader to add this manager to the Raft group.
   */
  private async activate(o: { bootstrap?: { root: RootCA; tokens: { worker: string; manager: string } }; joinRaft?: boolean; forceNewCluster?: boolean }): Promise<void> {
    const st = this.state!;
    this.material = loadMaterial(this.opts.dataDir);
    const network = await NodeNetwork.create(st.nodeId, this.opts.network ?? {}, this.log);
    this.network = network;
    this.executor = new DockerExecutor({ dockerHost: this.opts.dockerHost, nodeId: st.nodeId, network: network.taskNetwork });
    network.attach(this.executor.docker);
    let dispatcher: DispatcherClient;
    if (st.role === 'manager') {
      const identity = new TlsIdentity(this.material);
      this.server = createClusterServer({ identity, clusterId: st.clusterId, isRevoked: (id) => this.isRevoked(id) });
      const port = await this.server.listen(st.listenAddr);
      if (st.advertiseAddr.endsWith(':0')) st.advertiseAddr = st.advertiseAddr.replace(/:0$/, `:${port}`);
      if (st.listenAddr.endsWith(':0')) st.listenAddr = st.listenAddr.replace(/:0$/, `:${port}`);
      this.transport = new GrpcTransport({
        id: st.nodeId, server: this.server, advertise: st.advertiseAddr, clusterId: st.clusterId,
        credentials: { server: serverCredentials(identity, { requireClientCert: false }), client: clientCredentials(this.material) },
        // Certificates name nodes, not addresses: a fixed TLS server name (identity is checked by
        // the cluster CA and node ID), which also keeps Node from warning about IP server names.
        channelOptions: { ...MANAGER_CHANNEL_OPTIONS },
        logger: this.log,
      });
      await this.transport.start();
      this.manager = await Manager.open({
        nodeId: st.nodeId, dataDir: this.opts.dataDir, advertiseAddr: st.advertiseAddr, logger: this.log, transport: this.transport,
        ...(o.joinRaft ? { join: { peers: [] } } : {}),
        ...(o.forceNewCluster ? { forceNewCluster: true } : {}),
      });
      registerCluster(this.server, this.clusterPort.handler(this.manager, st.clusterId));
      this.manager.once('fatal', (e: Error) => {
        this.log.error({ err: String(e) }, 'Raft stopped on a fatal storage error; exiting so the daemon can be restarted');
        process.exit(70);
      });
      this.manager.once('removed', () => void this.becomeWorker().catch((e) => this.log.error({ err: String(e) }, 'could not continue as a worker')));
      if (o.bootstrap) {
        await this.manager.waitLeader();
        await this.manager.bootstrap(await this.describe(), {
          id: st.clusterId, rootCaCert: o.bootstrap.root.certPem, rootCaKey: o.bootstrap.root.keyPem, joinTokens: o.bootstrap.tokens,
        });
      }
      if (o.joinRaft) {
        // A failed join (no leader right now, a timeout) must not leave the node without an agent:
        // keep trying in the background; the agent finds the leader once this node is a member.
        await this.joinRaft().catch((e) => this.retryJoinRaft(this.manager!, e as Error));
      }
      dispatcher = this.leaderDispatcher();
    } else {
      this.client = new ClusterClient({ managers: st.managers, ...this.material, clusterId: st.clusterId });
      dispatcher = new RemoteDispatcherClient(this.client);
    }
    this.agent = new Agent({
      nodeId: st.nodeId, addr: st.advertiseAddr, dispatcher: this.watchManagers(dispatcher), executor: this.executor,
      logger: this.log, hostname: this.opts.hostname, network, dataplane: network.kind, drainDelayMs: network.drainDelayMs,
    });
    await this.agent.start();
    this.saveState();
    this.watchRole();
  }

  private roleTimer: NodeJS.Timeout | undefined;

  /**
   * Every 2 s: renews this node's certificate when it enters its renewal window (50–80 % of its
   * lifetime) or when the managers changed the node's desired role (`node promote`/`demote`); the
   * renewed certificate carries the desired role. A worker promoted this way restarts as a manager
   * and joins the Raft group; any other renewal restarts the node's services on the new certificate.
   */
  private watchRole(): void {
    clearInterval(this.roleTimer);
    this.roleTimer = setInterval(() => void this.checkRole().catch((e) => this.log.warn({ err: String(e) }, 'certificate/role check failed')), 2000);
    this.roleTimer.unref();
  }

  private checking = false;

  private async checkRole(): Promise<void> {
    if (this.checking || !this.state || !this.material) return;
    this.checking = true;
    try {
      const st = this.state;
      const certRole = parseCertificate(this.material.certPem).role;
      let desired: NodeRole | undefined;
      if (this.manager) desired = this.manager.store.view((tx) => tx.get('nodes', st.nodeId))?.spec.desiredRole;
      else if (this.client) desired = (await this.client.call<{ desiredRole?: NodeRole }>('node.desiredRole', {}, { timeoutMs: 5000 })).desiredRole;
      const due = needsRenewal(this.material.certPem);
      if (!due && (!desired || desired === certRole)) return;
      const via = this.client ?? (this.manager ? this.leaderClient() : undefined);
      if (!via) return;
      const renewed = await renewNodeCertificate(via, this.material, { timeoutMs: 10_000 });
      this.log.info({ role: renewed.role, was: certRole, due }, 'node certificate renewed');
      await this.exclusive(async () => {
        if (this.state !== st) return;
        saveMaterial(this.opts.dataDir, renewed);
        const promote = renewed.role === 'manager' && st.role === 'worker';
        await this.deactivate();
        if (promote) {
          st.role = 'manager';
          this.saveState();
        }
        // The node's services are down now: keep trying until they run again (a port still being
        // released, a Docker engine restarting), rather than leave the node Down for good.
        for (let attempt = 1; ; attempt++) {
          try {
            await this.activate(promote ? { joinRaft: true } : {});
            return;
          } catch (e) {
            this.log.error({ err: String(e), attempt }, 'could not restart the node services after a certificate renewal; retrying in 2 s');
            await this.deactivate();
            if (attempt >= 30) throw e; // ~1 min: give up; restarting shoald starts them again
            await new Promise((r) => setTimeout(r, 2000));
            if (this.state !== st) return;
          }
        }
      });
    } finally {
      this.checking = false;
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

  /** This manager was removed from the Raft group: keep running as a worker of the same swarm. */
  private async becomeWorker(): Promise<void> {
    await this.exclusive(async () => {
      if (!this.state || this.state.role !== 'manager' || !this.manager) return;
      const managers = this.manager.members().filter((x) => x.voter && x.id !== this.state!.nodeId).map((x) => x.addr).filter(Boolean);
      this.log.info({ managers }, 'removed from the Raft group: continuing as a worker');
      await this.deactivate();
      fs.rmSync(path.join(this.opts.dataDir, 'raft'), { recursive: true, force: true });
      this.state.role = 'worker';
      if (managers.length) this.state.managers = managers;
      this.saveState();
      await this.activate({});
    });
  }

  /** Wipes this node's swarm state (failed init/join, leave). Containers are left to the caller. */
  private wipe(): void {
    this.state = undefined;
    fs.rmSync(this.statePath, { force: true });
    fs.rmSync(path.join(this.opts.dataDir, 'raft'), { recursive: true, force: true });
    fs.rmSync(certPaths(this.opts.dataDir).dir, { recursive: true, force: true });
  }

  /** Keeps the manager list of workers (and of ClusterClient fail-over) current from session info. */
  private watchManagers(d: DispatcherClient): DispatcherClient {
    return {
      ...d,
      openSession: async (req) => {
        const info = await d.openSession(req);
        const addrs = info.managers.map((m) => m.addr).filter(Boolean);
        if (this.state && addrs.length && addrs.join() !== this.state.managers.join()) {
          this.state.managers = addrs;
          this.client?.setManagers(addrs);
          this.saveState();
        }
        return info;
      },
      heartbeat: (s) => d.heartbeat(s),
      updateTaskStatus: (s, u) => d.updateTaskStatus(s, u),
      watchAssignments: (s, on, end) => d.watchAssignments(s, on, end),
    };
  }

  /** A manager's agent talks to the dispatcher in process while this node leads, else over gRPC to the leader. */
  private leaderDispatcher(): DispatcherClient {
    const local = this.manager!.localDispatcherClient();
    const pick = (): DispatcherClient => (this.manager!.isLeader() ? local : new RemoteDispatcherClient(this.leaderClient()));
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
    const m = this.manager!;
    const leader = m.leaderId();
    const addr = leader ? m.peerAddr(leader) : undefined;
    if (!leader || !addr) throw unavailable(noLeaderMessage(this.manager));
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
        if (this.manager !== m || m.members().some((x) => x.id === this.state?.nodeId)) return;
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
    const c = new ClusterClient({ managers: st.managers.filter((a) => a !== st.advertiseAddr), ...this.material!, clusterId: st.clusterId, callTimeoutMs: 60_000 });
    try {
      await c.call('manager.joinRaft', { addr: st.advertiseAddr }, { timeoutMs: 60_000 });
    } finally {
      c.close();
    }
    const deadline = Date.now() + 30_000;
    while (!this.manager!.leaderId() || !this.manager!.store.view((tx) => tx.list('clusters')[0])) {
      if (Date.now() > deadline) throw unavailable('joined the Raft group but no leader or cluster state arrived within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private isRevoked(nodeId: string): boolean {
    const c = this.manager?.store.view((tx) => tx.list('clusters')[0]);
    return !!c?.removedNodes?.includes(nodeId);
  }

  private async describe(): Promise<NodeDescription> {
    const d = await this.executor!.describe();
    return { ...d, hostname: this.opts.hostname || d.hostname };
  }

  /** Serializes swarm-level state changes (init/join/leave). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  // ---- swarm init / join / leave -----------------------------------------------------------

  private async init(p: { advertiseAddr?: string; listenAddr?: string; forceNewCluster?: boolean; taskHistoryLimit?: number }) {
    return this.exclusive(async () => {
      if (p.forceNewCluster) {
        if (!this.state || this.state.role !== 'manager') throw failedPrecondition('--force-new-cluster needs a node that was a manager of a swarm');
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
      this.state = { nodeId, role: 'manager', clusterId, advertiseAddr: this.defaultAdvertise(p.advertiseAddr, listenAddr), listenAddr, managers: [] };
      saveMaterial(this.opts.dataDir, { rootPem: root.certPem, certPem, keyPem });
      try {
        await this.activate({ bootstrap: { root, tokens } });
        this.state.managers = [this.state.advertiseAddr];
        this.saveState();
        if (p.taskHistoryLimit !== undefined) await this.manager!.control.updateCluster({ taskHistoryLimit: p.taskHistoryLimit });
      } catch (e) {
        await this.deactivate();
        this.wipe();
        throw e;
      }
      return { nodeId };
    });
  }

  private async join(p: { token?: string; remoteAddr?: string; advertiseAddr?: string; listenAddr?: string }) {
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
      };
      saveMaterial(this.opts.dataDir, { rootPem: r.rootPem, certPem: r.certPem, keyPem: r.keyPem });
      try {
        await this.activate({ joinRaft: r.role === 'manager' });
      } catch (e) {
        await this.deactivate();
        this.wipe();
        throw e;
      }
      return { nodeId: r.nodeId, role: r.role };
    });
  }

  private async leave(p: { force?: boolean }) {
    return this.exclusive(async () => {
      if (!this.state) throw failedPrecondition('This node is not part of a swarm');
      if (this.manager) {
        const voters = this.manager.members().filter((m) => m.voter);
        if (!p.force) {
          const remaining = voters.length - 1;
          throw failedPrecondition(remaining === 0
            ? 'You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.'
            : `You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves ${remaining} managers out of ${voters.length}. Use \`--force\` to ignore this message.`);
        }
        if (voters.length > 1) {
          await this.leaderClient().call('manager.leaveRaft', {}, { timeoutMs: 15_000 }).catch((e) => this.log.warn({ err: String(e) }, 'could not leave the Raft group cleanly'));
        }
      }
      const nodeId = this.state.nodeId;
      const network = this.network;
      await this.deactivate();
      // Containers of this node's tasks go with it (Docker shuts down a leaving node's tasks).
      const ex = new DockerExecutor({ dockerHost: this.opts.dockerHost, nodeId });
      for (const c of await ex.list().catch(() => [])) await ex.removeOrphan(c.containerId).catch(() => undefined);
      // Then the host plumbing the overlay added (VXLAN device, route, rules, docker network).
      await network?.removeHostPlumbing();
      this.network = undefined;
      this.wipe();
      return {};
    });
  }

  private info(): SwarmInfo {
    if (!this.state) return { localNodeState: 'inactive', nodeId: '' };
    const info: SwarmInfo = { localNodeState: 'active', nodeId: this.state.nodeId, role: this.state.role, clusterId: this.state.clusterId };
    if (this.manager) {
      info.isLeader = this.manager.isLeader();
      info.leaderId = this.manager.leaderId();
      const status = this.manager.managerStatus();
      info.managers = this.manager.members().filter((m) => m.voter).map((m) => ({
        nodeId: m.id, addr: m.addr, reachable: status.get(m.id)?.reachability === 'reachable',
      }));
      info.nodes = this.manager.store.view((tx) => tx.list('nodes').length);
    } else {
      info.managers = this.state.managers.map((addr) => ({ nodeId: '', addr, reachable: true }));
    }
    return info;
  }

  // ---- local control socket ----------------------------------------------------------------

  private handlers(): Map<string, Handler> {
    const h: Record<string, Handler> = {
      'swarm.init': (p) => this.init(p as never),
      'swarm.join': (p) => this.join(p as never),
      'swarm.leave': (p) => this.leave(p as never),
      'swarm.info': () => this.info(),
    };
    const control = ['swarm.update', 'swarm.joinToken', 'service.create', 'service.ls', 'service.inspect', 'service.ps', 'service.update',
      'service.scale', 'service.rm', 'node.ls', 'node.inspect', 'node.update', 'node.rm', 'node.ps', 'network.create', 'network.ls',
      'network.inspect', 'network.rm', 'task.inspect'];
    for (const name of control) h[name] = (p) => this.router.control(name, p);
    // `node ls` marks this node with `*`.
    h['node.ls'] = async (p) => ({ ...(await this.router.control('node.ls', p) as { nodes: Node[] }), selfId: this.state?.nodeId ?? '' });
    return new Map(Object.entries(h));
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
