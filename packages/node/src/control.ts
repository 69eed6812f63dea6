/**
 * Where a control call runs (the routing of the control contract, `@shoal/api/contract`):
 * - on the Raft leader, here: reads after a ReadIndex barrier, writes directly;
 * - on a follower manager: forwarded to the leader's cluster port as `control.call`, writes with a
 *   request id that the leader records with the write (exactly once across retries and leader
 *   changes) and a `notAfter` (a call that crosses a healed partition after its caller gave up is
 *   not run);
 * - on a worker, or outside a swarm: refused with Docker's messages.
 */
import { METHODS } from '@shoal/api/contract';
import { ShoalError, failedPrecondition, newId, unavailable, type Params, type Result } from '@shoal/api';
import type { ControlMethod, Manager } from '@shoal/manager';
import { RpcError, type ClusterClient } from '@shoal/rpc';

export const NO_LEADER = 'The swarm does not have a leader. It\'s possible that too few managers are online. Make sure more than half of the managers are online.';
export const NOT_MANAGER = 'This node is not a swarm manager. Worker nodes can\'t be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.';
export const NOT_IN_SWARM = 'This node is not a swarm manager. Use "shoal swarm init" or "shoal swarm join" to connect this node to swarm and try again.';

/** NO_LEADER, with the quorum arithmetic when `manager` knows of more than one voting member. */
export function noLeaderMessage(manager: Manager | undefined): string {
  const q = manager?.quorum();
  return q && q.voters > 1 ? `${NO_LEADER} (${q.voters} managers, ${q.needed} required)` : NO_LEADER;
}

/** The whole forwarded call may take this long, ms (the leader answers within its 10 s proposal timeout). */
export const FORWARD_DEADLINE_MS = 12_000;

/** What routing needs from the node; every accessor is read at the moment of use. */
export interface ControlHost {
  /** This node's ID; undefined while it is in no swarm. */
  nodeId(): string | undefined;
  /** The manager; undefined on a worker and while in no swarm. */
  manager(): Manager | undefined;
  /** Why this node is not a manager any more, if it was removed from the managers (appended to NOT_MANAGER). */
  notice(): string | undefined;
  /** A client of the current Raft leader's cluster port. @throws ShoalError Unavailable when there is no leader. */
  leaderClient(): ClusterClient;
}

export class ControlRouter {
  constructor(private readonly host: ControlHost) {}

  /**
   * Runs control method `method`: here when this node leads, else on the leader.
   * @throws ShoalError FailedPrecondition (NOT_IN_SWARM, NOT_MANAGER), Unavailable (no leader), or
   *   the error of the method itself.
   */
  async control<M extends ControlMethod>(method: M, params: Params<M>): Promise<Result<M>> {
    if (!this.host.nodeId()) throw failedPrecondition(NOT_IN_SWARM);
    const m = this.host.manager();
    if (!m) {
      const notice = this.host.notice();
      throw failedPrecondition(notice ? `${NOT_MANAGER} (${notice})` : NOT_MANAGER);
    }
    if (m.isLeader()) return this.runHere(m, method, params);
    return this.forward(method, params) as Promise<Result<M>>;
  }

  /**
   * Runs a control method on this manager, which must lead: a read after a ReadIndex barrier, a
   * write with `requestId` (given by a follower that forwarded it) recorded with it.
   */
  async runHere<M extends ControlMethod>(m: Manager, method: M, params: Params<M>, requestId?: string): Promise<Result<M>> {
    if (METHODS[method].kind === 'read') {
      await m.readBarrier().catch(() => {
        throw unavailable(noLeaderMessage(m));
      });
    }
    return m.call(method, params, requestId !== undefined ? { requestId } : {});
  }

  /**
   * Runs a control method on the leader, over the cluster port. A leader cut off from here shows as
   * no answer, and Raft on this node drops it as leader within an election timeout.
   * - A write whose connection failed after it was sent is sent again with the same request id (to
   *   the same or a new leader); the leader records the id with the write, so it runs at most once
   *   and a repeat answers with the first outcome.
   * @throws ShoalError Unavailable. When a write may have reached the leader but no answer came,
   *   the message says its outcome is unknown and how to check, instead of claiming it failed.
   */
  private async forward(method: ControlMethod, params: unknown): Promise<unknown> {
    const write = METHODS[method].kind === 'write';
    const deadline = Date.now() + FORWARD_DEADLINE_MS;
    const requestId = write ? newId() : undefined;
    let sentOnce = false;
    for (;;) {
      const left = deadline - Date.now();
      try {
        return await this.host.leaderClient().call('control.call', { method, params, notAfter: deadline - 1000, ...(requestId ? { requestId } : {}) }, { timeoutMs: Math.max(left, 1) });
      } catch (e) {
        const sent = e instanceof RpcError && e.sent;
        sentOnce ||= sent;
        // Only a write that may have gone out is sent again (same id); anything else fails at once.
        const retry = write && sent;
        if (!retry || deadline - Date.now() < 1500) {
          if (write && sentOnce && e instanceof ShoalError && e.code === 'Unavailable') {
            throw unavailable(`${e.message}. The request reached the leader's connection before it failed, so it may have been applied: check (e.g. \`shoal service ls\`, \`shoal node ls\`) before running it again`);
          }
          // The leader this node still believes in did not answer at all (it died, or is cut off):
          // Docker's leaderless message rather than a connection error.
          if (!sentOnce && e instanceof RpcError && e.code === 'Unavailable') throw unavailable(noLeaderMessage(this.host.manager()));
          throw e;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}
