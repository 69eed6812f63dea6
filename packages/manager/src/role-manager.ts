/**
 * The role manager (SwarmKit `manager/role_manager.go`): a leader-only reconciler that carries out
 * demotions and removals in the Raft group, so that the store's desired roles and the group's
 * membership agree. Rules, checked on every change to a node and every few seconds:
 *
 *   1. desired worker, role manager, a Raft member on that node → remove the member (the leader
 *      hands leadership over first when it is the one being demoted; the next leader finishes);
 *      refused, and retried later, while removing it would lose quorum.
 *   2. desired worker, role manager, no Raft member → record the node as a worker (its member is
 *      gone: removed by rule 1, or shut out by a force-new-cluster).
 *   3. a node deleted from the store while a Raft member runs on it → remove the member.
 *
 * Promotion needs nothing here: the node gets a manager certificate at its next renewal (its
 * desired role), starts its manager and asks to join the Raft group under a fresh Raft ID
 * (`Manager.joinRaft`), which records it as a manager.
 *
 * Invariant: a Raft member is removed only for the node it belongs to (members are found by the
 * node ID recorded with their membership, never by name or by guessing).
 */
import type { Node } from '@shoal/api';
import type { MemoryStore } from '@shoal/store';
import type { ControlApi } from '@shoal/controlapi';
import type { Member, RaftNode } from '@shoal/replication';
import { ReconcileLoop, systemClock, type Clock, type Logger, type TimerHandle } from '@shoal/runtime';

/** How often unfinished reconciliations are retried, ms (SwarmKit: 5 s). */
export const ROLE_RECONCILE_INTERVAL_MS = 2_000;

export interface RoleManagerDeps {
  store: MemoryStore;
  control: ControlApi;
  raft: RaftNode;
  log: Logger;
  /** Time source of the periodic retry and the loop's backoff (default {@link systemClock}). */
  clock?: Clock;
  /** Why removing `member` now would lose quorum, or undefined (Manager.removalProblem). */
  removalProblem(nodeId: string): string | undefined;
  /** A member was removed: tell its node at once (best effort; it also learns through Raft). */
  onRemoved?(member: Member): void;
}

/**
 * The role manager. Runs its passes on the runtime's {@link ReconcileLoop} (one pass at a time; a
 * change during a pass makes one more pass follow it; a failed pass is retried with backoff), kicked
 * by every change to the nodes table and every {@link ROLE_RECONCILE_INTERVAL_MS} (unfinished work:
 * a removal refused for quorum, a leadership hand-over under way).
 */
export class RoleManager {
  private unwatch: (() => void) | undefined;
  private timer: TimerHandle | undefined;
  private readonly clock: Clock;
  private readonly loop: ReconcileLoop;

  constructor(private readonly d: RoleManagerDeps) {
    this.clock = d.clock ?? systemClock;
    this.loop = new ReconcileLoop(() => this.pass(), { name: 'role manager', clock: this.clock, logger: d.log });
  }

  start(): void {
    this.loop.start();
    this.unwatch = this.d.store.watch((ev) => {
      if (ev.kind === 'commit' || ev.kind === 'restore' || ev.table === 'nodes') this.loop.kick();
    });
    this.tick();
    this.loop.kick();
  }

  /**
   * Stops watching and retrying. Does not wait for a running pass (it may be waiting for a
   * leadership hand-over or a commit that this leader, stepping down, will never see); the pass
   * checks that the loop still runs before each step.
   */
  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    void this.loop.stop();
  }

  /** Resolves once no pass is running or queued (tests). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Kicks a pass every interval while started. */
  private tick(): void {
    this.timer = this.clock.setTimeout(() => {
      if (!this.loop.isStarted) return;
      this.loop.kick();
      this.tick();
    }, ROLE_RECONCILE_INTERVAL_MS);
  }

  private get stopped(): boolean {
    return !this.loop.isStarted;
  }

  private async pass(): Promise<void> {
    if (!this.d.raft.isLeader()) return;
    const nodes = this.d.store.view((tx) => tx.list('nodes'));
    const byId = new Map(nodes.map((n) => [n.id, n]));
    for (const n of nodes) {
      if (this.stopped || !this.d.raft.isLeader()) return;
      if (n.spec.desiredRole === 'worker' && n.role === 'manager') await this.demote(n);
    }
    // Rule 3: members whose node is gone — once the cluster exists (before `swarm init` wrote its
    // objects no node is known), and never this leader's own (its node is written by the init).
    if (!this.d.store.view((tx) => tx.list('clusters').length)) return;
    for (const m of this.d.raft.members()) {
      if (this.stopped || !this.d.raft.isLeader()) return;
      const nodeId = m.nodeId || m.id;
      if (!byId.has(nodeId) && m.id !== this.d.raft.id) await this.removeMember(m, `node ${nodeId} was removed`);
    }
  }

  private async demote(n: Node): Promise<void> {
    const member = this.memberOf(n.id);
    if (!member) {
      // Rule 2.
      await this.d.control.recordWorker(n.id);
      this.d.log.info({ nodeId: n.id }, 'role manager: node demoted to worker');
      return;
    }
    await this.removeMember(member, `node ${n.description?.hostname ?? n.id} was demoted`);
  }

  private memberOf(nodeId: string): Member | undefined {
    return this.d.raft.members().find((m) => (m.nodeId || m.id) === nodeId);
  }

  /** Rule 1 and 3: removes `m` unless that would lose quorum; the leader first hands over. */
  private async removeMember(m: Member, why: string): Promise<void> {
    const nodeId = m.nodeId || m.id;
    const problem = this.d.removalProblem(nodeId);
    if (problem) {
      this.d.log.warn({ nodeId, raftId: m.id, problem }, 'role manager: cannot remove the Raft member yet; retrying');
      return;
    }
    if (m.id === this.d.raft.id) {
      this.d.log.info({ nodeId, why }, 'role manager: this manager is being demoted; handing leadership over');
      await this.d.raft.transferLeadership().catch((e) => this.d.log.warn({ err: String(e) }, 'role manager: leadership transfer failed; retrying'));
      return;
    }
    this.d.log.info({ nodeId, raftId: m.id, why }, 'role manager: removing the Raft member');
    await this.d.raft.removeMember(m.id);
    this.d.onRemoved?.(m);
  }
}
