import { DEFAULTS, type Network, type Node, type Service, type Task } from '@shoal/api';
import { childLogger, errMessage, isoNow, nopLogger, ReconcileLoop, systemClock, type Clock, type Logger, type Metrics } from '@shoal/runtime';
import type { MemoryStore, StoreEvent, Tx } from '@shoal/store';
import { EndpointAllocator, ingressNetwork } from './endpoint-allocator.js';
import { UndoJournal } from './journal.js';
import { NetworkAllocator } from './network-allocator.js';
import { TaskAllocator, wantsAllocation } from './task-allocator.js';

export { vtepMac } from './network-allocator.js';

export interface AllocatorOptions {
  /** Pool that overlay subnets without an explicit subnet come from (default 10.0.0.0/8). */
  defaultAddrPool?: string;
  /** Prefix length of pool subnets (default 24). */
  subnetSize?: number;
  /** Subnet of the `ingress` network created at start when none exists (default 10.255.0.0/16). */
  ingressSubnet?: string;
  /** Dynamic published-port range (default 30000–32767). */
  portRange?: readonly [number, number];
  /**
   * Cluster overlay CIDR that node subnets (/24 each, from the second /24 on) come from
   * (default `DEFAULTS.overlay.clusterCidr`, 10.97.0.0/16). Network subnets may not overlap it.
   */
  overlayCidr?: string;
  /** Range service VIPs come from (default `DEFAULTS.overlay.vipCidr`, 10.96.0.0/16). Network subnets may not overlap it. */
  vipCidr?: string;
  /** Tasks per store transaction (default 500). */
  maxBatch?: number;
  /** Delay before a pass after a relevant commit (ms, default 5). */
  debounceMs?: number;
  /** Delay before retrying a failed write (ms, default 1000; doubles on each further failure, up to 30×). */
  retryMs?: number;
  /** Time source for the debounce, retries and status timestamps (default {@link systemClock}). */
  clock?: Clock;
  /** Default {@link nopLogger}; lines carry `component: 'allocator'`. */
  logger?: Logger;
  /** Pass durations go to `shoal_reconcile_pass_duration_seconds{loop="allocator"}`. Default: nowhere. */
  metrics?: Metrics;
}

/**
 * The allocator (SwarmKit `manager/allocator`, behaviour only): runs before the scheduler and
 * moves tasks NEW → PENDING once their network resources exist. This class is the event loop; the
 * work is done by three allocators sharing one {@link UndoJournal}:
 *
 * - {@link NetworkAllocator} (`network-allocator.ts`): overlay networks (and any with
 *   `spec.subnet`) get `ipam` {subnet, gateway} — the explicit subnet, or the next /24 of
 *   10.0.0.0/8 — and overlay ones a VXLAN ID (4097+); nodes get a /24 of the overlay CIDR. The
 *   `ingress` network (10.255.0.0/16) is created on start if the store has none.
 * - {@link EndpointAllocator} (`endpoint-allocator.ts`): ingress-mode published ports
 *   cluster-wide (0 → a port from 30000–32767, kept across updates); in `vip` endpoint mode a VIP
 *   per attached network (the ingress network too when ingress ports are published). Written to
 *   `service.endpoint`.
 * - {@link TaskAllocator} (`task-allocator.ts`): an address per attached network with a subnet,
 *   the service endpoint copied in, then status PENDING. A task that cannot be allocated stays NEW
 *   with `status.err` saying why (port in use, network not found, subnet full).
 *
 * Addresses are released when a task's observed state is terminal, when it is deleted, or when it
 * is being shut down and either never reached a node or its node is Down (a dead node never
 * reports back) — so a node crash leaks nothing. Service ports and VIPs are released on delete,
 * network subnets and VNIs when the network is deleted.
 *
 * All state is in memory and rebuilt from the store on start (and on snapshot restore). Passes run
 * on the runtime's {@link ReconcileLoop}: `debounceMs` after the first relevant commit; a pass
 * whose write failed is retried after `retryMs`.
 */
export class Allocator {
  private readonly journal = new UndoJournal();
  private readonly networks: NetworkAllocator;
  private readonly endpoints: EndpointAllocator;
  private readonly tasks: TaskAllocator;
  /** Nodes that have no overlay subnet yet. */
  private pendingNodes = new Set<string>();
  private downNodes = new Set<string>();
  private newTasks = new Set<string>();
  /** Services whose endpoint must be (re)allocated before their tasks are. */
  private dirtyServices = new Set<string>();
  private dirty = false;
  private stopped = true;
  private unwatch: (() => void) | undefined;
  private readonly maxBatch: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly loop: ReconcileLoop;

