import type { Network, PortConfig, Service } from '@shoal/api';
import type { Logger } from '@shoal/runtime';
import type { Tx } from '@shoal/store';
import { AddressPool } from './ipam.js';
import type { UndoJournal } from './journal.js';
import type { NetworkAllocator } from './network-allocator.js';
import { PortAllocator } from './ports.js';

/** An address held on a network: `addr` is `ip/bits`. */
export interface Held {
  networkId: string;
  addr: string;
}

/** Published ingress-mode ports make a service reachable on every node through the ingress network. */
export const publishesIngress = (s: Service | undefined): boolean => (s?.spec.endpoint?.ports ?? []).some((p) => p.publishMode === 'ingress');

export interface EndpointAllocatorOptions {
  /** Dynamic published-port range, inclusive. */
  portRange: readonly [number, number];
  /** Range service VIPs come from (CIDR). */
  vipCidr: string;
}

/** The `ingress` network of the transaction's state, if any. */
export function ingressNetwork(tx: Pick<Tx, 'list'>): Network | undefined {
  return tx.list('networks').find((n) => n.spec.ingress);
}

/** A network by ID or name. */
export function resolveNetwork(tx: Pick<Tx, 'get' | 'byName'>, target: string): Network | undefined {
  return tx.get('networks', target) ?? tx.byName('networks', target);
}

/**
 * Service endpoint allocation (SwarmKit `manager/allocator/network.go` allocateService and
 * `portallocator.go`): ingress-mode published ports cluster-wide (0 → a port of `portRange`, kept
 * across updates) and, in `vip` endpoint mode, one VIP per attached network that has a subnet (the
 * ingress network too when ingress ports are published), written to `service.endpoint`.
 *
 * A service whose ports or VIPs cannot be allocated is *blocked*: {@link blocked} says why, and its
 * tasks carry that reason until it is allocated (another service releasing a port unblocks it).
 * In-memory allocations inside a store transaction are recorded in the shared {@link UndoJournal}.
 */
export class EndpointAllocator {
  private ports!: PortAllocator;
  private vipPool!: AddressPool;
  private vips = new Map<string, Held[]>();
  /** Service ID → why its endpoint cannot be allocated. */
  readonly blocked = new Map<string, string>();

  /** @param nameOf a service's name for error messages (its ID when unknown). */
  constructor(
    private readonly o: EndpointAllocatorOptions,
    private readonly networks: NetworkAllocator,
    private readonly journal: UndoJournal,
    private readonly log: Logger,
    private readonly nameOf: (serviceId: string) => string,
  ) {
    this.reset();
  }

  private reset(): void {
    this.ports = new PortAllocator(this.o.portRange, this.nameOf);
    this.vipPool = new AddressPool(this.o.vipCidr);
    this.vips.clear();
    this.blocked.clear();
  }

  /** Free addresses left in the VIP range. */
  get freeVips(): number {
    return this.vipPool.free;
  }

  /** Forgets everything and re-reserves the ports and VIPs the store's services hold. */
  restore(tx: Pick<Tx, 'list'>): void {
    this.reset();
    for (const s of tx.list('services')) {
      if (!s.endpoint) continue;
      const clashes = this.ports.reserve(s.id, s.endpoint.ports);
      if (clashes.length) this.log.warn({ service: s.spec.name, ports: clashes }, 'published port held twice');
      const held: Held[] = [];
      for (const v of s.endpoint.virtualIps) {
        if (this.vipPool.reserve(v.addr, `vip:${s.id}`)) held.push({ networkId: v.networkId, addr: v.addr });
      }
      this.vips.set(s.id, held);
    }
  }

  /**
   * Service `serviceId` was deleted: its ports and VIPs are free. Returns the IDs of blocked
   * services, which may go ahead now.
   */
  release(serviceId: string): string[] {
    this.ports.release(serviceId);
    for (const h of this.vips.get(serviceId) ?? []) this.vipPool.release(h.addr, `vip:${serviceId}`);
    this.vips.delete(serviceId);
    this.blocked.delete(serviceId);
    return [...this.blocked.keys()];
  }

  /**
   * Allocates `s`'s endpoint (journalled) and writes it to `tx` when it changed. On failure the
   * service is marked blocked with the reason and nothing is written.
   */
  allocate(tx: Tx, s: Service): void {
    const before = this.ports.heldBy(s.id);
    let ports: PortConfig[];
    try {
      ports = this.ports.assign(s.id, s.spec.endpoint?.ports ?? [], s.endpoint?.ports ?? []);
    } catch (e) {
      this.blocked.set(s.id, (e as Error).message);
      return;
    }
    this.journal.record(() => this.ports.restoreHeld(s.id, before));

    const wantNets: string[] = [];
    if ((s.spec.endpoint?.mode ?? 'vip') === 'vip') {
      if (publishesIngress(s)) {
        const ing = ingressNetwork(tx);
        if (ing) wantNets.push(ing.id);
      }
      for (const a of s.spec.task.networks) {
        const n = resolveNetwork(tx, a.target);
        if (n && !wantNets.includes(n.id)) wantNets.push(n.id);
      }
    }
    const old = this.vips.get(s.id) ?? [];
    const next: Held[] = [];
    try {
      const pool = this.vipPool;
      for (const netId of wantNets) {
        if (!this.networks.has(netId)) continue;
        const kept = old.find((h) => h.networkId === netId);
        if (kept) {
          next.push(kept);
          continue;
        }
        const ip = pool.allocate(`vip:${s.id}`);
        this.journal.record(() => pool.release(ip, `vip:${s.id}`));
        next.push({ networkId: netId, addr: pool.withPrefix(ip) });
      }
    } catch (e) {
      this.blocked.set(s.id, `no virtual IP for service ${s.spec.name}: ${(e as Error).message}`);
      return;
    }
    for (const h of old) {
      if (next.includes(h)) continue;
      const pool = this.vipPool;
      if (pool.release(h.addr, `vip:${s.id}`)) this.journal.record(() => pool.reserve(h.addr, `vip:${s.id}`));
    }
    this.vips.set(s.id, next);
    this.journal.record(() => this.vips.set(s.id, old));
    const hadBlock = this.blocked.get(s.id);
    this.blocked.delete(s.id);
    if (hadBlock !== undefined) this.journal.record(() => this.blocked.set(s.id, hadBlock));

    const endpoint = { ports, virtualIps: next.map((h) => ({ networkId: h.networkId, addr: h.addr })) };
    const empty = endpoint.ports.length === 0 && endpoint.virtualIps.length === 0;
    if ((empty && !s.endpoint) || JSON.stringify(endpoint) === JSON.stringify(s.endpoint)) return;
    s.endpoint = endpoint;
    tx.update('services', s);
  }
}
