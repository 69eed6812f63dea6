import { isTerminal, taskStateRank, type Network, type NetworkAttachment, type Task } from '@shoal/api';
import type { Tx } from '@shoal/store';
import { publishesIngress, resolveNetwork, type EndpointAllocator, type Held } from './endpoint-allocator.js';
import type { UndoJournal } from './journal.js';
import type { NetworkAllocator } from './network-allocator.js';

const RUNNING = taskStateRank('running');
const ASSIGNED = taskStateRank('assigned');

/** A task the allocator must allocate: state NEW, desired state at most RUNNING. */
export const wantsAllocation = (t: Task): boolean => t.status.state === 'new' && taskStateRank(t.desiredState) <= RUNNING;

/**
 * Task allocation (SwarmKit `manager/allocator/network.go` allocateTask): an address per attached
 * network that has a subnet (the ingress network first when the service publishes ingress ports),
 * the service endpoint copied in, then status PENDING. A task that cannot be allocated stays NEW
 * with `status.err` saying why (port in use, network not found, subnet full).
 *
 * Addresses are held until {@link holdsAddresses} turns false for the task (or it is deleted), so a
 * node crash leaks nothing. In-memory allocations inside a store transaction are recorded in the
 * shared {@link UndoJournal}.
 */
export class TaskAllocator {
  private addrs = new Map<string, Held[]>();

  /**
   * @param isDown whether a node is Down (or deleted): its tasks never report back.
   * @param waitsForEndpoint whether a service's endpoint is due to be (re)allocated first.
   */
  constructor(
    private readonly networks: NetworkAllocator,
    private readonly endpoints: EndpointAllocator,
    private readonly journal: UndoJournal,
    private readonly isDown: (nodeId: string) => boolean,
    private readonly waitsForEndpoint: (serviceId: string) => boolean,
  ) {}

  /**
   * Whether `t`'s addresses are still in use: not when its observed state is terminal, nor when it
   * is being shut down and either never reached a node or its node is Down.
   */
  holdsAddresses(t: Task): boolean {
    if (isTerminal(t.status.state)) return false;
    if (taskStateRank(t.desiredState) > RUNNING) {
      if (taskStateRank(t.status.state) < ASSIGNED) return false;
      if (!t.nodeId || this.isDown(t.nodeId)) return false;
    }
    return true;
  }

  /** Forgets everything and re-reserves the addresses of the store's tasks that still hold theirs. */
  restore(tx: Pick<Tx, 'list'>): void {
    this.addrs.clear();
    for (const t of tx.list('tasks')) {
      if (!this.holdsAddresses(t)) continue;
      const held: Held[] = [];
      for (const a of t.networks) {
        for (const addr of a.addresses) if (this.networks.pools.get(a.networkId)?.reserve(addr, t.id)) held.push({ networkId: a.networkId, addr });
      }
      if (held.length) this.addrs.set(t.id, held);
    }
  }

  /** Frees task `taskId`'s addresses; returns whether it held any. */
  release(taskId: string): boolean {
    const held = this.addrs.get(taskId);
    if (!held) return false;
    for (const h of held) this.networks.pools.get(h.networkId)?.release(h.addr, taskId);
    this.addrs.delete(taskId);
    return true;
  }

  /**
   * Allocates task `id` in `tx` (journalled) if it still wants it: addresses, endpoint, PENDING —
   * or `status.err` when it cannot be, or nothing when it must wait (its service's endpoint or a
   * network is not allocated yet; a later pass retries).
   */
  allocate(tx: Tx, id: string, ingress: Network | undefined, now: string): void {
    const t = tx.get('tasks', id);
    if (!t || !wantsAllocation(t)) return;
    const svc = tx.get('services', t.serviceId);
    if (svc) {
      const why = this.endpoints.blocked.get(svc.id);
      if (why) return setErr(tx, t, why, now);
      if (this.waitsForEndpoint(svc.id)) return;
    }
    const nets: Network[] = [];
    if (publishesIngress(svc)) {
      if (!ingress) return;
      nets.push(ingress);
    }
    for (const a of t.spec.networks) {
      const n = resolveNetwork(tx, a.target);
      if (!n) return setErr(tx, t, `network ${a.target} not found`, now);
      if (!nets.some((x) => x.id === n.id)) nets.push(n);
    }
    const attachments: NetworkAttachment[] = [];
    const held: Held[] = [];
    const giveBack = () => {
      for (const h of held) this.networks.pools.get(h.networkId)?.release(h.addr, t.id);
    };
    for (const n of nets) {
      const pool = this.networks.pools.get(n.id);
      if (!pool) {
        if (n.spec.driver === 'overlay' || n.spec.subnet) {
          giveBack();
          const why = this.networks.errors.get(n.id);
          // Not allocated yet: retried once it is (the network event marks a new pass).
          return why ? setErr(tx, t, `network ${n.spec.name}: ${why}`, now) : undefined;
        }
        attachments.push({ networkId: n.id, addresses: [] });
        continue;
      }
      let ip: string;
      try {
        ip = pool.withPrefix(pool.allocate(t.id));
      } catch (e) {
        giveBack();
        return setErr(tx, t, `network ${n.spec.name}: ${(e as Error).message}`, now);
      }
      held.push({ networkId: n.id, addr: ip });
      attachments.push({ networkId: n.id, addresses: [ip] });
    }
    if (held.length) {
      this.addrs.set(t.id, held);
      this.journal.record(() => {
        giveBack();
        if (this.addrs.get(t.id) === held) this.addrs.delete(t.id);
      });
    }
    t.networks = attachments;
    if (svc?.endpoint) t.endpoint = structuredClone(svc.endpoint);
    t.status = { state: 'pending', timestamp: now, message: 'pending task scheduling' };
    tx.update('tasks', t);
  }
}

/** Records why `t` cannot be allocated (written only when the reason changes). */
function setErr(tx: Tx, t: Task, err: string, now: string): void {
  if (t.status.err === err) return;
  t.status = { ...t.status, timestamp: now, err };
  tx.update('tasks', t);
}
