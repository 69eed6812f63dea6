import {
  DEFAULTS, isTerminal, newId, taskStateRank,
  type Network, type Node, type NetworkAttachment, type PortConfig, type Service, type Task,
} from '@shoal/api';
import type { MemoryStore, StoreEvent, Tx } from '@shoal/store';
import { AddressPool, IdAllocator, SubnetAllocator, parseCidr } from './ipam.js';
import { PortAllocator } from './ports.js';

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
  /** Delay before retrying a failed write (ms, default 1000). */
  retryMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface Held {
  networkId: string;
  /** `ip/bits`. */
  addr: string;
}

const RUNNING = taskStateRank('running');
const ASSIGNED = taskStateRank('assigned');

/** Published ingress-mode ports make a service reachable on every node through the ingress network. */
const publishesIngress = (s: Service | undefined) => (s?.spec.endpoint?.ports ?? []).some((p) => p.publishMode === 'ingress');

/**
 * The allocator (SwarmKit `manager/allocator`, behaviour only): runs before the scheduler and
 * moves tasks NEW → PENDING once their network resources exist.
 *
 * - Networks: overlay networks (and any with `spec.subnet`) get `ipam` {subnet, gateway} — the
 *   explicit subnet, or the next /24 of 10.0.0.0/8 — and overlay ones a VXLAN ID (4097+). The
 *   `ingress` network (10.255.0.0/16) is created on start if the store has none.
 * - Services: ingress-mode published ports are allocated cluster-wide (0 → a port from
 *   30000–32767, kept across updates); in `vip` endpoint mode a VIP per attached network (the
 *   ingress network too when ingress ports are published). Written to `service.endpoint`.
 * - Tasks: an address per attached network with a subnet, the service endpoint copied in, then
 *   status PENDING. A task that cannot be allocated stays NEW with `status.err` saying why
 *   (port in use, network not found, subnet full).
 * - Addresses are released when a task's observed state is terminal, when it is deleted, or when
 *   it is being shut down and either never reached a node or its node is Down (a dead node never
 *   reports back) — so a node crash leaks nothing. Service ports and VIPs are released on delete,
 *   network subnets and VNIs when the network is deleted.
 * - All state is in memory and rebuilt from the store on start (and on snapshot restore).
 */
export class Allocator {
  private subnets!: SubnetAllocator;
  private vnis!: IdAllocator;
  private ports!: PortAllocator;
  private pools = new Map<string, AddressPool>();
  private taskAddrs = new Map<string, Held[]>();
  private vips = new Map<string, Held[]>();
  private vipPool!: AddressPool;
  private nodeSubnets!: SubnetAllocator;
  /** Nodes that have no overlay subnet yet. */
  private pendingNodes = new Set<string>();
  private downNodes = new Set<string>();
  private newTasks = new Set<string>();
  private dirtyServices = new Set<string>();
  /** Service ID → why its endpoint cannot be allocated. */
  private blocked = new Map<string, string>();
  private networkErrors = new Map<string, string>();
  private undo: (() => void)[] = [];
  private dirty = false;
  private stopped = true;
  private unwatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly o: Required<Omit<AllocatorOptions, 'log'>>;
  private readonly log: NonNullable<AllocatorOptions['log']>;

  constructor(private readonly store: MemoryStore, opts: AllocatorOptions = {}) {
    this.o = {
      defaultAddrPool: opts.defaultAddrPool ?? '10.0.0.0/8',
      subnetSize: opts.subnetSize ?? 24,
      ingressSubnet: opts.ingressSubnet ?? '10.255.0.0/16',
      portRange: opts.portRange ?? [30000, 32767],
      overlayCidr: opts.overlayCidr ?? DEFAULTS.overlay.clusterCidr,
      vipCidr: opts.vipCidr ?? DEFAULTS.overlay.vipCidr,
      maxBatch: opts.maxBatch ?? 500,
      debounceMs: opts.debounceMs ?? 5,
      retryMs: opts.retryMs ?? 1000,
    };
    this.log = opts.log ?? (() => {});
  }

