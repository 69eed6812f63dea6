/**
 * Overlay plumbing: a flannel-style routed VXLAN between hosts (docs/NETWORKING.md: "Model", and
 * "Pitfalls the plumbing fixes" for why each rule is there).
 * Docker's stock `bridge` driver owns the per-host bridge (`ovl0`), IPAM and veths; this module
 * owns one VXLAN device, three static entries per remote host (fdb, neigh, route), two
 * `DOCKER-USER` rules, the VIP route and a few sysctls. No multicast, no MAC learning.
 *
 * Pure planners turn (desired config, current state) into argv lists; {@link OverlayExecutor}
 * reads the state with `ip -j`/`bridge -j`/`iptables -C`/`sysctl -n` and runs the plan,
 * optionally inside a network namespace. Level-triggered: run `ensureHost` and `ensurePeers`
 * whenever anything may have changed; a second run plans nothing.
 */
import { invalidArgument } from '@shoal/api';
import { cidrContains, intToIp, isIPv4, parseCidr } from './table.js';
import { run, runOk } from './exec.js';

export interface OverlayConfig {
  /** This host's task subnet (a /24 the manager allocated from `clusterCidr`), e.g. `10.97.1.0/24`. */
  subnet: string;
  /** Cluster overlay CIDR, e.g. `10.97.0.0/16`. */
  clusterCidr: string;
  /** VIP range routed to the bridge for host processes, e.g. `10.96.0.0/16`. */
  vipCidr: string;
  /** This host's underlay address (VXLAN source), e.g. `10.98.0.11`. */
  underlayIp: string;
  /** Underlay device, e.g. `eth0`. */
  underlayDev: string;
  /** Bridge name (default `ovl0`). */
  bridge?: string;
  /** VXLAN device name (default `vxlan0`). */
  vxlanDev?: string;
  /** VXLAN network identifier (default 4097). */
  vni?: number;
  /** VXLAN UDP port (default 4789). */
  dstPort?: number;
  /** MTU of the VXLAN device and of the docker network (default 1450 = 1500 − 50). */
  mtu?: number;
  /** Docker network name (default `ovnet`). */
  dockerNetwork?: string;
  /**
   * `docker-user` (default) ensures the two FORWARD accept rules in Docker's `DOCKER-USER`
   * chain (which must exist: dockerd creates it); `none` leaves the firewall alone.
   */
  firewall?: 'docker-user' | 'none';
}

/** A remote host as published in its node record. */
export interface OverlayPeer {
  underlayIp: string;
  subnet: string;
}

/** Addresses derived from a host subnet (pure): gateway `.1`, VTEP `.0`, VTEP MAC `02:00:` + subnet bytes. */
export function overlayAddresses(subnet: string): { gateway: string; vtepIp: string; vtepMac: string } {
  const { base, bits } = parseCidr(subnet);
  if (bits > 30) throw invalidArgument(`host subnet "${subnet}" is too small; use a /24 (at most /30)`);
  const bytes = [base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255];
  return {
    gateway: intToIp(base + 1),
    vtepIp: intToIp(base),
    vtepMac: ['02', '00', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':'),
  };
}

interface Resolved extends Required<Omit<OverlayConfig, 'firewall'>> {
  firewall: 'docker-user' | 'none';
  gateway: string;
  vtepIp: string;
  vtepMac: string;
}

/** Fill defaults and check every field. @throws ShoalError(InvalidArgument) naming the bad value. */
export function resolveOverlayConfig(c: OverlayConfig): Resolved {
  for (const [k, v] of [['clusterCidr', c.clusterCidr], ['vipCidr', c.vipCidr], ['subnet', c.subnet]] as const) parseCidr(v ?? `missing ${k}`);
  if (!cidrContains(c.clusterCidr, c.subnet.split('/')[0]!)) throw invalidArgument(`host subnet ${c.subnet} is outside the cluster CIDR ${c.clusterCidr}; allocate it from that range`);
  if (!isIPv4(c.underlayIp)) throw invalidArgument(`invalid underlay address "${c.underlayIp}"; use the host's IPv4 address`);
  const vni = c.vni ?? 4097;
  if (!Number.isInteger(vni) || vni < 1 || vni > 16777215) throw invalidArgument(`invalid VNI ${vni}; use an integer 1–16777215`);
  const mtu = c.mtu ?? 1450;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 9000) throw invalidArgument(`invalid overlay MTU ${mtu}; use 576–9000 (underlay MTU − 50)`);
  return {
    ...c, bridge: c.bridge ?? 'ovl0', vxlanDev: c.vxlanDev ?? 'vxlan0', vni, dstPort: c.dstPort ?? 4789, mtu,
    dockerNetwork: c.dockerNetwork ?? 'ovnet', firewall: c.firewall ?? 'docker-user', ...overlayAddresses(c.subnet),
  };
}

