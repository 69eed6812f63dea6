/**
 * The method table a manager serves on its cluster gRPC port (mutual TLS, next to Raft): the join
 * flow (`ca.*`, answered with the replicated root CA once the cluster object is there), the
 * dispatcher, the `manager.*` membership calls (a follower passes them to the leader) and
 * `control.call`, the leader's side of a forwarded control method (see control.ts): refused when
 * it arrives after its `notAfter` or on a non-leader, and run once per `<caller>/<requestId>`.
 */
import { type NodeRole, failedPrecondition, invalidArgument, newId, unavailable } from '@shoal/api';
import type { Manager, Logger } from '@shoal/manager';
import { RootCA } from '@shoal/ca';
import {
  dispatcherMethods, joinMethods, requireRole, tableHandler, type ClusterClient, type ClusterHandler, type Peer,
} from '@shoal/rpc';
import { NO_LEADER, NOT_MANAGER } from './control.js';

/** What the cluster port needs from the daemon. */
export interface ClusterPortHost {
  readonly log: Logger;
  /** A client of the current Raft leader's cluster port. @throws ShoalError Unavailable when there is no leader. */
  leaderClient(): ClusterClient;
  /** Leader: removes manager `id` from Raft and records it as a worker (ControlRouter.removeMember). */
  removeMember(id: string): Promise<void>;
  /** Runs a control method on this node (ControlRouter.control). */
  control(method: string, params: Record<string, unknown>): Promise<unknown>;
  /** This manager was removed from the Raft group: continue as a worker. */
  becomeWorker(): Promise<void>;
}

/**
 * One per daemon. `handler()` builds the table for each activation as a manager; the memory of
 * forwarded writes (`once`) outlives activations.
 */
export class ClusterPort {
  /** Forwarded writes by `<caller node>/<request id>`, kept 60 s: a repeat gets the first run's outcome. */
  private recentRequests = new Map<string, { at: number; result: Promise<unknown> }>();

  constructor(private readonly host: ClusterPortHost) {}

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

  /**
   * The table for manager `m` of cluster `clusterId`. Watches `m`'s store to load the root CA
   * (with its key, replicated to managers) once the cluster object is there; until then the join
   * methods fail with Unavailable.
   */
  handler(m: Manager, clusterId: string): ClusterHandler {
    const host = this.host;
    const log = host.log;
    let root: RootCA | undefined;
    const rootCa = (): RootCA => {
      if (!root) throw unavailable('the cluster CA is not loaded yet; retry in a moment');
      return root;
    };
    const cluster = () => m.store.view((tx) => tx.list('clusters')[0]);
    // Load the root CA (with its key, replicated to managers) once the cluster object is there.
    const loadRoot = () => {
      const c = cluster();
      if (c?.rootCaCert && c.rootCaKey && !root) {
        void RootCA.load(c.rootCaCert, c.rootCaKey).then((r) => (root = r)).catch((e) => log.error({ err: String(e) }, 'cannot load root CA'));
      }
    };
    loadRoot();
    m.store.watch((ev) => ev.kind !== 'commit' && ev.kind !== 'restore' ? undefined : loadRoot());
    const onLeader = async <T>(method: string, params: unknown, local: () => Promise<T>): Promise<T> => {
      if (m.isLeader()) return local();
      return host.leaderClient().call<T>(method, params, { timeoutMs: 60_000 });
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
        root: () => rootCa(),
        tokens: () => {
          const t = cluster()?.joinTokens;
          if (!t) throw unavailable('this manager has no cluster state yet');
          return t;
        },
        clusterId,
        admit: (role, _csr, req) => admit(role, req as { advertiseAddr?: unknown; hostname?: unknown }),
        certExpiryMs: () => cluster()?.spec.caConfig.nodeCertExpiryMs,
        roleOf: (id) => m.store.view((tx) => tx.get('nodes', id))?.spec.desiredRole ?? null,
      }),
      dispatcherMethods(m.localDispatcherClient()),
      {
        calls: {
          'manager.removed': async (_params: unknown, peer: Peer | null) => {
            const caller = requireRole(peer, ['manager'], 'manager.removed');
            log.info({ by: caller.nodeId }, 'the leader removed this manager from the Raft group');
            setImmediate(() => void host.becomeWorker().catch((e) => log.error({ err: String(e) }, 'could not continue as a worker')));
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
              await host.removeMember(id);
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
            const run = (): Promise<unknown> => host.control(p.method as string, (p.params ?? {}) as Record<string, unknown>);
            if (typeof p.requestId !== 'string') return run();
            return this.once(`${caller.nodeId}/${p.requestId}`, run);
          },
        },
      },
    );
  }
}