  /** Rebuilds allocation state from the store, subscribes, and allocates what is pending. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unwatch = this.store.watch((ev) => this.onEvent(ev));
    this.rebuild();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Runs an allocation pass now (serialised with the automatic ones). */
  tick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          try {
            await this.pass();
          } catch (e) {
            // A bug must not take the manager down; the next relevant commit retries.
            this.log('allocator: pass failed', { error: (e as Error).stack ?? String(e) });
          }
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Free addresses left on a network (undefined when it has no subnet); for tests and metrics. */
  freeAddresses(networkId: string): number | undefined {
    return this.pools.get(networkId)?.free;
  }

  /** Free addresses left in the VIP range; for tests and metrics. */
  freeVips(): number {
    return this.vipPool.free;
  }

  // ---- state from the store ----

  private rebuild(): void {
    this.subnets = new SubnetAllocator(this.o.defaultAddrPool, this.o.subnetSize, (id) => this.store.view((tx) => tx.get('networks', id))?.spec.name ?? id);
    this.vnis = new IdAllocator();
    this.ports = new PortAllocator(this.o.portRange, (id) => this.store.view((tx) => tx.get('services', id))?.spec.name ?? id);
    this.vipPool = new AddressPool(this.o.vipCidr);
    this.nodeSubnets = new SubnetAllocator(this.o.overlayCidr, 24);
    // The first /24 stays unused, so node subnets read 10.97.1.0/24, 10.97.2.0/24, …
    this.nodeSubnets.reserve(this.o.overlayCidr.replace(/\/\d+$/, '/24'), '');
    this.pendingNodes.clear();
    this.pools.clear();
    this.taskAddrs.clear();
    this.vips.clear();
    this.downNodes.clear();
    this.newTasks.clear();
    this.dirtyServices.clear();
    this.blocked.clear();
    this.store.view((tx) => {
      for (const n of tx.list('networks')) {
        if (!n.ipam) continue;
        try {
          this.subnets.reserve(n.ipam.subnet, n.id);
          this.pools.set(n.id, new AddressPool(n.ipam.subnet));
        } catch (e) {
          this.log('allocator: network subnet not restored', { network: n.spec.name, error: (e as Error).message });
        }
        if (n.vni !== undefined) this.vnis.reserve(n.vni, n.id);
      }
      for (const [cidr, owner] of [[this.o.overlayCidr, OVERLAY_OWNER], [this.o.vipCidr, VIP_OWNER]] as const) {
        try {
          this.subnets.reserve(cidr, owner);
        } catch (e) {
          this.log('allocator: a network overlaps the overlay ranges', { error: (e as Error).message });
        }
      }
      for (const n of tx.list('nodes')) {
        if (n.status.state === 'down') this.downNodes.add(n.id);
        if (!n.overlay) this.pendingNodes.add(n.id);
        else {
          try {
            this.nodeSubnets.reserve(n.overlay.subnet, n.id);
          } catch (e) {
            this.log('allocator: node subnet not restored', { node: n.id, error: (e as Error).message });
          }
        }
      }
      for (const s of tx.list('services')) {
        this.dirtyServices.add(s.id);
        if (!s.endpoint) continue;
        const clashes = this.ports.reserve(s.id, s.endpoint.ports);
        if (clashes.length) this.log('allocator: published port held twice', { service: s.spec.name, ports: clashes });
        const held: Held[] = [];
        for (const v of s.endpoint.virtualIps) {
          if (this.vipPool.reserve(v.addr, `vip:${s.id}`)) held.push({ networkId: v.networkId, addr: v.addr });
        }
        this.vips.set(s.id, held);
      }
      for (const t of tx.list('tasks')) {
        if (this.holdsAddresses(t)) {
          const held: Held[] = [];
          for (const a of t.networks) {
            for (const addr of a.addresses) if (this.pools.get(a.networkId)?.reserve(addr, t.id)) held.push({ networkId: a.networkId, addr });
          }
          if (held.length) this.taskAddrs.set(t.id, held);
        }
        if (t.status.state === 'new' && taskStateRank(t.desiredState) <= RUNNING) this.newTasks.add(t.id);
      }
    });
    this.dirty = true;
    this.schedule();
  }

