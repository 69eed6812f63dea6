import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type http from 'node:http';
import {
  type DispatcherClient, type Node, type NodeDescription, type NodeRole, type SwarmInfo, type Task,
  ShoalError, failedPrecondition, invalidArgument, newId, unavailable,
} from '@shoal/api';
import { Manager, type Logger } from '@shoal/manager';
import { Agent } from '@shoal/agent';
import { DockerExecutor } from '@shoal/executor-docker';
import type { ServiceSpecInput, NodeUpdate } from '@shoal/controlapi';
import {
  RootCA, TlsIdentity, clientCredentials, createKeyAndCsr, generateJoinTokens, issueNodeCertificate, needsRenewal, parseCertificate,
  rotateJoinToken, serverCredentials, type TlsMaterial,
} from '@shoal/ca';
import {
  ClusterClient, RemoteDispatcherClient, RpcError, createClusterServer, dispatcherMethods, joinCluster, joinMethods, normalizeManagerAddr,
  registerCluster, renewNodeCertificate, requireRole, tableHandler, type ClusterServer, type Peer,
} from '@shoal/rpc';
import { GrpcTransport } from '@shoal/replication';
import { serveRpc, type Handler } from './rpc-server.js';
import { NodeNetwork, type NodeNetworkOptions } from './network.js';
import { loadMaterial, saveMaterial, certPaths } from './certs.js';

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

/** Control methods answered by the Raft leader (followers forward them; reads get a ReadIndex barrier). */
const READS = new Set(['service.ls', 'service.inspect', 'service.ps', 'node.ls', 'node.inspect', 'node.ps', 'network.ls', 'network.inspect', 'task.inspect', 'swarm.joinToken']);

const NO_LEADER = 'The swarm does not have a leader. It\'s possible that too few managers are online. Make sure more than half of the managers are online.';
const NOT_MANAGER = 'This node is not a swarm manager. Worker nodes can\'t be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.';
const NOT_IN_SWARM = 'This node is not a swarm manager. Use "shoal swarm init" or "shoal swarm join" to connect this node to swarm and try again.';

/**
 * `shoald`: one per machine. Serves the local control socket; once the node is in a swarm it runs
 * the agent (every node) and, on managers, Raft, the manager components and the cluster gRPC
 * port (mutual TLS from the cluster CA: Raft, dispatcher, join, forwarded control calls).
 * State under `--data-dir`: `node.json` (identity), `certs/` (TLS), `raft/` (LevelDB).
 */
