/**
 * The method table a manager serves on its cluster gRPC port (mutual TLS, next to Raft): the join
 * flow (`ca.*`, answered with the replicated root CA once the cluster object is there), the
 * dispatcher, and the calls of `CLUSTER_CALLS` (`@shoal/api/cluster-contract`): membership
 * (`manager.*`, `node.*`) and `control.call`, the leader's side of a forwarded control method.
 * Every call's parameters are checked against its schema; calls marked `leader` are passed on to
 * the leader by a follower.
 */
import { type NodeRole, failedPrecondition, unavailable } from '@shoal/api';
import { CLUSTER_CALLS, type ClusterCall, type ClusterParams } from '@shoal/api/cluster-contract';
import { checkClusterParams, checkParams } from '@shoal/api/check';
import type { ControlMethod, Manager } from '@shoal/manager';
import { RootCA } from '@shoal/ca';
import {
  dispatcherMethods, joinMethods, requireRole, tableHandler, type CallMethod, type ClusterClient, type ClusterHandler, type Peer,
} from '@shoal/rpc';
import { NO_LEADER, NOT_MANAGER, type ControlRouter } from './control.js';
import type { Logger } from './platform.js';

/** What the cluster port needs from its node. */
export interface ClusterPortHost {
  readonly log: Logger;
  /** A client of the current Raft leader's cluster port. @throws ShoalError Unavailable when there is no leader. */
  leaderClient(): ClusterClient;
  /** This node's control routing (runs forwarded methods on the leader). */
  readonly router: ControlRouter;
  /** The leader told this manager it was removed from the Raft group. */
  removedFromRaft(): void;
}

/**
 * The table for manager `m` of cluster `clusterId`. Loads the root CA (with its key, replicated
 * to managers) once the cluster object is there; until then the join methods fail with Unavailable.
 */
export function clusterPortHandler(host: ClusterPortHost, m: Manager, clusterId: string): ClusterHandler {
  const log = host.log;
  let root: RootCA | undefined;
  const rootCa = (): RootCA => {
    if (!root) throw unavailable('the cluster CA is not loaded yet; retry in a moment');
    return root;
  };
  const loadRoot = (): void => {
    const c = m.cluster();
    if (c?.rootCaCert && c.rootCaKey && !root) {
      void RootCA.load(c.rootCaCert, c.rootCaKey).then((r) => (root = r)).catch((e) => log.error({ err: String(e) }, 'cannot load root CA'));
    }
  };
  loadRoot();
  m.onCommit(loadRoot);

  /**
   * A node's desired role, after a read barrier: a manager cut off from the leader, or one that
   * restarted on old data, must not answer from its stale replica — a demoted worker asking it
   * would promote itself (found by the cluster harness's randomized membership test).
   * @throws Unavailable when no leader confirms the read.
   */
  const desiredRole = async (nodeId: string): Promise<NodeRole | undefined> => {
    await m.readBarrier().catch(() => {
      throw unavailable(`this manager cannot confirm it has the current cluster state; ${NO_LEADER}`);
    });
    return m.node(nodeId)?.spec.desiredRole;
  };

  /** Runs `local` on the leader; a follower passes the call on (with `params`). */
  const onLeader = async <T>(call: ClusterCall, params: unknown, local: () => Promise<T>): Promise<T> => {
    if (m.isLeader()) return local();
    return host.leaderClient().call<T>(call, params, { timeoutMs: 60_000 });
  };

  /** A `CLUSTER_CALLS` method: role check, schema check, then `fn` with the caller. */
  const def = <C extends ClusterCall>(call: C, fn: (p: ClusterParams<C>, caller: Peer) => Promise<unknown>): [string, CallMethod] => [
    call,
    async (params, peer) => {
      const caller = requireRole(peer, CLUSTER_CALLS[call].roles as readonly NodeRole[], call);
      return fn(checkClusterParams(call, params), caller);
    },
  ];

  const calls: Record<string, CallMethod> = Object.fromEntries([
    def('manager.joinRaft', (p, caller) => {
      // A follower passes the call on for its caller: the joiner is named in the params then.
      const joiner = p.nodeId && m.isLeader() ? p.nodeId : caller.nodeId;
      return onLeader('manager.joinRaft', { ...p, nodeId: joiner }, async () => {
        await m.joinRaft(joiner, p.raftId, p.addr);
        return {};
      });
    }),
    def('manager.admit', async (p) => {
      if (!m.isLeader()) throw unavailable(`this manager is not the leader; ${NO_LEADER}`);
      return m.admit(p.role, p.advertiseAddr ?? '', p.hostname);
    }),
    def('manager.leaveRaft', (p, caller) => {
      const leaving = p.nodeId && m.isLeader() ? p.nodeId : caller.nodeId;
      return onLeader('manager.leaveRaft', { nodeId: leaving }, async () => {
        await m.leaveRaft(leaving);
        return {};
      });
    }),
    def('manager.removed', async (_p, caller) => {
      log.info({ by: caller.nodeId }, 'the leader removed this manager from the Raft group');
      setImmediate(() => host.removedFromRaft());
      return {};
    }),
    def('node.managerRemoved', (p, caller) => {
      // Only a manager passes a call on for another node (a follower forwarding it).
      const who = p.nodeId && caller.role === 'manager' && m.isLeader() ? p.nodeId : caller.nodeId;
      return onLeader('node.managerRemoved', { nodeId: who, raftId: p.raftId }, () => m.managerRemoved(who, p.raftId));
    }),
    def('node.desiredRole', async (_p, caller) => ({ desiredRole: await desiredRole(caller.nodeId) })),
    def('control.call', async (p, caller) => {
      // A demoted manager keeps its certificate until renewal: check the role it has now.
      if (m.node(caller.nodeId)?.role !== 'manager') throw failedPrecondition(NOT_MANAGER);
      if (typeof p.notAfter === 'number' && Date.now() > p.notAfter) {
        throw unavailable(`${p.method} reached the leader after its caller gave up; it was not run`);
      }
      if (!m.isLeader()) throw unavailable(`this manager is not the leader; ${m.leaderNodeId() ? 'the leader is ' + m.leaderNodeId() : NO_LEADER}`);
      const params = checkParams(p.method, p.params);
      if (['swarm.init', 'swarm.join', 'swarm.leave', 'swarm.info'].includes(p.method)) {
        throw failedPrecondition(`${p.method} acts on the node that receives it and cannot be forwarded`);
      }
      // The request id is recorded with the write in the replicated state (per caller).
      return host.router.runHere(m, p.method as ControlMethod, params as never, p.requestId !== undefined ? `${caller.nodeId}/${p.requestId}` : undefined);
    }),
  ]);

  return tableHandler(
    joinMethods({
      root: () => rootCa(),
      tokens: () => {
        const t = m.cluster()?.joinTokens;
        if (!t) throw unavailable('this manager has no cluster state yet');
        return t;
      },
      clusterId,
      admit: (role, _csr, req) => {
        const addr = typeof req.advertiseAddr === 'string' ? req.advertiseAddr : '';
        const hostname = typeof req.hostname === 'string' ? req.hostname : undefined;
        return onLeader('manager.admit', { role, advertiseAddr: addr, ...(hostname ? { hostname } : {}) }, () => m.admit(role, addr, hostname));
      },
      certExpiryMs: () => m.cluster()?.spec.caConfig.nodeCertExpiryMs,
      roleOf: async (id) => (await desiredRole(id)) ?? null,
    }),
    dispatcherMethods(m.localDispatcherClient()),
    {
      calls,
    },
  );
}