  constructor(private readonly store: MemoryStore, opts: AllocatorOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.clock = opts.clock ?? systemClock;
    this.log = childLogger(opts.logger ?? nopLogger, { component: 'allocator' });
    const retryMs = opts.retryMs ?? 1000;
    this.loop = new ReconcileLoop(() => this.pass(), {
      name: 'allocator',
      debounceMs: opts.debounceMs ?? 5,
      backoff: { initialMs: retryMs, maxMs: 30 * retryMs },
      clock: this.clock,
      logger: this.log,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    });
    this.networks = new NetworkAllocator(
      {
        defaultAddrPool: opts.defaultAddrPool ?? '10.0.0.0/8',
        subnetSize: opts.subnetSize ?? 24,
        ingressSubnet: opts.ingressSubnet ?? '10.255.0.0/16',
        overlayCidr: opts.overlayCidr ?? DEFAULTS.overlay.clusterCidr,
        vipCidr: opts.vipCidr ?? DEFAULTS.overlay.vipCidr,
      },
      this.journal, this.log,
      (id) => this.store.view((tx) => tx.get('networks', id))?.spec.name ?? id,
    );
    this.endpoints = new EndpointAllocator(
      { portRange: opts.portRange ?? [30000, 32767], vipCidr: opts.vipCidr ?? DEFAULTS.overlay.vipCidr },
      this.networks, this.journal, this.log,
      (id) => this.store.view((tx) => tx.get('services', id))?.spec.name ?? id,
    );
    this.tasks = new TaskAllocator(this.networks, this.endpoints, this.journal, (id) => this.downNodes.has(id), (id) => this.dirtyServices.has(id));
  }

  /** Rebuilds allocation state from the store, subscribes, and allocates what is pending. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop.start();
    this.unwatch = this.store.watch((ev) => this.onEvent(ev));
    this.rebuild();
  }

  /** Stops watching; resolves once an in-flight pass has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    this.unwatch = undefined;
    await this.loop.stop();
  }

  /** Runs an allocation pass now, skipping the debounce (serialised with the automatic ones); resolves when idle. */
  tick(): Promise<void> {
    return this.loop.runNow();
  }

  /** Resolves once no pass is running or due on the next turn of the event loop (tests; see {@link ReconcileLoop.idle}). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Free addresses left on a network (undefined when it has no subnet); for tests and metrics. */
  freeAddresses(networkId: string): number | undefined {
    return this.networks.pools.get(networkId)?.free;
  }

  /** Free addresses left in the VIP range; for tests and metrics. */
  freeVips(): number {
    return this.endpoints.freeVips;
  }

  // ---- state from the store ----

  private rebuild(): void {
    // Memory is rebuilt from the store: inverses of a write still in flight would now undo
    // allocations of the old state in the new one.
    this.journal.commit();
    this.pendingNodes.clear();
    this.downNodes.clear();
    this.newTasks.clear();
    this.dirtyServices.clear();
    this.store.view((tx) => {
      for (const n of tx.list('nodes')) if (n.status.state === 'down') this.downNodes.add(n.id);
      for (const id of this.networks.restore(tx)) this.pendingNodes.add(id);
      this.endpoints.restore(tx);
      for (const s of tx.list('services')) this.dirtyServices.add(s.id);
      this.tasks.restore(tx);
      for (const t of tx.list('tasks')) if (wantsAllocation(t)) this.newTasks.add(t.id);
    });
    this.dirty = true;
    this.schedule();
  }

  private onEvent(ev: StoreEvent): void {
    if (ev.kind === 'commit') return this.schedule();
    if (ev.kind === 'restore') return this.rebuild();
    switch (ev.table) {
      case 'tasks': {
        const t = ev.object as Task;
        if (ev.kind === 'delete') {
          this.releaseTask(t.id);
          this.newTasks.delete(t.id);
          return;
        }
        if (!this.tasks.holdsAddresses(t)) this.releaseTask(t.id);
        if (wantsAllocation(t)) {
          this.newTasks.add(t.id);
          this.dirty = true;
        } else {
          this.newTasks.delete(t.id);
        }
        return;
      }
      case 'services': {
        const s = ev.object as Service;
        const old = ev.old as Service | undefined;
        if (ev.kind === 'delete') {
          // Services that wanted one of its ports may go ahead now.
          for (const id of this.endpoints.release(s.id)) this.dirtyServices.add(id);
          this.dirtyServices.delete(s.id);
        } else if (old && JSON.stringify(old.spec) === JSON.stringify(s.spec)) {
          return; // only observed fields changed (e.g. the endpoint this allocator wrote)
        } else {
          this.dirtyServices.add(s.id);
        }
        this.dirty = true;
        return;
      }
      case 'networks': {
        const n = ev.object as Network;
        if (ev.kind === 'delete') this.networks.releaseNetwork(n);
        // VIPs and task attachments may have been waiting for this network.
        for (const id of this.store.view((tx) => tx.list('services')).map((s) => s.id)) this.dirtyServices.add(id);
        this.dirty = true;
        return;
      }
      case 'nodes': {
        // A deleted node is as dead as a Down one: its tasks never report again.
        const id = ev.object.id;
        if (ev.kind === 'delete') {
          this.networks.releaseNode(id);
          this.pendingNodes.delete(id);
        } else if (!(ev.object as Node).overlay && !this.pendingNodes.has(id)) {
          this.pendingNodes.add(id);
          this.dirty = true;
        }
        const down = ev.kind === 'delete' || (ev.object as Node).status.state === 'down';
        if (down === this.downNodes.has(id)) return;
        if (!down) {
          this.downNodes.delete(id);
          return;
        }
        this.downNodes.add(id);
        for (const t of this.store.view((tx) => tx.tasksByNode(id))) if (!this.tasks.holdsAddresses(t)) this.releaseTask(t.id);
        return;
      }
      default:
        return;
    }
  }

