/**
 * IPVS dataplane (where the kernel has it): pure renderers of `ipvsadm -R` input and the nft
 * mark rules, and a thin applier gated on `/proc/net/ip_vs`.
 *
 * Behaviour copied from libnetwork (`service_linux.go`, read for behaviour only; docs/NETWORKING.md,
 * "Load-balancer backends"): one IPVS
 * virtual service per (service, protocol, target port) keyed on a **firewall mark** (`-A -f <mark>
 * -s rr`), one masquerading destination per task (`-a -f <mark> -r ip:port -m`), drain = weight 0,
 * marks counted from 256. The mark is set by nft (`meta mark set … map @svc_marks`) instead of
 * iptables mangle rules; VIPs are bound to a dummy device so IPVS sees them at LOCAL_IN.
 */
import type { LbService, ServiceTable } from './table.js';
import { allPortProtocols, ipToInt, validateTable } from './table.js';
import { run, runOk } from './exec.js';
import type { Capabilities, Dataplane, SyncResult } from './dataplane.js';
import { Serial, probeHost } from './dataplane.js';
import { NftError } from './nft.js';

export interface IpvsOptions {
  /** First firewall mark (default 256, libnetwork's `fwMarkCtr` start). Marks use base…base+65535. */
  markBase?: number;
  /** Scheduler (default `rr`). */
  scheduler?: 'rr' | 'wrr' | 'lc' | 'wlc' | 'sh' | 'dh';
  /** nft table for the mark rules (default `shoal_ipvs`). */
  table?: string;
  /**
   * Device holding the VIPs as /32s (default `lo`; a `dummy` device name is created when missing —
   * kernels without CONFIG_DUMMY, like this project's CI, need `lo`).
   */
  device?: string;
}

/** Key of one IPVS virtual service: `<svcId>/<proto>/<targetPort>` or `<svcId>/<proto>/*`. */
export type MarkKey = string;

/**
 * Give every (service, protocol, port) of the table a firewall mark, keeping the marks already in
 * `prev` and handing out the lowest free ones to new keys (so unchanged services keep their IPVS
 * state across syncs). Pure.
 * @throws Error when more than 65536 marks would be needed.
 */
export function assignFwmarks(t: ServiceTable, prev: ReadonlyMap<MarkKey, number> = new Map(), base = 256): Map<MarkKey, number> {
  const want: MarkKey[] = [];
  for (const s of [...t.services].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    for (const p of s.ports) want.push(`${s.id}/${p.protocol}/${p.targetPort}`);
    if (s.vip && s.vipAllPorts) for (const proto of allPortProtocols(s)) want.push(`${s.id}/${proto}/*`);
  }
  const out = new Map<MarkKey, number>();
  const used = new Set<number>();
  for (const k of want) {
    const m = prev.get(k);
    if (m !== undefined) {
      out.set(k, m);
      used.add(m);
    }
  }
  let next = base;
  for (const k of want) {
    if (out.has(k)) continue;
    while (used.has(next)) next++;
    if (next > base + 65535) throw new Error(`more than 65536 IPVS services needed; raise markBase range or use the nftables dataplane`);
    out.set(k, next);
    used.add(next);
  }
  return out;
}

interface IpvsModel {
  /** mark → scheduler */
  services: Map<number, string>;
  /** `mark|ip:port` → weight */
  dests: Map<string, number>;
  svcMarks: Map<string, number>;
  vipAllMarks: Map<string, number>;
  meshMarks: Map<string, number>;
  vips: string[];
}

function model(t: ServiceTable, marks: ReadonlyMap<MarkKey, number>, opts: IpvsOptions): IpvsModel {
  validateTable(t);
  const sched = opts.scheduler ?? 'rr';
  const m: IpvsModel = { services: new Map(), dests: new Map(), svcMarks: new Map(), vipAllMarks: new Map(), meshMarks: new Map(), vips: [] };
  const mark = (k: MarkKey) => {
    const v = marks.get(k);
    if (v === undefined) throw new Error(`no firewall mark for ${k}; call assignFwmarks on this table first`);
    return v;
  };
  const addDests = (s: LbService, fw: number, port: number | undefined) => {
    m.services.set(fw, sched);
    const bs = [...s.backends].sort((a, b) => ipToInt(a.ip) - ipToInt(b.ip) || (a.port ?? 0) - (b.port ?? 0));
    for (const b of bs) {
      const p = port === undefined ? 0 : (b.port ?? port);
      m.dests.set(`${fw}|${b.ip}:${p}`, b.state === 'draining' ? 0 : (b.weight ?? 1));
    }
  };
  const vips = new Set<string>();
  for (const s of [...t.services].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const ports = [...s.ports].sort((a, b) => (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : a.targetPort - b.targetPort));
    for (const p of ports) {
      const fw = mark(`${s.id}/${p.protocol}/${p.targetPort}`);
      addDests(s, fw, p.targetPort);
      if (s.vip) m.svcMarks.set(`${s.vip} . ${p.protocol} . ${p.targetPort}`, fw);
      if (p.publishedPort) m.meshMarks.set(`${p.protocol} . ${p.publishedPort}`, fw);
    }
    if (s.vip && s.vipAllPorts) {
      for (const proto of allPortProtocols(s)) {
        const fw = mark(`${s.id}/${proto}/*`);
        addDests(s, fw, undefined);
        m.vipAllMarks.set(`${s.vip} . ${proto}`, fw);
      }
    }
    if (s.vip) vips.add(s.vip);
  }
  m.vips = [...vips].sort((a, b) => ipToInt(a) - ipToInt(b));
  return m;
}

