import { newId, type Network, type Node } from '@shoal/api';
import type { Logger } from '@shoal/runtime';
import type { Tx } from '@shoal/store';
import { AddressPool, IdAllocator, SubnetAllocator, parseCidr } from './ipam.js';
import type { UndoJournal } from './journal.js';

export interface NetworkAllocatorOptions {
  /** Pool overlay subnets without an explicit subnet come from (CIDR). */
  defaultAddrPool: string;
  /** Prefix length of pool subnets. */
  subnetSize: number;
  /** Subnet of the `ingress` network created when none exists (CIDR). */
  ingressSubnet: string;
  /** Cluster overlay CIDR node subnets (/24 each, from the second /24 on) come from. */
  overlayCidr: string;
  /** Service VIP range; network subnets may not overlap it (nor `overlayCidr`). */
  vipCidr: string;
}

const OVERLAY_OWNER = '(the cluster overlay)';
const VIP_OWNER = '(the service VIP range)';

/**
 * Network and node-subnet allocation (SwarmKit `manager/allocator/network.go`, the network half):
 * a subnet and gateway per overlay network (or any network with `spec.subnet`) — the explicit
 * subnet, or the next `subnetSize` block of `defaultAddrPool` — plus a VXLAN ID (4097+) for overlay
 * ones; a /24 of the overlay CIDR (and its VTEP MAC) per node; the `ingress` network when the store
 * has none. Owns the per-network {@link AddressPool}s that VIPs and task addresses are taken from.
 *
 * In-memory only: {@link restore} rebuilds it from the store. Allocations made inside a store
 * transaction are recorded in the shared {@link UndoJournal}.
 */
export class NetworkAllocator {
  private subnets!: SubnetAllocator;
  private vnis!: IdAllocator;
  private nodeSubnets!: SubnetAllocator;
  /** Address pool per allocated network ID. */
  readonly pools = new Map<string, AddressPool>();
  /** Network ID → why it cannot be allocated (logged once per distinct reason). */
  readonly errors = new Map<string, string>();

  /**
   * @param nameOf a network's name for error messages (its ID when unknown).
   */
  constructor(
    private readonly o: NetworkAllocatorOptions,
    private readonly journal: UndoJournal,
    private readonly log: Logger,
    private readonly nameOf: (networkId: string) => string,
  ) {
    this.reset();
  }

  private reset(): void {
    this.subnets = new SubnetAllocator(this.o.defaultAddrPool, this.o.subnetSize, this.nameOf);
    this.vnis = new IdAllocator();
    this.nodeSubnets = new SubnetAllocator(this.o.overlayCidr, 24);
    // The first /24 stays unused, so node subnets read 10.97.1.0/24, 10.97.2.0/24, …
    this.nodeSubnets.reserve(this.o.overlayCidr.replace(/\/\d+$/, '/24'), '');
    this.pools.clear();
  }

  /**
   * Forgets everything and re-reserves what the store records (start, snapshot restore).
   * Returns the IDs of nodes that have no overlay subnet yet.
   */
  restore(tx: Pick<Tx, 'list'>): string[] {
    this.reset();
    for (const n of tx.list('networks')) {
      if (!n.ipam) continue;
      try {
        this.subnets.reserve(n.ipam.subnet, n.id);
        this.pools.set(n.id, new AddressPool(n.ipam.subnet));
      } catch (e) {
        this.log.warn({ network: n.spec.name, err: (e as Error).message }, 'network subnet not restored');
      }
      if (n.vni !== undefined) this.vnis.reserve(n.vni, n.id);
    }
    for (const [cidr, owner] of [[this.o.overlayCidr, OVERLAY_OWNER], [this.o.vipCidr, VIP_OWNER]] as const) {
      try {
        this.subnets.reserve(cidr, owner);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'a network overlaps the overlay ranges');
      }
    }
    const pending: string[] = [];
    for (const n of tx.list('nodes')) {
      if (!n.overlay) pending.push(n.id);
      else {
        try {
          this.nodeSubnets.reserve(n.overlay.subnet, n.id);
        } catch (e) {
          this.log.warn({ nodeId: n.id, err: (e as Error).message }, 'node subnet not restored');
        }
      }
    }
    return pending;
  }

  /** Whether network `id` has a subnet (and so an address pool). */
  has(networkId: string): boolean {
    return this.pools.has(networkId);
  }

  /** Network `n` was deleted: its subnet and VNI are free again. */
  releaseNetwork(n: Network): void {
    this.pools.delete(n.id);
    this.subnets.release(n.id);
    if (n.vni !== undefined) this.vnis.release(n.vni, n.id);
  }

  /** Node `id` was deleted: its overlay subnet is free again. */
  releaseNode(nodeId: string): void {
    this.nodeSubnets.release(nodeId);
  }

  /** Gives node `n` a /24 of the overlay CIDR, in place (journalled). Returns false when the range is full (logged). */
  allocateNode(n: Node): boolean {
    let subnet: string;
    try {
      subnet = this.nodeSubnets.allocate(n.id);
    } catch (e) {
      this.log.warn({ nodeId: n.id, err: (e as Error).message }, 'no overlay subnet for node');
      return false;
    }
    this.journal.record(() => this.nodeSubnets.release(n.id));
    n.overlay = { subnet, vtepMac: vtepMac(subnet) };
    return true;
  }

  /** Creates the ingress network in `tx` unless the store has one (or a non-ingress network named `ingress`). */
  ensureIngress(tx: Tx, now: string): void {
    const nets = tx.list('networks');
    if (nets.some((n) => n.spec.ingress)) return;
    if (nets.some((n) => n.spec.name === 'ingress')) {
      this.log.warn({}, 'a network named ingress exists but is not the ingress network; not creating one');
      return;
    }
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

  /**
   * Gives `n` a subnet (and a VNI if overlay), in place (journalled). Returns false when nothing
   * was allocated: not an overlay network and no explicit subnet, or no subnet available (the
   * reason is kept in {@link errors}).
   */
  allocateNetwork(n: Network): boolean {
    if (n.spec.driver !== 'overlay' && !n.spec.subnet) return false;
    let subnet: string;
    try {
      subnet = n.spec.subnet ? this.subnets.reserve(n.spec.subnet, n.id) : this.subnets.allocate(n.id);
    } catch (e) {
      const msg = (e as Error).message;
      if (this.errors.get(n.id) !== msg) this.log.warn({ network: n.spec.name, err: msg }, 'cannot allocate network');
      this.errors.set(n.id, msg);
      return false;
    }
    this.errors.delete(n.id);
    const pool = new AddressPool(subnet);
    this.pools.set(n.id, pool);
    this.journal.record(() => {
      this.subnets.release(n.id);
      this.pools.delete(n.id);
    });
    n.ipam = { subnet, gateway: pool.gateway };
    if (n.spec.driver === 'overlay') {
      const vni = this.vnis.allocate(n.id);
      this.journal.record(() => this.vnis.release(vni, n.id));
      n.vni = vni;
    }
    return true;
  }
}

/** VXLAN endpoint MAC of a node subnet: `02:00:` + the subnet's 4 bytes (so every peer computes it; docs/NETWORKING.md). */
export function vtepMac(subnet: string): string {
  const { base } = parseCidr(subnet);
  return ['02', '00', ...[base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