  private releaseTask(taskId: string): void {
    // Tasks waiting for an address on a full subnet may go ahead now.
    if (this.tasks.release(taskId) && this.newTasks.size > 0) this.dirty = true;
  }

  // ---- allocation passes ----

  /** Asks the loop for a pass when a relevant event arrived (the kick is debounced there). */
  private schedule(): void {
    if (this.stopped || !this.dirty) return;
    this.loop.kick();
  }

  /**
   * One pass: nodes, the ingress network, networks and dirty service endpoints in one transaction,
   * then NEW tasks in transactions of `maxBatch`. Throws (after trying every transaction) when a
   * write failed, so the loop retries; work not done is kept for the retry.
   */
  private async pass(): Promise<void> {
    if (this.stopped) return;
    this.dirty = false;
    const services = [...this.dirtyServices];
    this.dirtyServices.clear();
    const nodes = [...this.pendingNodes];
    this.pendingNodes.clear();
    let failed = await this.transact((tx) => {
      for (const id of nodes) {
        const n = tx.get('nodes', id);
        if (n && !n.overlay && this.networks.allocateNode(n)) tx.update('nodes', n);
      }
      this.networks.ensureIngress(tx, isoNow(this.clock));
      // Explicit subnets first, so a pool pick in the same pass cannot take them.
      const nets = tx.list('networks').sort((a, b) => Number(!a.spec.subnet) - Number(!b.spec.subnet));
      for (const n of nets) {
        if (n.ipam || this.networks.has(n.id)) continue;
        if (this.networks.allocateNetwork(n)) tx.update('networks', n);
      }
      for (const id of services) {
        const s = tx.get('services', id);
        if (s) this.endpoints.allocate(tx, s);
      }
    });
    if (failed !== undefined) {
      for (const id of services) this.dirtyServices.add(id);
      for (const id of nodes) this.pendingNodes.add(id);
    }
    const ids = [...this.newTasks];
    for (let i = 0; i < ids.length && !this.stopped; i += this.maxBatch) {
      const chunk = ids.slice(i, i + this.maxBatch);
      failed = (await this.transact((tx) => {
        const now = isoNow(this.clock);
        const ingress = ingressNetwork(tx);
        for (const id of chunk) this.tasks.allocate(tx, id, ingress, now);
      })) ?? failed;
    }
    if (failed !== undefined) {
      this.dirty = true;
      throw new Error(`allocator write failed: ${errMessage(failed)}`);
    }
  }

  /**
   * Runs `fn` in a store transaction; returns the error when the write failed (undefined when it
   * committed). In-memory allocations `fn` makes are recorded in the {@link UndoJournal} and rolled
   * back when the write fails, or kept when it commits.
   */
  private async transact(fn: (tx: Tx) => void): Promise<unknown> {
    try {
      await this.store.update((tx) => {
        // `store.update` calls this function again for every retry (the entry conflicted with a
        // concurrent commit and was applied as a no-op everywhere), so the journal is replayed
        // (rolled back) at the start of *every* attempt, not only after a failure. That is correct:
        // - on the first attempt the journal is empty (the previous transact committed or rolled
        //   back), so the replay does nothing;
        // - on a retry the journal holds exactly what the discarded attempt allocated in memory —
        //   its writes never reached the store — so undoing it makes memory match the store again
        //   before `fn` decides afresh against the new state;
        // - store events applied between attempts concern other commits; the inverses release by
        //   owner (task/service/network ID) and tolerate an owner those events already dropped.
        this.journal.rollback();
        fn(tx);
      });
      this.journal.commit();
      return undefined;
    } catch (e) {
      // Logged by the loop when the pass throws for it.
      this.journal.rollback();
      return e;
    }
  }
}