const destArgs = (k: string): { fw: string; rs: string } => {
  const [fw, rs] = k.split('|') as [string, string];
  return { fw, rs: rs.endsWith(':0') ? rs.slice(0, -2) : rs };
};

/**
 * `ipvsadm -R` input recreating every service from scratch: `-C` (clear), then `-A -f <mark> -s
 * <sched>` and `-a -f <mark> -r <ip:port> -m -w <weight>` lines (weight 0 = draining; a
 * destination without port keeps the packet's port). Pure, deterministic.
 */
export function renderIpvsRestore(t: ServiceTable, marks: ReadonlyMap<MarkKey, number>, opts: IpvsOptions = {}): string {
  const m = model(t, marks, opts);
  const out = ['-C'];
  for (const [fw, sched] of [...m.services].sort((a, b) => a[0] - b[0])) {
    out.push(`-A -f ${fw} -s ${sched}`);
    for (const [k, w] of m.dests) {
      const d = destArgs(k);
      if (d.fw === String(fw)) out.push(`-a -f ${fw} -r ${d.rs} -m -w ${w}`);
    }
  }
  return out.join('\n') + '\n';
}

/**
 * `ipvsadm -R` input turning `prev` into `next` with the same marks: `-D` removed services,
 * `-A` new ones, `-d`/`-a` destinations, `-e` weight changes (drain). Returns `''` when equal.
 * Pure.
 */
export function renderIpvsUpdate(prev: ServiceTable, prevMarks: ReadonlyMap<MarkKey, number>, next: ServiceTable, nextMarks: ReadonlyMap<MarkKey, number>, opts: IpvsOptions = {}): string {
  const a = model(prev, prevMarks, opts);
  const b = model(next, nextMarks, opts);
  const out: string[] = [];
  for (const [fw] of a.services) if (!b.services.has(fw)) out.push(`-D -f ${fw}`);
  for (const [fw, sched] of b.services) {
    if (!a.services.has(fw)) out.push(`-A -f ${fw} -s ${sched}`);
    else if (a.services.get(fw) !== sched) out.push(`-E -f ${fw} -s ${sched}`);
  }
  for (const [k] of a.dests) {
    const d = destArgs(k);
    if (!b.dests.has(k) && b.services.has(Number(d.fw))) out.push(`-d -f ${d.fw} -r ${d.rs}`);
  }
  for (const [k, w] of b.dests) {
    const d = destArgs(k);
    const old = a.services.has(Number(d.fw)) ? a.dests.get(k) : undefined;
    if (old === undefined) out.push(`-a -f ${d.fw} -r ${d.rs} -m -w ${w}`);
    else if (old !== w) out.push(`-e -f ${d.fw} -r ${d.rs} -m -w ${w}`);
  }
  return out.length ? out.join('\n') + '\n' : '';
}

function markMap(name: string, type: string, elems: Map<string, number>): string[] {
  const out = [`\tmap ${name} {`, `\t\ttype ${type} : mark`];
  if (elems.size) out.push(`\t\telements = { ${[...elems].map(([k, v]) => `${k} : ${v}`).join(', ')} }`);
  out.push('\t}');
  return out;
}

/**
 * nft transaction for the IPVS marks (own table `ip shoal_ipvs`, full replace like the nftables
 * backend): mangle-priority prerouting/output chains set the mark from the VIP / published port
 * (all-ports rule first, so a specific port overrides it), and postrouting masquerades marked
 * flows for the routing mesh and hairpin (libnetwork's `-m ipvs --ipvs … SNAT`). Pure.
 */
export function renderIpvsNft(t: ServiceTable, marks: ReadonlyMap<MarkKey, number>, opts: IpvsOptions = {}): string {
  const m = model(t, marks, opts);
  const name = opts.table ?? 'shoal_ipvs';
  const base = opts.markBase ?? 256;
  const range = `${base}-${base + 65535}`;
  const out = [`table ip ${name}`, `delete table ip ${name}`, `table ip ${name} {`];
  out.push(...markMap('svc_marks', 'ipv4_addr . inet_proto . inet_service', m.svcMarks));
  out.push(...markMap('vip_all_marks', 'ipv4_addr . inet_proto', m.vipAllMarks));
  out.push(...markMap('mesh_marks', 'inet_proto . inet_service', m.meshMarks));
  for (const hook of ['prerouting', 'output']) {
    out.push(
      `\tchain ${hook} {`,
      `\t\ttype filter hook ${hook} priority -150; policy accept;`,
      '\t\tmeta mark set ip daddr . meta l4proto map @vip_all_marks',
      '\t\tmeta mark set ip daddr . meta l4proto . th dport map @svc_marks',
      '\t\tfib daddr type local meta mark set meta l4proto . th dport map @mesh_marks',
      '\t}',
    );
  }
  out.push('\tchain postrouting {', '\t\ttype nat hook postrouting priority 110; policy accept;');
  out.push(t.clusterCidr
    ? `\t\tmeta mark ${range} ip saddr != ${t.clusterCidr} masquerade comment "routing mesh"`
    : `\t\tmeta mark ${range} masquerade comment "routing mesh"`);
  for (const h of t.hairpin ?? []) out.push(`\t\tmeta mark ${range} ip saddr ${h.subnet} oifname "${h.bridge}" masquerade comment "hairpin"`);
  out.push('\t}', '}');
  return out.join('\n') + '\n';
}

