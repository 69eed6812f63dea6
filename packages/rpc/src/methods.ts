/**
 * Method tables: the Cluster service's `method` strings mapped to functions, composed into one
 * `ClusterHandler`; and the dispatcher's table over any `DispatcherClient`.
 */
import * as grpc from '@grpc/grpc-js';
import { invalidArgument, ShoalError } from '@shoal/api';
import type { DispatcherClient, NodeRole, SessionRequest, TaskStatusUpdate } from '@shoal/api';
import { PeerAuthError } from '@shoal/ca';
import type { ClusterHandler, Peer } from './server.js';

export type CallMethod = (params: unknown, peer: Peer | null) => Promise<unknown>;
export type WatchMethod = (params: unknown, peer: Peer, push: (v: unknown) => void, end: (err?: Error) => void) => () => void;

/** Named Call and Watch methods. */
export interface MethodTable {
  calls?: Readonly<Record<string, CallMethod>>;
  watches?: Readonly<Record<string, WatchMethod>>;
}

/**
 * One `ClusterHandler` over several tables (the first table naming a method wins). An unknown
 * method fails with Unimplemented "unknown cluster method …".
 */
export function tableHandler(...tables: MethodTable[]): ClusterHandler {
  const calls = new Map<string, CallMethod>();
  const watches = new Map<string, WatchMethod>();
  for (const t of tables) {
    for (const [k, f] of Object.entries(t.calls ?? {})) if (!calls.has(k)) calls.set(k, f);
    for (const [k, f] of Object.entries(t.watches ?? {})) if (!watches.has(k)) watches.set(k, f);
  }
  const unknown = (kind: string, method: string): ShoalError =>
    new ShoalError('Unimplemented', `unknown cluster ${kind} method ${JSON.stringify(method)}; the manager may run an older version`);
  return {
    call: async (method, params, peer) => {
      const f = calls.get(method);
      if (!f) throw unknown('call', method);
      return f(params, peer);
    },
    watch: (method, params, peer, push, end) => {
      const f = watches.get(method);
      if (!f) throw unknown('watch', method);
      return f(params, peer, push, end);
    },
  };
}

function obj(params: unknown, method: string): Record<string, unknown> {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw invalidArgument(`${method}: parameters must be a JSON object, got ${params === null ? 'null' : Array.isArray(params) ? 'an array' : typeof params}`);
  }
  return params as Record<string, unknown>;
}

function sessionIdOf(params: unknown, method: string): string {
  const id = obj(params, method).sessionId;
  if (typeof id !== 'string' || !id) throw invalidArgument(`${method}: sessionId must be a non-empty string, got ${JSON.stringify(id)}`);
  return id;
}

function need(peer: Peer | null, method: string): Peer {
  return requireRole(peer, ['manager', 'worker'], method);
}

/**
 * Per-method role check for handlers: returns the peer when it has one of `roles`.
 * @throws PeerAuthError UNAUTHENTICATED (no peer) or PERMISSION_DENIED (wrong role), which the
 *   server answers as such (the client sees RpcError FailedPrecondition with the gRPC code).
 */
export function requireRole(peer: Peer | null, roles: readonly NodeRole[], method: string): Peer {
  if (!peer) throw new PeerAuthError(grpc.status.UNAUTHENTICATED, `a valid cluster certificate is required for ${method}`);
  if (!roles.includes(peer.role)) {
    throw new PeerAuthError(grpc.status.PERMISSION_DENIED, `node ${peer.nodeId} is a ${peer.role}; ${method} needs role ${roles.join(' or ')}`);
  }
  return peer;
}

/** Method names of the dispatcher protocol over the Cluster service. */
export const DISPATCHER_METHODS = {
  openSession: 'dispatcher.openSession',
  heartbeat: 'dispatcher.heartbeat',
  updateTaskStatus: 'dispatcher.updateTaskStatus',
  assignments: 'dispatcher.assignments',
} as const;

/**
 * The dispatcher's methods over `d` (e.g. the leader's `localDispatcherClient(dispatcher)`), for
 * managers and workers alike. A node may open a session only for itself: `openSession` with another
 * `nodeId` is refused (PERMISSION_DENIED); an omitted `nodeId` is the caller's. Session IDs are
 * unguessable, so later calls are bound to the session's node by the dispatcher.
 */
export function dispatcherMethods(d: DispatcherClient): MethodTable {
  const M = DISPATCHER_METHODS;
  return {
    calls: {
      [M.openSession]: async (params, peer) => {
        const p = need(peer, M.openSession);
        const req = obj(params, M.openSession);
        if (req.nodeId !== undefined && req.nodeId !== p.nodeId) {
          throw new PeerAuthError(grpc.status.PERMISSION_DENIED, `node ${p.nodeId} cannot open a session for node ${JSON.stringify(req.nodeId)}`);
        }
        return d.openSession({ ...req, nodeId: p.nodeId } as unknown as SessionRequest);
      },
      [M.heartbeat]: async (params, peer) => {
        need(peer, M.heartbeat);
        return d.heartbeat(sessionIdOf(params, M.heartbeat));
      },
      [M.updateTaskStatus]: async (params, peer) => {
        need(peer, M.updateTaskStatus);
        const sessionId = sessionIdOf(params, M.updateTaskStatus);
        const updates = obj(params, M.updateTaskStatus).updates;
        if (!Array.isArray(updates)) throw invalidArgument(`${M.updateTaskStatus}: updates must be an array, got ${JSON.stringify(updates)}`);
        await d.updateTaskStatus(sessionId, updates as TaskStatusUpdate[]);
        return {};
      },
    },
    watches: {
      [M.assignments]: (params, _peer, push, end) => d.watchAssignments(sessionIdOf(params, M.assignments), push, end),
    },
  };
}