  private holdsAddresses(t: Task): boolean {
    if (isTerminal(t.status.state)) return false;
    if (taskStateRank(t.desiredState) > RUNNING) {
      if (taskStateRank(t.status.state) < ASSIGNED) return false;
      if (!t.nodeId || this.downNodes.has(t.nodeId)) return false;
    }
    return true;
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
        if (!this.holdsAddresses(t)) this.releaseTask(t.id);
        if (t.status.state === 'new' && taskStateRank(t.desiredState) <= RUNNING) {
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
          this.releaseService(s.id);
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
        if (ev.kind === 'delete') {
          this.pools.delete(n.id);
          this.subnets.release(n.id);
          if (n.vni !== undefined) this.vnis.release(n.vni, n.id);
        }
        // VIPs and task attachments may have been waiting for this network.
        for (const id of this.store.view((tx) => tx.list('services')).map((s) => s.id)) this.dirtyServices.add(id);
        this.dirty = true;
        return;
      }
      case 'nodes': {
        // A deleted node is as dead as a Down one: its tasks never report again.
        const id = ev.object.id;
        if (ev.kind === 'delete') {
          this.nodeSubnets.release(id);
          this.pendingNodes.delete(id);
        } else if (!(ev.object as Node).overlay && !this.pendingNodes.has(id)) {
          this.pendingNodes.add(id);
          this.dirty = true;
        }
        const down = ev.kind === 'delete' || (ev.object as { status: { state: string } }).status.state === 'down';
        if (down === this.downNodes.has(id)) return;
        if (!down) {
          this.downNodes.delete(id);
          return;
        }
        this.downNodes.add(id);
        for (const t of this.store.view((tx) => tx.tasksByNode(id))) if (!this.holdsAddresses(t)) this.releaseTask(t.id);
        return;
      }
      default:
        return;
    }
  }

  private releaseTask(taskId: string): void {
    const held = this.taskAddrs.get(taskId);
    if (!held) return;
    for (const h of held) this.pools.get(h.networkId)?.release(h.addr, taskId);
    this.taskAddrs.delete(taskId);
    // Tasks waiting for an address on a full subnet may go ahead now.
    if (this.newTasks.size > 0) this.dirty = true;
  }

  private releaseService(serviceId: string): void {
    this.ports.release(serviceId);
    for (const h of this.vips.get(serviceId) ?? []) this.vipPool.release(h.addr, `vip:${serviceId}`);
    this.vips.delete(serviceId);
    this.blocked.delete(serviceId);
    // Services that wanted one of its ports may go ahead now.
    for (const id of this.blockedIds()) this.dirtyServices.add(id);
  }

  private blockedIds(): string[] {
    return [...this.blocked.keys()];
  }

  // ---- allocation passes ----

  private schedule(): void {
    if (this.stopped || !this.dirty || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, this.o.debounceMs);
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    this.dirty = false;
    const services = [...this.dirtyServices];
    this.dirtyServices.clear();
    const nodes = [...this.pendingNodes];
    this.pendingNodes.clear();
    const ok = await this.transact((tx) => {
      for (const id of nodes) {
        const n = tx.get('nodes', id);
        if (n && !n.overlay && this.allocateNode(n)) tx.update('nodes', n);
      }
      this.ensureIngress(tx);
      // Explicit subnets first, so a pool pick in the same pass cannot take them.
      const nets = tx.list('networks').sort((a, b) => Number(!a.spec.subnet) - Number(!b.spec.subnet));
      for (const n of nets) {
        if (n.ipam || this.pools.has(n.id)) continue;
        if (this.allocateNetwork(n)) tx.update('networks', n);
      }
      for (const id of services) {
        const s = tx.get('services', id);
        if (s) this.allocateService(tx, s);
      }
    });
    if (!ok) {
      for (const id of services) this.dirtyServices.add(id);
      for (const id of nodes) this.pendingNodes.add(id);
    }
    const ids = [...this.newTasks];
    for (let i = 0; i < ids.length && !this.stopped; i += this.o.maxBatch) {
      const chunk = ids.slice(i, i + this.o.maxBatch);
      await this.transact((tx) => {
        const now = new Date().toISOString();
        const ingress = this.ingressNetwork(tx);
        for (const id of chunk) this.allocateTask(tx, id, ingress, now);
      });
    }
  }

  /**
   * Runs `fn` in a store transaction. In-memory allocations made by `fn` are journalled in
   * `this.undo` and rolled back when an attempt is retried or the write fails.
   */
  private async transact(fn: (tx: Tx) => void): Promise<boolean> {
    const rollback = () => {
      const ops = this.undo;
      this.undo = [];
      for (let i = ops.length - 1; i >= 0; i--) ops[i]!();
    };
    try {
      await this.store.update((tx) => {
        rollback();
        fn(tx);
      });
      this.undo = [];
      return true;
    } catch (e) {
      rollback();
      this.log('allocator: write failed; will retry', { error: (e as Error).message });
      if (!this.stopped) setTimeout(() => { this.dirty = true; this.schedule(); }, this.o.retryMs);
      return false;
    }
  }

  /** Gives node `n` a /24 of the overlay CIDR, in place. Returns false when the range is full (logged). */
  private allocateNode(n: Node): boolean {
    let subnet: string;
    try {
      subnet = this.nodeSubnets.allocate(n.id);
    } catch (e) {
      this.log('allocator: no overlay subnet for node', { node: n.id, error: (e as Error).message });
      return false;
    }
    this.undo.push(() => this.nodeSubnets.release(n.id));
    n.overlay = { subnet, vtepMac: vtepMac(subnet) };
    return true;
  }

  private ensureIngress(tx: Tx): void {
    const nets = tx.list('networks');
    if (nets.some((n) => n.spec.ingress)) return;
    if (nets.some((n) => n.spec.name === 'ingress')) {
      this.log('allocator: a network named ingress exists but is not the ingress network; not creating one');
      return;
    }
    const now = new Date().toISOString();
    const net: Network = {
      id: newId(), meta: { version: 0, createdAt: now, updatedAt: now },
      spec: { name: 'ingress', labels: {}, driver: 'overlay', attachable: false, ingress: true, subnet: this.o.ingressSubnet },
    };
    if (!this.allocateNetwork(net)) {
      delete net.spec.subnet;
      if (!this.allocateNetwork(net)) return;
    }
    tx.create('networks', net);
  }

  /** Gives `n` a subnet (and a VNI if overlay), in place. Returns false when nothing was allocated. */
  private allocateNetwork(n: Network): boolean {
    if (n.spec.driver !== 'overlay' && !n.spec.subnet) return false;
    let subnet: string;
    try {
      subnet = n.spec.subnet ? this.subnets.reserve(n.spec.subnet, n.id) : this.subnets.allocate(n.id);
    } catch (e) {
      const msg = (e as Error).message;
      if (this.networkErrors.get(n.id) !== msg) this.log('allocator: cannot allocate network', { network: n.spec.name, error: msg });
      this.networkErrors.set(n.id, msg);
      return false;
    }
    this.networkErrors.delete(n.id);
    const pool = new AddressPool(subnet);
    this.pools.set(n.id, pool);
    this.undo.push(() => {
      this.subnets.release(n.id);
      this.pools.delete(n.id);
    });
    n.ipam = { subnet, gateway: pool.gateway };
    if (n.spec.driver === 'overlay') {
      const vni = this.vnis.allocate(n.id);
      this.undo.push(() => this.vnis.release(vni, n.id));
      n.vni = vni;
    }
    return true;
  }

  private resolveNetwork(tx: Tx, target: string): Network | undefined {
    return tx.get('networks', target) ?? tx.byName('networks', target);
  }

  private ingressNetwork(tx: Tx): Network | undefined {
    return tx.list('networks').find((n) => n.spec.ingress);
  }

  private allocateService(tx: Tx, s: Service): void {
    const before = this.ports.heldBy(s.id);
    let ports: PortConfig[];
    try {
      ports = this.ports.assign(s.id, s.spec.endpoint?.ports ?? [], s.endpoint?.ports ?? []);
    } catch (e) {
      this.blocked.set(s.id, (e as Error).message);
      return;
    }
    this.undo.push(() => this.ports.restoreHeld(s.id, before));

    const wantNets: string[] = [];
    if ((s.spec.endpoint?.mode ?? 'vip') === 'vip') {
      if (publishesIngress(s)) {
        const ing = this.ingressNetwork(tx);
        if (ing) wantNets.push(ing.id);
      }
      for (const a of s.spec.task.networks) {
        const n = this.resolveNetwork(tx, a.target);
        if (n && !wantNets.includes(n.id)) wantNets.push(n.id);
      }
    }
    const old = this.vips.get(s.id) ?? [];
    const next: Held[] = [];
    try {
      const pool = this.vipPool;
      for (const netId of wantNets) {
        if (!this.pools.has(netId)) continue;
        const kept = old.find((h) => h.networkId === netId);
        if (kept) {
          next.push(kept);
          continue;
        }
        const ip = pool.allocate(`vip:${s.id}`);
        this.undo.push(() => pool.release(ip, `vip:${s.id}`));
        next.push({ networkId: netId, addr: pool.withPrefix(ip) });
      }
    } catch (e) {
      this.blocked.set(s.id, `no virtual IP for service ${s.spec.name}: ${(e as Error).message}`);
      return;
    }
    for (const h of old) {
      if (next.includes(h)) continue;
      const pool = this.vipPool;
      if (pool.release(h.addr, `vip:${s.id}`)) this.undo.push(() => pool.reserve(h.addr, `vip:${s.id}`));
    }
    this.vips.set(s.id, next);
    this.undo.push(() => this.vips.set(s.id, old));
    const hadBlock = this.blocked.get(s.id);
    this.blocked.delete(s.id);
    if (hadBlock !== undefined) this.undo.push(() => this.blocked.set(s.id, hadBlock));

    const endpoint = { ports, virtualIps: next.map((h) => ({ networkId: h.networkId, addr: h.addr })) };
    const empty = endpoint.ports.length === 0 && endpoint.virtualIps.length === 0;
    if ((empty && !s.endpoint) || JSON.stringify(endpoint) === JSON.stringify(s.endpoint)) return;
    s.endpoint = endpoint;
    tx.update('services', s);
  }

  private allocateTask(tx: Tx, id: string, ingress: Network | undefined, now: string): void {
    const t = tx.get('tasks', id);
    if (!t || t.status.state !== 'new' || taskStateRank(t.desiredState) > RUNNING) return;
    const svc = tx.get('services', t.serviceId);
    if (svc) {
      const why = this.blocked.get(svc.id);
      if (why) return this.setErr(tx, t, why, now);
      if (this.dirtyServices.has(svc.id)) return;
    }
    const nets: Network[] = [];
    if (publishesIngress(svc)) {
      if (!ingress) return;
      nets.push(ingress);
    }
    for (const a of t.spec.networks) {
      const n = this.resolveNetwork(tx, a.target);
      if (!n) return this.setErr(tx, t, `network ${a.target} not found`, now);
      if (!nets.some((x) => x.id === n.id)) nets.push(n);
    }
    const attachments: NetworkAttachment[] = [];
    const held: Held[] = [];
    const giveBack = () => {
      for (const h of held) this.pools.get(h.networkId)?.release(h.addr, t.id);
    };
    for (const n of nets) {
      const pool = this.pools.get(n.id);
      if (!pool) {
        if (n.spec.driver === 'overlay' || n.spec.subnet) {
          giveBack();
          const why = this.networkErrors.get(n.id);
          // Not allocated yet: retried once it is (the network event marks a new pass).
          return why ? this.setErr(tx, t, `network ${n.spec.name}: ${why}`, now) : undefined;
        }
        attachments.push({ networkId: n.id, addresses: [] });
        continue;
      }
      let ip: string;
      try {
        ip = pool.withPrefix(pool.allocate(t.id));
      } catch (e) {
        giveBack();
        return this.setErr(tx, t, `network ${n.spec.name}: ${(e as Error).message}`, now);
      }
      held.push({ networkId: n.id, addr: ip });
      attachments.push({ networkId: n.id, addresses: [ip] });
    }
    if (held.length) {
      this.taskAddrs.set(t.id, held);
      this.undo.push(() => {
        giveBack();
        if (this.taskAddrs.get(t.id) === held) this.taskAddrs.delete(t.id);
      });
    }
    t.networks = attachments;
    if (svc?.endpoint) t.endpoint = structuredClone(svc.endpoint);
    t.status = { state: 'pending', timestamp: now, message: 'pending task scheduling' };
    tx.update('tasks', t);
  }

  private setErr(tx: Tx, t: Task, err: string, now: string): void {
    if (t.status.err === err) return;
    t.status = { ...t.status, timestamp: now, err };
    tx.update('tasks', t);
  }
}

const OVERLAY_OWNER = '(the cluster overlay)';
const VIP_OWNER = '(the service VIP range)';

/** VXLAN endpoint MAC of a node subnet: `02:00:` + the subnet's 4 bytes (overlay-recipe §0). */
export function vtepMac(subnet: string): string {
  const { base } = parseCidr(subnet);
  return ['02', '00', ...[base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
