/**
 * The desired load-balancer state every {@link Dataplane} is synced to: one {@link ServiceTable},
 * recomputed in full by the agent from its assignments (level-triggered, as kube-proxy's
 * `ServiceChangeTracker` feeds its proxiers). Backends come from the dispatcher's view of tasks,
 * never from Docker directly (docs/NETWORKING.md, "Load-balancer backends").
 */
import { invalidArgument } from '@shoal/api';

export type L4Protocol = 'tcp' | 'udp';

/**
 * One port of a service.
 * - `VIP:targetPort` → `backend.ip:(backend.port ?? targetPort)` (swarm: the VIP port is the target port).
 * - `publishedPort` > 0 → routing mesh: `<any local address>:publishedPort` → the same backends.
 */
export interface LbPort {
  protocol: L4Protocol;
  /** Port the tasks listen on (1–65535). */
  targetPort: number;
  /** Ingress-mode published port (1–65535); 0 or absent = not published on the mesh. */
  publishedPort?: number;
}

/** A task as a load-balancing backend. */
export interface LbBackend {
  /** Task IPv4 address on the service's network (no prefix length). */
  ip: string;
  /** Task id, used in rule comments and conntrack clean-up logs. */
  taskId: string;
  /**
   * `active` receives new connections; `draining` receives none but its established flows are
   * kept (nft: left out of the map; IPVS: weight 0; userspace: not picked).
   */
  state: 'active' | 'draining';
  /** Relative weight, integer 1–100 (default 1). */
  weight?: number;
  /** Override of the port for every {@link LbPort} (tests, non-container backends). Default: targetPort. */
  port?: number;
}

export interface LbService {
  /** Service id (lowercase base36, as `newId()` makes); names nft chains, so `[a-z0-9]` only. */
  id: string;
  /** Service name, for comments. */
  name: string;
  /** Virtual IP (IPv4) on this network; absent in dnsrr mode (then only mesh ports apply). */
  vip?: string;
  /**
   * When true, every port of the VIP for the protocols listed in `ports` (tcp if none) is forwarded
   * unchanged to the backends, as swarm's fwmark-per-VIP does; explicit `ports` still win.
   * The userspace backend ignores it (it can only listen on listed ports).
   */
  vipAllPorts?: boolean;
  ports: LbPort[];
  backends: LbBackend[];
}

/** Hairpin: client and backend on this host's bridge; masquerade so the reply returns via the NAT. */
export interface HairpinNet {
  /** This host's task subnet, CIDR, e.g. `10.97.1.0/24`. */
  subnet: string;
  /** Bridge the subnet lives on, e.g. `ovl0`. */
  bridge: string;
}