/**
 * Engine API body for `POST /networks/create` (docs/NETWORKING.md, "Pitfalls the plumbing fixes"):
 * the bridge driver on this host's subnet, bridge named `ovl0`, MTU, and Docker's masquerade off
 * (pitfall 5).
 */
export function dockerNetworkCreateBody(c: OverlayConfig): {
  Name: string; Driver: 'bridge'; CheckDuplicate: true; IPAM: { Driver: 'default'; Config: { Subnet: string; Gateway: string }[] }; Options: Record<string, string>;
} {
  const r = resolveOverlayConfig(c);
  return {
    Name: r.dockerNetwork, Driver: 'bridge', CheckDuplicate: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: r.subnet, Gateway: r.gateway }] },
    Options: {
      'com.docker.network.bridge.name': r.bridge,
      'com.docker.network.driver.mtu': String(r.mtu),
      'com.docker.network.bridge.enable_ip_masquerade': 'false',
    },
  };
}

/**
 * Does an inspected docker network (`GET /networks/{name}`) match the config? When not, the agent
 * removes and recreates it (after moving tasks off). Pure.
 */
export function dockerNetworkMatches(inspect: { Driver?: string; IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] | null }; Options?: Record<string, string> | null }, c: OverlayConfig): boolean {
  const want = dockerNetworkCreateBody(c);
  const cfg = inspect.IPAM?.Config?.[0];
  const o = inspect.Options ?? {};
  return inspect.Driver === 'bridge' && cfg?.Subnet === want.IPAM.Config[0]!.Subnet && cfg?.Gateway === want.IPAM.Config[0]!.Gateway
    && Object.entries(want.Options).every(([k, v]) => o[k] === v);
}

/** What {@link planHost} needs to know about the host. */
export interface HostState {
  /** The VXLAN device, or null when absent. */
  vxlan: { vni: number; local: string; dstPort: number; learning: boolean; mtu: number; mac: string; up: boolean } | null;
  /** IPv4 addresses (`a.b.c.d/n`) on the VXLAN device. */
  vxlanAddrs: string[];
  /** Is `vipCidr dev <bridge>` routed? */
  vipRoute: boolean;
  /** `DOCKER-USER` rules present (only read with firewall `docker-user`). */
  overlayAccept: boolean;
  dnatAccept: boolean;
  /** sysctl values by key. */
  sysctls: Record<string, string>;
}

/** One step: argv to run. */
export type Command = string[];

/**
 * sysctls the overlay needs (key → value): forwarding, and `route_localnet` on the bridge and the
 * VXLAN device so `127.0.0.1:<published>` DNATed to a task can leave the host (Docker sets it on
 * its ingress bridge for the same reason).
 */
export function overlaySysctls(c: OverlayConfig): Record<string, string> {
  const r = resolveOverlayConfig(c);
  return {
    'net.ipv4.ip_forward': '1',
    [`net.ipv4.conf.${r.bridge}.route_localnet`]: '1',
    [`net.ipv4.conf.${r.vxlanDev}.route_localnet`]: '1',
  };
}

