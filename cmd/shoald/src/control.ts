/**
 * Control-method routing of `shoald`: where a control call (`service.create`, `node.ls`, …) runs.
 * On the Raft leader it runs here (reads after a ReadIndex barrier); on a follower it is forwarded
 * to the leader's cluster port as `control.call` (with `notAfter` and, for writes, `requestId`);
 * on a worker or outside a swarm it is refused. Owns the method switch over the manager's control
 * API, `node ls` manager status, role changes through Raft membership (`node update --role`,
 * removing a member) and join tokens, and the refusal messages the CLI shows.
 */
import {
  type Node, type Task, ShoalError, failedPrecondition, invalidArgument, newId, unavailable,
} from '@shoal/api';
import type { Manager, Logger } from '@shoal/manager';
import type { ServiceSpecInput, NodeUpdate } from '@shoal/controlapi';
import { rotateJoinToken, type TlsMaterial } from '@shoal/ca';
import { ClusterClient, RpcError } from '@shoal/rpc';

/** Control methods answered by the Raft leader (followers forward them; reads get a ReadIndex barrier). */
export const READS = new Set(['service.ls', 'service.inspect', 'service.ps', 'node.ls', 'node.inspect', 'node.ps', 'network.ls', 'network.inspect', 'task.inspect', 'swarm.joinToken']);

export const NO_LEADER = 'The swarm does not have a leader. It\'s possible that too few managers are online. Make sure more than half of the managers are online.';
export const NOT_MANAGER = 'This node is not a swarm manager. Worker nodes can\'t be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.';
export const NOT_IN_SWARM = 'This node is not a swarm manager. Use "shoal swarm init" or "shoal swarm join" to connect this node to swarm and try again.';

/** NO_LEADER, with the quorum arithmetic when `manager` knows of more than one voting member. */
export function noLeaderMessage(manager: Manager | undefined): string {
  const members = manager?.members().filter((m) => m.voter) ?? [];
  return members.length > 1 ? `${NO_LEADER} (${members.length} managers, ${Math.floor(members.length / 2) + 1} required)` : NO_LEADER;
}

/** What control routing needs from the daemon; every accessor is read at the moment of use. */
export interface ControlHost {
  /** This node's identity; undefined while it is in no swarm. */
  state(): { nodeId: string; clusterId: string; advertiseAddr: string } | undefined;
  /** The manager components; undefined on a worker and while in no swarm. */
  manager(): Manager | undefined;
  /** This node's TLS material (dials a removed manager to tell it so). */
  material(): TlsMaterial | undefined;
  /** A client of the current Raft leader's cluster port. @throws ShoalError Unavailable when there is no leader. */
  leaderClient(): ClusterClient;
  readonly log: Logger;
}

/** Routes control methods for one daemon (see the file header). */
export class ControlRouter {
  constructor(private readonly host: ControlHost) {}

  /**
   * Runs a control method: here when this node leads, else on the leader over the cluster port.
   * @throws ShoalError FailedPrecondition (NOT_IN_SWARM, NOT_MANAGER), Unavailable (no leader), or
   * the error of the method itself.
   */
  async control(method: string, params: Record<string, unknown>): Promise<unknown> {
    if (!this.host.state()) throw failedPrecondition(NOT_IN_SWARM);
    const m = this.host.manager();
    if (!m) throw failedPrecondition(NOT_MANAGER);
    if (m.isLeader()) {
      if (READS.has(method)) await m.readBarrier().catch(() => {
        throw unavailable(noLeaderMessage(this.host.manager()));
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
        return await this.host.leaderClient().call('control.call', { method, params, notAfter: deadline - 1000, requestId }, { timeoutMs: Math.max(left, 1) });
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
    const c = this.host.manager()!.control;
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
    const st = this.host.manager()!.managerStatus();
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
    const m = this.host.manager()!;
    const c = m.control;
    const node = c.getNode(ref);
    const name = node.description?.hostname ?? node.id;
    // Already in that role: not an error (Docker prints "Node X is already a manager." and exits 0).
    // No Raft membership change; the rest of the update applies, and the desired role is set to
    // the role the node has (cancelling an unfinished change the other way).
    if (change.role !== undefined && node.role === change.role) return c.updateNode(ref, change);
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
      if (node.id === this.host.state()!.nodeId) {
        await m.transferLeadership();
        await this.host.leaderClient().call('manager.removeMember', { nodeId: node.id }, { timeoutMs: 15_000 });
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
  async removeMember(id: string): Promise<void> {
    const m = this.host.manager()!;
    const addr = m.peerAddr(id);
    await m.removeManager(id);
    if (addr && id !== this.host.state()!.nodeId) {
      const c = new ClusterClient({ managers: [addr], ...this.host.material()!, clusterId: this.host.state()!.clusterId, callTimeoutMs: 5000 });
      void c.call('manager.removed', {}).catch((e) => this.host.log.warn({ nodeId: id, err: String(e) }, 'could not tell a removed manager')).finally(() => c.close());
    }
    await m.store.update((tx) => {
      const n = tx.get('nodes', id);
      if (n) tx.update('nodes', { ...n, role: 'worker', spec: { ...n.spec, desiredRole: 'worker' }, managerStatus: undefined as never });
    });
  }

  private async joinToken(p: { role?: string; rotate?: boolean }): Promise<{ token: string; managerAddr: string }> {
    const role = p.role;
    if (role !== 'worker' && role !== 'manager') throw invalidArgument(`unknown role ${JSON.stringify(role)}: use worker or manager`);
    const c = this.host.manager()!.control.getCluster();
    if (!c.joinTokens || !c.rootCaCert) throw failedPrecondition('this cluster has no join tokens');
    let tokens = c.joinTokens;
    if (p.rotate) {
      tokens = rotateJoinToken(tokens, role, c.rootCaCert);
      await this.host.manager()!.store.update((tx) => {
        const cur = tx.list('clusters')[0]!;
        tx.update('clusters', { ...cur, joinTokens: tokens });
      });
    }
    return { token: tokens[role], managerAddr: this.host.state()!.advertiseAddr };
  }
}