export class Daemon {
  private manager: Manager | undefined;
  private agent: Agent | undefined;
  private executor: DockerExecutor | undefined;
  private server: ClusterServer | undefined;
  private transport: GrpcTransport | undefined;
  private client: ClusterClient | undefined;
  private http: http.Server | undefined;
  private state: NodeState | undefined;
  private material: TlsMaterial | undefined;
  private root: RootCA | undefined;
  private leaderClients = new Map<string, ClusterClient>();
  private busy: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.logger;
  }

  private get statePath() {
    return path.join(this.opts.dataDir, 'node.json');
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o700 });
    if (fs.existsSync(this.statePath)) {
      this.state = JSON.parse(fs.readFileSync(this.statePath, 'utf8')) as NodeState;
      await this.activate({});
    }
    this.http = await serveRpc(this.opts.socket, this.handlers(), this.log);
    this.log.info({ socket: this.opts.socket, state: this.state ? 'active' : 'inactive', role: this.state?.role }, 'shoald ready');
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
    await this.deactivate();
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
        logger: this.log,
      });
      await this.transport.start();
      this.manager = await Manager.open({
        nodeId: st.nodeId, dataDir: this.opts.dataDir, advertiseAddr: st.advertiseAddr, logger: this.log, transport: this.transport,
        ...(o.joinRaft ? { join: { peers: [] } } : {}),
        ...(o.forceNewCluster ? { forceNewCluster: true } : {}),
      });
      registerCluster(this.server, this.clusterHandler());
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
      if (o.joinRaft) await this.joinRaft();
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
        await this.activate(promote ? { joinRaft: true } : {});
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
    this.root = undefined;
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
  /** Forwarded writes by `<caller node>/<request id>`, kept 60 s: a repeat gets the first run's outcome. */
  private recentRequests = new Map<string, { at: number; result: Promise<unknown> }>();

  private once(key: string, run: () => Promise<unknown>): Promise<unknown> {
    const now = Date.now();
    for (const [k, v] of this.recentRequests) {
      if (now - v.at <= 60_000) break; // insertion order = age order
      this.recentRequests.delete(k);
    }
    const seen = this.recentRequests.get(key);
    if (seen) return seen.result;
    const result = run();
    this.recentRequests.set(key, { at: now, result });
    return result;
  }

  private leaderClient(): ClusterClient {
    const m = this.manager!;
    const leader = m.leaderId();
    const addr = leader ? m.peerAddr(leader) : undefined;
    if (!leader || !addr) throw unavailable(this.noLeaderMessage());
    let c = this.leaderClients.get(addr);
    if (!c) {
      c = new ClusterClient({ managers: [addr], ...this.material!, clusterId: this.state!.clusterId, callTimeoutMs: 15_000 });
      this.leaderClients.set(addr, c);
    }
    return c;
  }

  private noLeaderMessage(): string {
    const members = this.manager?.members().filter((m) => m.voter) ?? [];
    return members.length > 1 ? `${NO_LEADER} (${members.length} managers, ${Math.floor(members.length / 2) + 1} required)` : NO_LEADER;
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
      await this.deactivate();
      // Containers of this node's tasks go with it (Docker shuts down a leaving node's tasks).
      const ex = new DockerExecutor({ dockerHost: this.opts.dockerHost, nodeId });
      for (const c of await ex.list().catch(() => [])) await ex.removeOrphan(c.containerId).catch(() => undefined);
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

  // ---- control methods ---------------------------------------------------------------------

  /** Runs a control method: here when this node leads, else on the leader over the cluster port. */
  private async control(method: string, params: Record<string, unknown>): Promise<unknown> {
    if (!this.state) throw failedPrecondition(NOT_IN_SWARM);
    const m = this.manager;
    if (!m) throw failedPrecondition(NOT_MANAGER);
    if (m.isLeader()) {
      if (READS.has(method)) await m.readBarrier().catch(() => {
        throw unavailable(this.noLeaderMessage());
      });
      return this.localControl(method, params);
    }
    return this.forward(method, params);
  }

  /**
   * Runs a control method on the leader, over the cluster port. The leader answers within its
   * proposal timeout (10 s); a leader cut off from here shows as no answer, and Raft on this node
   * drops it as leader within an election timeout. Whole call: at most 12 s.
   * - `notAfter` (this clock; one machine's clock in tests, NTP-close in a cluster): a request that
   *   crosses a healed partition after its caller gave up is not run by the leader.
   * - `requestId`: a write whose connection failed after it was sent is sent again with the same id
   *   (to the same or a new leader); the leader runs an id once and answers repeats from memory.
   * @throws ShoalError Unavailable. When a write may have reached the leader but no answer came,
   * the message says its outcome is unknown and how to check, instead of claiming it failed.
   */
  private async forward(method: string, params: Record<string, unknown>): Promise<unknown> {
    const write = !READS.has(method);
    const deadline = Date.now() + 12_000;
    const requestId = write ? newId() : undefined;
    let sentOnce = false;
    for (;;) {
      const left = deadline - Date.now();
      try {
        return await this.leaderClient().call('control.call', { method, params, notAfter: deadline - 1000, requestId }, { timeoutMs: Math.max(left, 1) });
      } catch (e) {
        const sent = e instanceof RpcError && e.sent;
        sentOnce ||= sent;
        // Only a write that may have gone out is sent again (same id); anything else fails at once.
        const retry = write && sent && deadline - Date.now() > 1500;
        if (!retry) {
          if (write && sentOnce && e instanceof ShoalError && e.code === 'Unavailable') {
            throw unavailable(`${e.message}. The request reached the leader's connection before it failed, so it may have been applied: check (e.g. \`shoal service ls\`, \`shoal node ls\`) before running it again`);
          }
          throw e;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private localControl(method: string, p: Record<string, unknown>): unknown {
    const c = this.manager!.control;
    const str = (k: string): string => {
      const v = p[k];
      if (typeof v !== 'string' || v === '') throw invalidArgument(`missing ${k}`);
      return v;
    };
    const names = () => Object.fromEntries(c.listNodes().map((n) => [n.id, n.description?.hostname ?? n.id]));
    const tasks = (t: Task[]) => ({ tasks: t, nodes: names() });
    switch (method) {
      case 'swarm.update': return c.updateCluster(p as never).then(() => ({}));
      case 'swarm.joinToken': return this.joinToken(p as { role?: string; rotate?: boolean });
      case 'service.create': return c.createService(p as unknown as ServiceSpecInput);
      case 'service.ls': return c.listServices();
      case 'service.inspect': return c.getService(str('ref'));
      case 'service.ps': return tasks(c.listTasks({
        service: str('ref'),
        ...(p['desiredState'] ? { desiredState: p['desiredState'] as never } : {}),
        ...(p['node'] ? { node: p['node'] as string } : {}),
      }));
      case 'service.update': return c.updateService(str('ref'), p as never);
      case 'service.scale': return c.scaleService(str('ref'), p['replicas'] as number);
      case 'service.rm': return c.removeService(str('ref'));
      case 'node.ls': return { nodes: this.withManagerStatus(c.listNodes()), selfId: '' };
      case 'node.inspect': return this.withManagerStatus([c.getNode(str('ref'))])[0];
      case 'node.update': return this.updateNode(str('ref'), p as NodeUpdate);
      case 'node.rm': return c.removeNode(str('ref'), !!p['force']);
      case 'node.ps': return tasks(c.listTasks({ node: str('ref') }));
      case 'network.create': return c.createNetwork(p as never);
      case 'network.ls': return c.listNetworks();
      case 'network.inspect': return c.getNetwork(str('ref'));
      case 'network.rm': return c.removeNetwork(str('ref'));
      case 'task.inspect': return c.getTask(str('ref'));
      default: throw new ShoalError('Unimplemented', `unknown method ${method}`);
    }
  }

  /** `node ls` on the leader: MANAGER STATUS from live Raft state, not from the stored record. */
  private withManagerStatus(nodes: Node[]): Node[] {
    const st = this.manager!.managerStatus();
    return nodes.map((n) => {
      const s = st.get(n.id);
      if (!s) return n.role === 'manager' ? { ...n, managerStatus: { leader: false, reachability: 'unreachable', addr: n.managerStatus?.addr ?? '', raftId: n.id } } : n;
      return { ...n, managerStatus: { leader: s.leader, reachability: s.reachability, addr: s.addr, raftId: n.id } };
    });
  }

  /**
   * Role changes go through Raft membership. Demoting removes the Raft member and records the node
   * as a worker; demoting the leader hands leadership over first, and the new leader completes the
   * removal. The demoted node notices it was removed and carries on as a worker.
   */
  private async updateNode(ref: string, change: NodeUpdate): Promise<{ id: string }> {
    const m = this.manager!;
    const c = m.control;
    const node = c.getNode(ref);
    const name = node.description?.hostname ?? node.id;
    if (change.role === 'worker' && node.role === 'worker') throw failedPrecondition(`node ${name} is already a worker`);
    if (change.role === 'manager' && node.role === 'manager') throw failedPrecondition(`node ${name} is already a manager`);
    if (change.role === 'worker') {
      const voters = m.members().filter((v) => v.voter);
      if (voters.length <= 1) throw failedPrecondition(`node ${name} is the last manager of the swarm; demoting it would destroy the cluster`);
      const status = m.managerStatus();
      const reachable = voters.filter((v) => v.id !== node.id && status.get(v.id)?.reachability === 'reachable').length;
      const quorumAfter = Math.floor((voters.length - 1) / 2) + 1;
      if (reachable < quorumAfter) {
        throw failedPrecondition(`can't demote ${name}: the remaining managers would lose quorum (${reachable} of ${voters.length - 1} reachable, ${quorumAfter} needed)`);
      }
      const r = await c.updateNode(ref, { ...change, role: 'worker' });
      if (node.id === this.state!.nodeId) {
        await m.transferLeadership();
        await this.leaderClient().call('manager.removeMember', { nodeId: node.id }, { timeoutMs: 15_000 });
      } else {
        await this.removeMember(node.id);
      }
      return r;
    }
    // Promotion: the desired role is recorded; the node notices within seconds, renews its
    // certificate as a manager and asks the leader to add it to the Raft group.
    return c.updateNode(ref, change);
  }

  /**
   * Leader: removes a manager from Raft, records it as a worker, and tells it so (a removed member
   * never receives the entry that removes it, so it would otherwise wait for a leader forever).
   */
  private async removeMember(id: string): Promise<void> {
    const m = this.manager!;
    const addr = m.peerAddr(id);
    await m.removeManager(id);
    if (addr && id !== this.state!.nodeId) {
      const c = new ClusterClient({ managers: [addr], ...this.material!, clusterId: this.state!.clusterId, callTimeoutMs: 5000 });
      void c.call('manager.removed', {}).catch((e) => this.log.warn({ nodeId: id, err: String(e) }, 'could not tell a removed manager')).finally(() => c.close());
    }
    await m.store.update((tx) => {
      const n = tx.get('nodes', id);
      if (n) tx.update('nodes', { ...n, role: 'worker', spec: { ...n.spec, desiredRole: 'worker' }, managerStatus: undefined as never });
    });
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

  private async joinToken(p: { role?: string; rotate?: boolean }): Promise<{ token: string; managerAddr: string }> {
    const role = p.role;
    if (role !== 'worker' && role !== 'manager') throw invalidArgument(`unknown role ${JSON.stringify(role)}: use worker or manager`);
    const c = this.manager!.control.getCluster();
    if (!c.joinTokens || !c.rootCaCert) throw failedPrecondition('this cluster has no join tokens');
    let tokens = c.joinTokens;
    if (p.rotate) {
      tokens = rotateJoinToken(tokens, role, c.rootCaCert);
      await this.manager!.store.update((tx) => {
        const cur = tx.list('clusters')[0]!;
        tx.update('clusters', { ...cur, joinTokens: tokens });
      });
    }
    return { token: tokens[role], managerAddr: this.state!.advertiseAddr };
  }

  // ---- the cluster port (gRPC, mutual TLS) -------------------------------------------------

  private rootCa(): RootCA {
    if (!this.root) throw unavailable('the cluster CA is not loaded yet; retry in a moment');
    return this.root;
  }

  private clusterHandler() {
    const m = this.manager!;
    const cluster = () => m.store.view((tx) => tx.list('clusters')[0]);
    // Load the root CA (with its key, replicated to managers) once the cluster object is there.
    const loadRoot = () => {
      const c = cluster();
      if (c?.rootCaCert && c.rootCaKey && !this.root) {
        void RootCA.load(c.rootCaCert, c.rootCaKey).then((r) => (this.root = r)).catch((e) => this.log.error({ err: String(e) }, 'cannot load root CA'));
      }
    };
    loadRoot();
    m.store.watch((ev) => ev.kind !== 'commit' && ev.kind !== 'restore' ? undefined : loadRoot());
    const onLeader = async <T>(method: string, params: unknown, local: () => Promise<T>): Promise<T> => {
      if (m.isLeader()) return local();
      return this.leaderClient().call<T>(method, params, { timeoutMs: 60_000 });
    };
    const admit = async (role: NodeRole, params: { advertiseAddr?: unknown; hostname?: unknown }): Promise<{ nodeId: string; managers: string[] }> =>
      onLeader('manager.admit', { role, advertiseAddr: params.advertiseAddr, hostname: params.hostname }, async () => {
        const nodeId = newId();
        const addr = typeof params.advertiseAddr === 'string' ? params.advertiseAddr : '';
        const now = new Date().toISOString();
        await m.store.update((tx) => tx.create('nodes', {
          id: nodeId, meta: { version: 0, createdAt: now, updatedAt: now },
          spec: { labels: {}, desiredRole: role, availability: 'active' },
          role,
          ...(typeof params.hostname === 'string' ? { description: { hostname: params.hostname, platform: { os: 'linux', architecture: '' }, resources: { nanoCpus: 0, memoryBytes: 0 }, engine: { engineVersion: '', labels: {} } } } : {}),
          status: { state: 'unknown', message: 'joining', addr },
          ...(role === 'manager' ? { managerStatus: { leader: false, reachability: 'unknown' as const, addr, raftId: nodeId } } : {}),
        }));
        return { nodeId, managers: m.members().filter((x) => x.voter).map((x) => x.addr) };
      });
    return tableHandler(
      joinMethods({
        root: () => this.rootCa(),
        tokens: () => {
          const t = cluster()?.joinTokens;
          if (!t) throw unavailable('this manager has no cluster state yet');
          return t;
        },
        clusterId: this.state!.clusterId,
        admit: (role, _csr, req) => admit(role, req as { advertiseAddr?: unknown; hostname?: unknown }),
        certExpiryMs: () => cluster()?.spec.caConfig.nodeCertExpiryMs,
        roleOf: (id) => m.store.view((tx) => tx.get('nodes', id))?.spec.desiredRole ?? null,
      }),
      dispatcherMethods(m.localDispatcherClient()),
      {
        calls: {
          'manager.removed': async (_params: unknown, peer: Peer | null) => {
            const caller = requireRole(peer, ['manager'], 'manager.removed');
            this.log.info({ by: caller.nodeId }, 'the leader removed this manager from the Raft group');
            setImmediate(() => void this.becomeWorker().catch((e) => this.log.error({ err: String(e) }, 'could not continue as a worker')));
            return {};
          },
          'node.desiredRole': async (_params: unknown, peer: Peer | null) => {
            const caller = requireRole(peer, ['manager', 'worker'], 'node.desiredRole');
            return { desiredRole: m.store.view((tx) => tx.get('nodes', caller.nodeId))?.spec.desiredRole };
          },
          'manager.admit': async (params: unknown, peer: Peer | null) => {
            requireRole(peer, ['manager'], 'manager.admit');
            const p = params as { role: NodeRole; advertiseAddr?: string; hostname?: string };
            if (p.role !== 'manager' && p.role !== 'worker') throw invalidArgument('manager.admit: bad role');
            return admit(p.role, p);
          },
          'manager.joinRaft': async (params: unknown, peer: Peer | null) => {
            const caller = requireRole(peer, ['manager'], 'manager.joinRaft');
            const p = params as { addr?: unknown; nodeId?: unknown };
            if (typeof p.addr !== 'string' || !p.addr) throw invalidArgument('manager.joinRaft: missing addr');
            const addr = p.addr;
            // A follower forwards the call on the joiner's behalf: the joiner is named in the params.
            const joiner = typeof p.nodeId === 'string' && p.nodeId ? p.nodeId : caller.nodeId;
            return onLeader('manager.joinRaft', { addr, nodeId: joiner }, async () => {
              await m.addManager(joiner, addr);
              await m.store.update((tx) => {
                const n = tx.get('nodes', joiner);
                if (n && (n.role !== 'manager' || n.managerStatus?.addr !== addr)) {
                  tx.update('nodes', { ...n, role: 'manager', managerStatus: { leader: false, reachability: 'reachable', addr, raftId: joiner } });
                }
              });
              return {};
            });
          },
          'manager.leaveRaft': async (_params: unknown, peer: Peer | null) => {
            const caller = requireRole(peer, ['manager'], 'manager.leaveRaft');
            return onLeader('manager.leaveRaft', {}, async () => {
              await m.removeManager(caller.nodeId);
              await m.store.update((tx) => {
                const n = tx.get('nodes', caller.nodeId);
                if (n) tx.update('nodes', { ...n, role: 'worker', spec: { ...n.spec, desiredRole: 'worker' }, status: { ...n.status, state: 'down', message: 'node left the swarm' } });
              });
              return {};
            });
          },
          'manager.removeMember': async (params: unknown, peer: Peer | null) => {
            requireRole(peer, ['manager'], 'manager.removeMember');
            const id = (params as { nodeId?: unknown }).nodeId;
            if (typeof id !== 'string') throw invalidArgument('manager.removeMember: missing nodeId');
            return onLeader('manager.removeMember', params, async () => {
              await this.removeMember(id);
              return {};
            });
          },
          'control.call': async (params: unknown, peer: Peer | null) => {
            const caller = requireRole(peer, ['manager'], 'control.call');
            // A demoted manager keeps its certificate until renewal: check the role it has now.
            if (m.store.view((tx) => tx.get('nodes', caller.nodeId))?.role !== 'manager') throw failedPrecondition(NOT_MANAGER);
            const p = params as { method?: unknown; params?: unknown; notAfter?: unknown; requestId?: unknown };
            if (typeof p.method !== 'string') throw invalidArgument('control.call: missing method');
            if (typeof p.notAfter === 'number' && Date.now() > p.notAfter) {
              throw unavailable(`${p.method} reached the leader after its caller gave up; it was not run`);
            }
            if (!m.isLeader()) throw unavailable(`this manager is not the leader; ${m.leaderId() ? 'the leader is ' + m.leaderId() : NO_LEADER}`);
            const run = (): Promise<unknown> => this.control(p.method as string, (p.params ?? {}) as Record<string, unknown>);
            if (typeof p.requestId !== 'string') return run();
            return this.once(`${caller.nodeId}/${p.requestId}`, run);
          },
        },
      },
    );
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
    for (const name of control) h[name] = (p) => this.control(name, p);
    // `node ls` marks this node with `*`.
    h['node.ls'] = async (p) => ({ ...(await this.control('node.ls', p) as { nodes: Node[] }), selfId: this.state?.nodeId ?? '' });
    return new Map(Object.entries(h));
  }
}
