import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type http from 'node:http';
import {
  type NodeDescription, type SwarmInfo, type Task, ShoalError, failedPrecondition, invalidArgument, newId, unavailable,
} from '@shoal/api';
import { Manager, type Logger } from '@shoal/manager';
import { Agent } from '@shoal/agent';
import { DockerExecutor } from '@shoal/executor-docker';
import type { ServiceSpecInput, NodeUpdate } from '@shoal/controlapi';
import { serveRpc, type Handler } from './rpc-server.js';

export interface DaemonOptions {
  dataDir: string;
  socket: string;
  dockerHost: string;
  hostname: string;
  listenAddr: string;
  advertiseAddr?: string;
  logger: Logger;
}

/** What survives a restart besides the Raft log: who this node is. Written once init/join succeeded. */
interface NodeState {
  nodeId: string;
  role: 'manager' | 'worker';
  advertiseAddr: string;
  listenAddr: string;
}

/**
 * `shoald`: one per machine. Serves the local control socket; once the node is in a swarm it
 * runs the agent (every node) and the manager (manager nodes). State lives under `--data-dir`:
 * `node.json` (identity) and `raft/` (LevelDB log + snapshots).
 */
export class Daemon {
  private manager: Manager | undefined;
  private agent: Agent | undefined;
  private executor: DockerExecutor | undefined;
  private server: http.Server | undefined;
  private state: NodeState | undefined;
  private busy: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: DaemonOptions) {}

  private get statePath() {
    return path.join(this.opts.dataDir, 'node.json');
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o700 });
    if (fs.existsSync(this.statePath)) {
      this.state = JSON.parse(fs.readFileSync(this.statePath, 'utf8')) as NodeState;
      await this.activate(false);
    }
    this.server = await serveRpc(this.opts.socket, this.handlers(), this.opts.logger);
    this.opts.logger.info({ socket: this.opts.socket, state: this.state ? 'active' : 'inactive' }, 'shoald ready');
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    await this.agent?.stop();
    await this.manager?.close();
  }

  private advertiseAddr(given?: string): string {
    const a = given ?? this.opts.advertiseAddr;
    if (a) return a.includes(':') ? a : `${a}:${this.opts.listenAddr.split(':').pop() ?? '2377'}`;
    for (const list of Object.values(os.networkInterfaces())) {
      for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) return `${i.address}:2377`;
    }
    return '127.0.0.1:2377';
  }

  /** Starts the manager (if this node is one) and the agent for the persisted identity. */
  private async activate(bootstrap: boolean, forceNewCluster = false): Promise<void> {
    const st = this.state!;
    this.executor = new DockerExecutor({ dockerHost: this.opts.dockerHost, nodeId: st.nodeId });
    if (st.role === 'manager') {
      this.manager = await Manager.open({
        nodeId: st.nodeId, dataDir: this.opts.dataDir, advertiseAddr: st.advertiseAddr, logger: this.opts.logger, forceNewCluster,
      });
      if (bootstrap || forceNewCluster) {
        await this.manager.waitLeader();
        const desc = await this.describe();
        await this.manager.bootstrap(desc);
      }
    }
    if (!this.manager) throw unavailable('worker nodes need the cluster transport (not yet available)');
    this.agent = new Agent({
      nodeId: st.nodeId, addr: st.advertiseAddr, dispatcher: this.manager.localDispatcherClient(), executor: this.executor,
      logger: this.opts.logger, hostname: this.opts.hostname,
    });
    await this.agent.start();
  }

  private async describe(): Promise<NodeDescription> {
    const d = await this.executor!.describe();
    return { ...d, hostname: this.opts.hostname || d.hostname };
  }

  private control() {
    if (!this.state) throw failedPrecondition('This node is not a swarm manager. Use "shoal swarm init" or "shoal swarm join" to connect this node to swarm and try again.');
    if (!this.manager) throw failedPrecondition('This node is not a swarm manager. Worker nodes can\'t be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.');
    return this.manager.control;
  }

  /** Serializes swarm-level state changes (init/join/leave). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async init(p: { advertiseAddr?: string; listenAddr?: string; forceNewCluster?: boolean; taskHistoryLimit?: number }) {
    return this.exclusive(async () => {
      if (p.forceNewCluster) {
        if (!this.state || this.state.role !== 'manager') throw failedPrecondition('--force-new-cluster needs a node that was a manager of a swarm');
        await this.agent?.stop();
        await this.manager?.close();
        this.manager = undefined;
        await this.activate(false, true);
        return { nodeId: this.state.nodeId };
      }
      if (this.state) throw failedPrecondition('This node is already part of a swarm. Use "shoal swarm leave" to leave this swarm and join another one.');
      this.state = {
        nodeId: newId(), role: 'manager', advertiseAddr: this.advertiseAddr(p.advertiseAddr), listenAddr: p.listenAddr ?? this.opts.listenAddr,
      };
      try {
        await this.activate(true);
        if (p.taskHistoryLimit !== undefined) await this.manager!.control.updateCluster({ taskHistoryLimit: p.taskHistoryLimit });
        fs.writeFileSync(this.statePath + '.tmp', JSON.stringify(this.state, null, 2), { mode: 0o600 });
        fs.renameSync(this.statePath + '.tmp', this.statePath);
      } catch (e) {
        // Leave nothing half-created: stop what started and drop the new Raft state.
        await this.agent?.stop().catch(() => undefined);
        await this.manager?.close().catch(() => undefined);
        this.agent = undefined;
        this.manager = undefined;
        this.state = undefined;
        fs.rmSync(path.join(this.opts.dataDir, 'raft'), { recursive: true, force: true });
        throw e;
      }
      return { nodeId: this.state.nodeId };
    });
  }

  private info(): SwarmInfo {
    if (!this.state) return { localNodeState: 'inactive', nodeId: '' };
    const info: SwarmInfo = { localNodeState: 'active', nodeId: this.state.nodeId, role: this.state.role };
    if (this.manager) {
      info.isLeader = this.manager.isLeader();
      info.leaderId = this.manager.leaderId();
      const nodes = this.manager.control.listNodes();
      info.nodes = nodes.length;
      info.managers = nodes.filter((n) => n.role === 'manager').map((n) => ({ nodeId: n.id, addr: n.managerStatus?.addr ?? n.status.addr, reachable: true }));
      try {
        info.clusterId = this.manager.control.getCluster().id;
      } catch {
        /* not bootstrapped yet */
      }
    }
    return info;
  }

  private nodeNames(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of this.control().listNodes()) out[n.id] = n.description?.hostname ?? n.id;
    return out;
  }

  private withLive(tasks: Task[]) {
    return { tasks, nodes: this.nodeNames() };
  }

  private handlers(): Map<string, Handler> {
    const str = (p: Record<string, unknown>, k: string): string => {
      const v = p[k];
      if (typeof v !== 'string' || v === '') throw invalidArgument(`missing ${k}`);
      return v;
    };
    const h: Record<string, Handler> = {
      'swarm.init': (p) => this.init(p as never),
      'swarm.join': () => {
        throw new ShoalError('Unimplemented', 'joining another swarm is not available yet in this build');
      },
      'swarm.leave': () => {
        throw new ShoalError('Unimplemented', 'leaving a swarm is not available yet in this build');
      },
      'swarm.info': () => this.info(),
      'swarm.joinToken': () => {
        throw new ShoalError('Unimplemented', 'join tokens are not available yet in this build');
      },
      'swarm.update': async (p) => {
        await this.control().updateCluster(p as never);
        return {};
      },
      'service.create': (p) => this.control().createService(p as unknown as ServiceSpecInput),
      'service.ls': () => this.control().listServices(),
      'service.inspect': (p) => this.control().getService(str(p, 'ref')),
      'service.ps': (p) => this.withLive(this.control().listTasks({
        service: str(p, 'ref'),
        ...(p['desiredState'] ? { desiredState: p['desiredState'] as never } : {}),
        ...(p['node'] ? { node: p['node'] as string } : {}),
      })),
      'service.update': (p) => this.control().updateService(str(p, 'ref'), p as never),
      'service.scale': (p) => this.control().scaleService(str(p, 'ref'), p['replicas'] as number),
      'service.rm': (p) => this.control().removeService(str(p, 'ref')),
      'node.ls': () => ({ nodes: this.control().listNodes(), selfId: this.state?.nodeId ?? '' }),
      'node.inspect': (p) => this.control().getNode(str(p, 'ref')),
      'node.update': (p) => this.control().updateNode(str(p, 'ref'), p as NodeUpdate),
      'node.rm': (p) => this.control().removeNode(str(p, 'ref'), !!p['force']),
      'node.ps': (p) => this.withLive(this.control().listTasks({ node: str(p, 'ref') })),
      'network.create': (p) => this.control().createNetwork(p as never),
      'network.ls': () => this.control().listNetworks(),
      'network.inspect': (p) => this.control().getNetwork(str(p, 'ref')),
      'network.rm': (p) => this.control().removeNetwork(str(p, 'ref')),
      'task.inspect': (p) => this.control().getTask(str(p, 'ref')),
    };
    return new Map(Object.entries(h));
  }
}