/** VIPs to bind on the dummy device (IPVS needs them local). Pure. */
export function ipvsVips(t: ServiceTable): string[] {
  const s = new Set<string>();
  for (const x of t.services) if (x.vip) s.add(x.vip);
  return [...s].sort((a, b) => ipToInt(a) - ipToInt(b));
}

/**
 * IPVS {@link Dataplane}. Not exercised on this project's CI kernel (no CONFIG_IP_VS): `sync`
 * refuses to run unless `probe()` found `/proc/net/ip_vs`.
 */
export class IpvsDataplane implements Dataplane {
  readonly kind = 'ipvs' as const;
  private last: { table: ServiceTable; marks: Map<MarkKey, number> } | null = null;
  private readonly serial = new Serial();

  constructor(private readonly opts: IpvsOptions & { netns?: string } = {}) {}

  probe(): Promise<Capabilities> {
    return probeHost({ netns: this.opts.netns });
  }

  sync(table: ServiceTable): Promise<SyncResult> {
    return this.serial.run(async () => {
      const t0 = performance.now();
      const caps = await this.probe();
      if (!caps.ipvs) throw new Error('IPVS is not available (/proc/net/ip_vs missing); use --lb-dataplane nftables or auto');
      const next = structuredClone(table);
      const marks = assignFwmarks(next, this.last?.marks, this.opts.markBase);
      const ns = this.opts.netns;
      const dev = this.opts.device ?? 'lo';
      const first = !this.last;
      if (first) {
        for (const [k, v] of [['net.ipv4.vs.conntrack', '1'], ['net.ipv4.vs.expire_nodest_conn', '1']] as const) {
          await runOk(['sysctl', '-q', '-w', `${k}=${v}`], { netns: ns });
        }
        if (dev !== 'lo' && (await run(['ip', 'link', 'show', dev], { netns: ns })).code !== 0) {
          await runOk(['ip', 'link', 'add', dev, 'type', 'dummy'], { netns: ns });
        }
        await runOk(['ip', 'link', 'set', dev, 'up'], { netns: ns });
      }
      const have = new Set((await runOk(['ip', '-4', '-o', 'addr', 'show', 'dev', dev], { netns: ns })).split('\n').map((l) => /inet (\S+)\//.exec(l)?.[1]).filter((x): x is string => !!x));
      const want = new Set(ipvsVips(next));
      for (const v of want) if (!have.has(v)) await runOk(['ip', 'addr', 'add', `${v}/32`, 'dev', dev], { netns: ns });
      const ipvs = this.last ? renderIpvsUpdate(this.last.table, this.last.marks, next, marks, this.opts) : renderIpvsRestore(next, marks, this.opts);
      if (ipvs) await runOk(['ipvsadm', '-R'], { input: ipvs, netns: ns });
      const nftText = renderIpvsNft(next, marks, this.opts);
      const r = await run(['/usr/sbin/nft', '-f', '-'], { input: nftText, netns: ns });
      if (r.code !== 0) throw new NftError(r.stderr, r.code);
      // Only VIPs we added before are removed (never the device's own addresses, e.g. lo's 127.0.0.1).
      for (const v of this.last ? ipvsVips(this.last.table) : []) if (!want.has(v) && have.has(v)) await runOk(['ip', 'addr', 'del', `${v}/32`, 'dev', dev], { netns: ns });
      this.last = { table: next, marks };
      return { mode: first ? 'full' : ipvs ? 'incremental' : 'noop', bytes: Buffer.byteLength(ipvs + nftText), ms: performance.now() - t0 };
    });
  }

  close(): Promise<void> {
    return this.serial.run(async () => {
      const ns = this.opts.netns;
      if (this.last) await run(['ipvsadm', '-C'], { netns: ns });
      const name = this.opts.table ?? 'shoal_ipvs';
      await run(['/usr/sbin/nft', '-f', '-'], { input: `table ip ${name}\ndelete table ip ${name}\n`, netns: ns });
      const dev = this.opts.device ?? 'lo';
      if (dev === 'lo') {
        for (const v of this.last ? ipvsVips(this.last.table) : []) await run(['ip', 'addr', 'del', `${v}/32`, 'dev', 'lo'], { netns: ns });
      } else {
        await run(['ip', 'link', 'del', dev], { netns: ns });
      }
      this.last = null;
    });
  }
}
