/**
 * The calls nodes make to managers on the cluster port (gRPC `Cluster/Call`, mutual TLS), besides
 * the join flow (`ca.*`) and the dispatcher (`dispatcher.*`), which `@shoal/rpc` defines: who may
 * call each, and its parameter schema (checked on arrival, like the control contract's). The
 * caller's node ID always comes from its certificate, never from the parameters.
 */
import { Type as T, type Static, type TSchema } from '@sinclair/typebox';
import type { NodeRole } from './objects.js';

export interface ClusterCallDef<P extends TSchema = TSchema> {
  /** Roles (from the caller's certificate) allowed to call it. */
  readonly roles: readonly NodeRole[];
  readonly params: P;
  /** Runs on the Raft leader (a follower passes it on). */
  readonly leader: boolean;
  readonly summary: string;
}

const Obj = <P extends Parameters<typeof T.Object>[0]>(props: P) => T.Object(props, { additionalProperties: false });
const call = <P extends TSchema>(roles: readonly NodeRole[], leader: boolean, params: P, summary: string): ClusterCallDef<P> => ({ roles, params, leader, summary });

export const CLUSTER_CALLS = {
  /**
   * A follower passes a join on to the leader (the joiner has no certificate yet): create the
   * joining node's object for the role its token gave.
   */
  'manager.admit': call(['manager'], true, Obj({
    role: T.Union([T.Literal('manager'), T.Literal('worker')]), advertiseAddr: T.Optional(T.String()), hostname: T.Optional(T.String()),
  }), 'admit a joining node (the join flow, on the leader)'),
  /**
   * A manager (a node whose certificate says manager) asks to join the Raft group as member
   * `raftId` at `addr`. `nodeId` is set only by a follower passing the call on for its caller.
   */
  'manager.joinRaft': call(['manager'], true, Obj({ addr: T.String({ minLength: 1 }), raftId: T.String({ minLength: 1 }), nodeId: T.Optional(T.String()) }),
    'add the caller to the Raft group (learner, then voter)'),
  /** A manager leaves the swarm: its member is removed and the node recorded as a Down worker. */
  'manager.leaveRaft': call(['manager'], true, Obj({ nodeId: T.Optional(T.String()) }), 'remove the caller from the Raft group'),
  /** The leader tells a manager that its member was removed (so it turns into a worker at once). */
  'manager.removed': call(['manager'], false, Obj({}), 'tell a manager it was removed from the Raft group'),
  /**
   * A node whose manager was removed from the Raft group reports it; the leader records it as a
   * worker if it has no member (any role: its certificate may still say manager or already worker).
   */
  'node.managerRemoved': call(['manager', 'worker'], true, Obj({ raftId: T.String({ minLength: 1 }), nodeId: T.Optional(T.String()) }),
    'record the caller as a worker after its member `raftId` was removed'),
  /** The caller's desired role (promotion/demotion pending?). */
  'node.desiredRole': call(['manager', 'worker'], false, Obj({}), 'the caller\'s desired role'),
  /** A control method forwarded by a follower manager to the leader (see the control contract). */
  'control.call': call(['manager'], true, Obj({
    method: T.String(),
    params: T.Optional(T.Unknown()),
    /** Caller's clock, ms since the epoch: not run after this (its caller gave up). */
    notAfter: T.Optional(T.Number()),
    /** Set on writes: recorded with the write, so a retry runs at most once. */
    requestId: T.Optional(T.String()),
  }), 'run a control method on the leader'),
} as const;

export type ClusterCall = keyof typeof CLUSTER_CALLS;
export type ClusterParams<C extends ClusterCall> = Static<(typeof CLUSTER_CALLS)[C]['params']>;