export interface ServiceTable {
  services: LbService[];
  /**
   * Overlay CIDR (e.g. `10.97.0.0/16`): routing-mesh flows whose source is outside it are
   * masqueraded so the reply goes back through the ingress host (docs/NETWORKING.md pitfall 3).
   * Absent → mesh flows are masqueraded from any source.
   */
  clusterCidr?: string;
  hairpin?: HairpinNet[];
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const CIDR4 = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/;
const ID = /^[a-z0-9]{1,64}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export const isIPv4 = (s: string): boolean => IPV4.test(s);

export function isCidr4(s: string): boolean {
  const m = CIDR4.exec(s);
  return !!m && isIPv4(m[1]!) && Number(m[2]) <= 32;
}

/** IPv4 → 32-bit unsigned. @throws ShoalError(InvalidArgument) on a malformed address. */
export function ipToInt(ip: string): number {
  if (!isIPv4(ip)) throw invalidArgument(`invalid IPv4 address "${ip}"; use dotted quad like 10.97.1.2`);
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

export const intToIp = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** Parse `a.b.c.d/n` → network address (int) and prefix length. */
export function parseCidr(cidr: string): { base: number; bits: number } {
  if (!isCidr4(cidr)) throw invalidArgument(`invalid IPv4 CIDR "${cidr}"; use a form like 10.97.1.0/24`);
  const [ip, bits] = cidr.split('/') as [string, string];
  const b = Number(bits);
  const mask = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, bits: b };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const { base, bits } = parseCidr(cidr);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === base;
}

const port = (p: number | undefined, what: string) => {
  if (p === undefined || !Number.isInteger(p) || p < 1 || p > 65535) {
    throw invalidArgument(`invalid ${what} ${String(p)}; use an integer 1–65535`);
  }
};

/**
 * Check a table before rendering; every renderer calls it.
 * @throws ShoalError(InvalidArgument) naming the bad value: id, address, port, weight, duplicate
 *   service id, a VIP:proto:port or published port claimed twice.
 */
export function validateTable(t: ServiceTable): void {
  const ids = new Set<string>();
  const vipKeys = new Map<string, string>();
  const meshKeys = new Map<string, string>();
  if (t.clusterCidr !== undefined && !isCidr4(t.clusterCidr)) {
    throw invalidArgument(`invalid clusterCidr "${t.clusterCidr}"; use a form like 10.97.0.0/16`);
  }
  for (const h of t.hairpin ?? []) {
    if (!isCidr4(h.subnet)) throw invalidArgument(`invalid hairpin subnet "${h.subnet}"; use a form like 10.97.1.0/24`);
    if (!IFNAME.test(h.bridge)) throw invalidArgument(`invalid hairpin bridge name "${h.bridge}"; use an interface name of ≤15 characters`);
  }
  for (const s of t.services) {
    if (!ID.test(s.id)) throw invalidArgument(`invalid service id "${s.id}"; ids must be 1–64 characters [a-z0-9]`);
    if (ids.has(s.id)) throw invalidArgument(`service id "${s.id}" appears twice in the table; merge its ports and backends`);
    ids.add(s.id);
    if (s.vip !== undefined && !isIPv4(s.vip)) throw invalidArgument(`invalid VIP "${s.vip}" for service ${s.name}; use an IPv4 address`);
    const seen = new Set<string>();
    for (const p of s.ports) {
      if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw invalidArgument(`invalid protocol "${String(p.protocol)}" for service ${s.name}; use tcp or udp`);
      port(p.targetPort, `target port for service ${s.name}`);
      if (p.publishedPort) port(p.publishedPort, `published port for service ${s.name}`);
      const k = `${p.protocol}/${p.targetPort}`;
      if (seen.has(k)) throw invalidArgument(`port ${k} listed twice for service ${s.name}; list each protocol/target port once`);
      seen.add(k);
      if (s.vip) {
        const vk = `${s.vip}:${k}`;
        const other = vipKeys.get(vk);
        if (other) throw invalidArgument(`VIP ${s.vip} ${k} is claimed by services ${other} and ${s.name}; give each service its own VIP`);
        vipKeys.set(vk, s.name);
      }
      if (p.publishedPort) {
        const mk = `${p.protocol}/${p.publishedPort}`;
        const other = meshKeys.get(mk);
        if (other) throw invalidArgument(`published port ${mk} is claimed by services ${other} and ${s.name}; pick another published port`);
        meshKeys.set(mk, s.name);
      }
    }
    for (const b of s.backends) {
      if (!isIPv4(b.ip)) throw invalidArgument(`invalid backend address "${b.ip}" (task ${b.taskId}) for service ${s.name}; use an IPv4 address`);
      if (b.state !== 'active' && b.state !== 'draining') throw invalidArgument(`invalid backend state "${String(b.state)}" (task ${b.taskId}); use active or draining`);
      if (b.weight !== undefined && (!Number.isInteger(b.weight) || b.weight < 1 || b.weight > 100)) {
        throw invalidArgument(`invalid weight ${b.weight} for task ${b.taskId}; use an integer 1–100`);
      }
      if (b.port !== undefined) port(b.port, `backend port for task ${b.taskId}`);
    }
  }
}

/** Backends that take new connections, in a stable order (ip, then port, then task id). */
export function activeBackends(s: LbService): LbBackend[] {
  return s.backends
    .filter((b) => b.state === 'active')
    .map((b) => ({ b, k: ipToInt(b.ip) }))
    .sort((x, y) => x.k - y.k || (x.b.port ?? 0) - (y.b.port ?? 0) || (x.b.taskId < y.b.taskId ? -1 : x.b.taskId > y.b.taskId ? 1 : 0))
    .map((x) => x.b);
}

/** Protocols the VIP forwards on all ports when `vipAllPorts` is set. */
export function allPortProtocols(s: LbService): L4Protocol[] {
  const ps = new Set<L4Protocol>(s.ports.map((p) => p.protocol));
  if (ps.size === 0) ps.add('tcp');
  return (['tcp', 'udp'] as const).filter((p) => ps.has(p));
}

/**
 * Backends that left a service between two tables (present in `prev` in any state, absent from
 * `next`'s same service or the service gone), per protocol of the service: their conntrack
 * entries should be deleted. Draining backends are not "removed". Pure.
 */
export function removedBackends(prev: ServiceTable, next: ServiceTable): { protocol: L4Protocol; ip: string; serviceId: string; taskId: string }[] {
  const nextBy = new Map(next.services.map((s) => [s.id, new Set(s.backends.map((b) => b.ip))]));
  const out: { protocol: L4Protocol; ip: string; serviceId: string; taskId: string }[] = [];
  for (const s of prev.services) {
    const keep = nextBy.get(s.id);
    const protos = new Set<L4Protocol>(s.ports.map((p) => p.protocol));
    if (s.vipAllPorts) for (const p of allPortProtocols(s)) protos.add(p);
    for (const b of s.backends) {
      if (keep?.has(b.ip)) continue;
      for (const protocol of [...protos].sort()) out.push({ protocol, ip: b.ip, serviceId: s.id, taskId: b.taskId });
    }
  }
  return out;
}