/** iptables argv (without the -C/-I/-D verb) of the two DOCKER-USER rules (NETWORKING.md pitfalls 1 and 2). */
export function dockerUserRules(c: OverlayConfig): { overlayAccept: string[]; dnatAccept: string[] } {
  const r = resolveOverlayConfig(c);
  return {
    overlayAccept: ['DOCKER-USER', '-i', r.vxlanDev, '-o', r.bridge, '-j', 'ACCEPT'],
    dnatAccept: ['DOCKER-USER', '-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'ACCEPT'],
  };
}

/**
 * Commands that bring the host to the config (pure). Docker's network is not included (the agent
 * creates it through the Engine API with {@link dockerNetworkCreateBody}); the bridge must exist
 * before the VIP route and its sysctl can be set.
 */
export function planHost(c: OverlayConfig, s: HostState): Command[] {
  const r = resolveOverlayConfig(c);
  const dev = r.vxlanDev;
  const out: Command[] = [];
  const v = s.vxlan;
  const wrong = v && (v.vni !== r.vni || v.local !== r.underlayIp || v.dstPort !== r.dstPort || v.learning);
  if (wrong) out.push(['ip', 'link', 'del', dev]);
  if (!v || wrong) {
    out.push(['ip', 'link', 'add', dev, 'type', 'vxlan', 'id', String(r.vni), 'dstport', String(r.dstPort), 'local', r.underlayIp, 'dev', r.underlayDev, 'nolearning']);
  }
  const fresh = !v || wrong;
  if (fresh || v!.mac !== r.vtepMac || v!.mtu !== r.mtu) out.push(['ip', 'link', 'set', dev, 'address', r.vtepMac, 'mtu', String(r.mtu)]);
  const addr = `${r.vtepIp}/32`;
  const addrs = fresh ? [] : s.vxlanAddrs;
  for (const a of addrs) if (a !== addr) out.push(['ip', 'addr', 'del', a, 'dev', dev]);
  if (!addrs.includes(addr)) out.push(['ip', 'addr', 'add', addr, 'dev', dev]);
  if (fresh || !v!.up) out.push(['ip', 'link', 'set', dev, 'up']);
  if (r.firewall === 'docker-user') {
    const rules = dockerUserRules(c);
    if (!s.overlayAccept) out.push(['iptables', '-I', ...rules.overlayAccept]);
    if (!s.dnatAccept) out.push(['iptables', '-I', ...rules.dnatAccept]);
  }
  if (!s.vipRoute) out.push(['ip', 'route', 'replace', r.vipCidr, 'dev', r.bridge, 'src', r.gateway]);
  for (const [k, val] of Object.entries(overlaySysctls(c))) {
    const onNewDevice = fresh && k.startsWith(`net.ipv4.conf.${dev}.`);
    if (onNewDevice || s.sysctls[k] !== val) out.push(['sysctl', '-q', '-w', `${k}=${val}`]);
  }
  return out;
}

/** Forwarding entries on the VXLAN device, as read back. */
export interface PeerState {
  fdb: { mac: string; dst: string }[];
  neigh: { ip: string; mac: string; permanent: boolean }[];
  routes: { dst: string; gateway: string }[];
}

/**
 * Commands that make the fdb/neigh/route entries of `vxlanDev` match `peers` (pure). Entries for
 * hosts no longer in `peers` are deleted; only entries that look like ours (fdb with a `dst`,
 * neighbours and routes inside the cluster CIDR) are touched. This host is skipped if listed.
 * @throws ShoalError(InvalidArgument) on a peer with a bad address or a subnet outside the cluster.
 */
export function planPeers(c: OverlayConfig, peers: OverlayPeer[], s: PeerState): Command[] {
  const r = resolveOverlayConfig(c);
  const dev = r.vxlanDev;
  const want = new Map<string, { underlayIp: string; subnet: string; vtepIp: string; vtepMac: string }>();
  for (const p of peers) {
    if (!isIPv4(p.underlayIp)) throw invalidArgument(`invalid peer underlay address "${p.underlayIp}"; use an IPv4 address`);
    const sub = `${intToIp(parseCidr(p.subnet).base)}/${parseCidr(p.subnet).bits}`;
    if (!cidrContains(r.clusterCidr, sub.split('/')[0]!)) throw invalidArgument(`peer subnet ${p.subnet} is outside the cluster CIDR ${r.clusterCidr}`);
    if (p.underlayIp === r.underlayIp || sub === r.subnet) continue;
    want.set(sub, { ...p, subnet: sub, ...overlayAddresses(sub) });
  }
  const out: Command[] = [];
  const wantMacs = new Map([...want.values()].map((p) => [p.vtepMac, p]));
  const wantIps = new Map([...want.values()].map((p) => [p.vtepIp, p]));
  // Removals first (routes, then neighbours, then fdb), then additions in the reverse order.
  for (const rt of s.routes) {
    if (!cidrContains(r.clusterCidr, rt.dst.split('/')[0]!)) continue;
    const p = want.get(rt.dst);
    if (!p) out.push(['ip', 'route', 'del', rt.dst, 'dev', dev]);
  }
  for (const n of s.neigh) {
    if (!cidrContains(r.clusterCidr, n.ip)) continue;
    if (!wantIps.has(n.ip)) out.push(['ip', 'neigh', 'del', n.ip, 'dev', dev]);
  }
  for (const f of s.fdb) {
    if (!wantMacs.has(f.mac)) out.push(['bridge', 'fdb', 'del', f.mac, 'dev', dev, 'dst', f.dst]);
  }
  for (const p of want.values()) {
    const fdb = s.fdb.filter((f) => f.mac === p.vtepMac);
    if (!(fdb.length === 1 && fdb[0]!.dst === p.underlayIp)) {
      for (const f of fdb) if (f.dst !== p.underlayIp) out.push(['bridge', 'fdb', 'del', f.mac, 'dev', dev, 'dst', f.dst]);
      if (!fdb.some((f) => f.dst === p.underlayIp)) out.push(['bridge', 'fdb', 'append', p.vtepMac, 'dev', dev, 'dst', p.underlayIp]);
    }
    const n = s.neigh.find((x) => x.ip === p.vtepIp);
    if (!n || n.mac !== p.vtepMac || !n.permanent) out.push(['ip', 'neigh', 'replace', p.vtepIp, 'lladdr', p.vtepMac, 'dev', dev, 'nud', 'permanent']);
    const rt = s.routes.find((x) => x.dst === p.subnet);
    if (!rt || rt.gateway !== p.vtepIp) out.push(['ip', 'route', 'replace', p.subnet, 'via', p.vtepIp, 'dev', dev, 'onlink']);
  }
  return out;
}

/* ---- parsers of `ip -j` / `bridge -j` output (pure) ---- */

type Json = Record<string, unknown>;
const arr = (text: string): Json[] => {
  const t = text.trim();
  if (!t) return [];
  const v = JSON.parse(t) as unknown;
  return Array.isArray(v) ? (v as Json[]) : [];
};

/** `bridge -j fdb show dev <vxlan>` → entries that have a `dst` (the static per-peer ones). */
export function parseFdbJson(text: string): PeerState['fdb'] {
  return arr(text).filter((e) => typeof e.dst === 'string' && typeof e.mac === 'string').map((e) => ({ mac: String(e.mac).toLowerCase(), dst: String(e.dst) }));
}

/** `ip -j neigh show dev <vxlan>`. */
export function parseNeighJson(text: string): PeerState['neigh'] {
  return arr(text).filter((e) => typeof e.dst === 'string' && isIPv4(String(e.dst))).map((e) => ({
    ip: String(e.dst), mac: String(e.lladdr ?? '').toLowerCase(), permanent: Array.isArray(e.state) && (e.state as unknown[]).includes('PERMANENT'),
  }));
}

/** `ip -j route show dev <vxlan>` → routes with a gateway; `dst` normalised to CIDR. */
export function parseRouteJson(text: string): PeerState['routes'] {
  return arr(text).filter((e) => typeof e.gateway === 'string').map((e) => {
    const d = String(e.dst);
    return { dst: d.includes('/') ? d : `${d}/32`, gateway: String(e.gateway) };
  });
}

/** `ip -j -d link show <vxlan>` → the VXLAN part of {@link HostState}, or null. */
export function parseVxlanLinkJson(text: string): HostState['vxlan'] {
  const l = arr(text)[0];
  if (!l) return null;
  const info = (l.linkinfo as Json | undefined)?.info_data as Json | undefined;
  if ((l.linkinfo as Json | undefined)?.info_kind !== 'vxlan' || !info) return null;
  return {
    vni: Number(info.id), local: String(info.local ?? ''), dstPort: Number(info.port), learning: info.learning === true,
    mtu: Number(l.mtu), mac: String(l.address ?? '').toLowerCase(), up: Array.isArray(l.flags) && (l.flags as unknown[]).includes('UP'),
  };
}

/** `ip -j -4 addr show dev <dev>` → `a.b.c.d/n` list. */
export function parseAddrJson(text: string): string[] {
  const out: string[] = [];
  for (const l of arr(text)) for (const a of (l.addr_info as Json[] | undefined) ?? []) if (a.family === 'inet') out.push(`${String(a.local)}/${String(a.prefixlen)}`);
  return out;
}

/**
 * Thin executor: reads state, plans, runs. Every command runs in `netns` when given.
 * Errors: CommandError (from {@link runOk}) with the tool's stderr.
 */
export class OverlayExecutor {
  private readonly r: Resolved;
  constructor(private readonly cfg: OverlayConfig, private readonly opts: { netns?: string } = {}) {
    this.r = resolveOverlayConfig(cfg);
  }

  private out(argv: string[]): Promise<string> {
    return runOk(argv, { netns: this.opts.netns });
  }

  async readHostState(): Promise<HostState> {
    const ns = this.opts.netns;
    const dev = this.r.vxlanDev;
    const link = await run(['ip', '-j', '-d', 'link', 'show', dev], { netns: ns });
    const vxlan = link.code === 0 ? parseVxlanLinkJson(link.stdout) : null;
    const vxlanAddrs = vxlan ? parseAddrJson(await this.out(['ip', '-j', '-4', 'addr', 'show', 'dev', dev])) : [];
    const routes = await run(['ip', '-j', 'route', 'show', this.r.vipCidr, 'dev', this.r.bridge], { netns: ns });
    const vipRoute = routes.code === 0 && arr(routes.stdout).length > 0;
    let overlayAccept = false;
    let dnatAccept = false;
    if (this.r.firewall === 'docker-user') {
      const rules = dockerUserRules(this.cfg);
      overlayAccept = (await run(['iptables', '-C', ...rules.overlayAccept], { netns: ns })).code === 0;
      dnatAccept = (await run(['iptables', '-C', ...rules.dnatAccept], { netns: ns })).code === 0;
    }
    const sysctls: Record<string, string> = {};
    for (const k of Object.keys(overlaySysctls(this.cfg))) {
      const v = await run(['sysctl', '-n', k], { netns: ns });
      if (v.code === 0) sysctls[k] = v.stdout.trim();
    }
    return { vxlan, vxlanAddrs, vipRoute, overlayAccept, dnatAccept, sysctls };
  }

  async readPeerState(): Promise<PeerState> {
    const dev = this.r.vxlanDev;
    return {
      fdb: parseFdbJson(await this.out(['bridge', '-j', 'fdb', 'show', 'dev', dev])),
      neigh: parseNeighJson(await this.out(['ip', '-j', 'neigh', 'show', 'dev', dev])),
      routes: parseRouteJson(await this.out(['ip', '-j', 'route', 'show', 'dev', dev])),
    };
  }

  /** Run `cmds` in order; stops at the first failure. @throws CommandError. */
  async runAll(cmds: Command[]): Promise<void> {
    for (const c of cmds) await this.out(c);
  }

  /** Ensure the per-host part (all but the docker network). @returns the commands it ran. */
  async ensureHost(): Promise<Command[]> {
    const plan = planHost(this.cfg, await this.readHostState());
    await this.runAll(plan);
    return plan;
  }

  /** Ensure the per-peer entries (fdb, neighbour, route). @returns the commands it ran. */
  async ensurePeers(peers: OverlayPeer[]): Promise<Command[]> {
    const plan = planPeers(this.cfg, peers, await this.readPeerState());
    await this.runAll(plan);
    return plan;
  }

  /** Remove what `ensureHost` added (VXLAN device with its entries, rules, route). Best effort. */
  async teardown(): Promise<void> {
    const ns = this.opts.netns;
    await run(['ip', 'link', 'del', this.r.vxlanDev], { netns: ns });
    await run(['ip', 'route', 'del', this.r.vipCidr, 'dev', this.r.bridge], { netns: ns });
    if (this.r.firewall === 'docker-user') {
      const rules = dockerUserRules(this.cfg);
      await run(['iptables', '-D', ...rules.overlayAccept], { netns: ns });
      await run(['iptables', '-D', ...rules.dnatAccept], { netns: ns });
    }
  }
}
