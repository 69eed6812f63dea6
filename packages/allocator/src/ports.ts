import { DEFAULTS, invalidArgument, type PortConfig, type Service, type ServiceSpec } from '@shoal/api';

const key = (p: { protocol: string; publishedPort: number }) => `${p.protocol}/${p.publishedPort}`;
const label = (p: { protocol: string; publishedPort: number }) => `port ${p.publishedPort}/${p.protocol}`;

/** Ports a service publishes or holds: its spec's explicit ports plus what the allocator gave it. */
function portsHeld(s: Service): PortConfig[] {
  return [...(s.spec.endpoint?.ports ?? []), ...(s.endpoint?.ports ?? [])].filter((p) => p.publishedPort > 0);
}

/**
 * First published-port conflict of `spec` with itself or with `services`, as a one-line message,
 * or undefined. Rules (SwarmKit controlapi): an ingress port is published on every node, so it
 * may not equal any other service's published port (ingress or host mode); a host-mode port may
 * not equal another service's ingress port (host-mode ports on different nodes may coexist).
 * Port 0 (allocator's choice) never conflicts. The service `selfId` (an update) and services
 * being deleted are ignored.
 */
export function findPortConflict(services: readonly Service[], spec: ServiceSpec, selfId?: string): string | undefined {
  const mine = (spec.endpoint?.ports ?? []).filter((p) => p.publishedPort > 0);
  const seen = new Map<string, PortConfig>();
  for (const p of mine) {
    const prev = seen.get(key(p));
    if (prev && (prev.publishMode === 'ingress' || p.publishMode === 'ingress')) {
      return `${label(p)} is published more than once by service ${spec.name}`;
    }
    seen.set(key(p), p);
  }
  for (const s of services) {
    if (s.id === selfId) continue;
    for (const theirs of portsHeld(s)) {
      for (const p of mine) {
        if (key(p) !== key(theirs)) continue;
        if (p.publishMode === 'ingress' || theirs.publishMode === 'ingress') {
          const how = theirs.publishMode === 'host' ? ' as a host-mode port' : '';
          return `${label(p)} is already in use by service ${s.spec.name}${how}`;
        }
      }
    }
  }
  return undefined;
}

/**
 * Like {@link findPortConflict}, for the control API at service create/update time.
 * @throws ShoalError InvalidArgument `port 8080/tcp is already in use by service web`.
 */
export function checkPortConflicts(services: readonly Service[], spec: ServiceSpec, selfId?: string): void {
  const msg = findPortConflict(services, spec, selfId);
  if (msg) throw invalidArgument(msg);
}

/**
 * Cluster-wide published ports of ingress-mode endpoints (SwarmKit `portallocator.go`, behaviour
 * only). Each `proto/port` has one owning service. Port 0 gets a dynamic port from the range
 * (default 30000–32767, next-fit); a service keeps its dynamic port across re-allocation.
 */
export class PortAllocator {
  private owners = new Map<string, string>();
  private cursor: Record<string, number> = {};

  /** `nameOf` turns an owner (service ID) into the name used in error messages. */
  constructor(readonly range: readonly [number, number] = DEFAULTS.dynamicPortRange, private readonly nameOf: (serviceId: string) => string = (id) => id) {}

  /**
   * Computes `serviceId`'s allocated ports for `specPorts`, given what it held before
   * (`previous`), and commits the change (old ports it no longer uses are freed).
   * Host-mode ports are passed through untouched (they are per node; the scheduler checks them).
   * @throws Error `port 8080/tcp is already in use by service web` or when the dynamic
   *   range is exhausted; nothing changes then.
   */
  assign(serviceId: string, specPorts: readonly PortConfig[], previous: readonly PortConfig[] = []): PortConfig[] {
    const wanted = new Set<string>();
    const out: PortConfig[] = [];
    const dynamic: number[] = [];
    for (const p of specPorts) {
      if (p.publishMode !== 'ingress' || p.publishedPort === 0) continue;
      const owner = this.owners.get(key(p));
      if (owner !== undefined && owner !== serviceId) throw new Error(`${label(p)} is already in use by service ${this.nameOf(owner)}`);
      if (wanted.has(key(p))) throw new Error(`${label(p)} is published more than once`);
      wanted.add(key(p));
    }
    const reusable = previous.filter((q) => q.publishMode === 'ingress' && q.publishedPort > 0 && this.owners.get(key(q)) === serviceId && !wanted.has(key(q)));
    for (const p of specPorts) {
      if (p.publishMode !== 'ingress' || p.publishedPort !== 0) {
        out.push({ ...p });
        continue;
      }
      const i = reusable.findIndex((q) => q.protocol === p.protocol && q.targetPort === p.targetPort);
      let port: number;
      if (i >= 0) {
        port = reusable[i]!.publishedPort;
        reusable.splice(i, 1);
      } else {
        port = this.pickDynamic(p.protocol, wanted);
        dynamic.push(port);
      }
      wanted.add(`${p.protocol}/${port}`);
      out.push({ ...p, publishedPort: port });
    }
    // Commit: free what this service no longer uses, take what it now uses.
    for (const [k, owner] of [...this.owners]) if (owner === serviceId && !wanted.has(k)) this.owners.delete(k);
    for (const k of wanted) this.owners.set(k, serviceId);
    return out;
  }

  /** Marks allocated ports as `serviceId`'s (rebuilding from the store). Returns the ports held by someone else. */
  reserve(serviceId: string, ports: readonly PortConfig[]): PortConfig[] {
    const clashes: PortConfig[] = [];
    for (const p of ports) {
      if (p.publishMode !== 'ingress' || p.publishedPort === 0) continue;
      const owner = this.owners.get(key(p));
      if (owner !== undefined && owner !== serviceId) clashes.push(p);
      else this.owners.set(key(p), serviceId);
    }
    return clashes;
  }

  /** Port keys (`tcp/8080`) held by `serviceId`. */
  heldBy(serviceId: string): string[] {
    return [...this.owners].filter(([, o]) => o === serviceId).map(([k]) => k);
  }

  /** Makes `serviceId` hold exactly `keys` (undoing an {@link assign}). */
  restoreHeld(serviceId: string, keys: readonly string[]): void {
    this.release(serviceId);
    for (const k of keys) this.owners.set(k, serviceId);
  }

  /** Frees every port of `serviceId`. */
  release(serviceId: string): void {
    for (const [k, owner] of [...this.owners]) if (owner === serviceId) this.owners.delete(k);
  }

  ownerOf(protocol: string, port: number): string | undefined {
    return this.owners.get(`${protocol}/${port}`);
  }

  private pickDynamic(protocol: string, alsoTaken: Set<string>): number {
    const [lo, hi] = this.range;
    const n = hi - lo + 1;
    const start = this.cursor[protocol] ?? lo;
    for (let k = 0; k < n; k++) {
      const port = lo + ((start - lo + k) % n);
      const kk = `${protocol}/${port}`;
      if (!this.owners.has(kk) && !alsoTaken.has(kk)) {
        this.cursor[protocol] = port + 1 > hi ? lo : port + 1;
        return port;
      }
    }
    throw new Error(`no free ${protocol} port left in the dynamic range ${lo}-${hi}`);
  }
}
