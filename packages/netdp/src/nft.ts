/**
 * nftables dataplane: pure renderers of one `nft -f` transaction, plus a thin applier.
 *
 * Layout (docs/NETWORKING.md "Load-balancer backends", kube-proxy's `pkg/proxy/nftables/README.md` for the vmap
 * idea; own table only, never another's):
 *
 *   table ip shoal
 *     map svc_vips     ipv4_addr . inet_proto . inet_service : verdict   VIP:port → service chain
 *     map svc_vip_all  ipv4_addr . inet_proto : verdict                  VIP (all ports) → chain
 *     map mesh_ports   inet_proto . inet_service : verdict               published port → chain
 *     chain prerouting (nat, −110) / output (nat, −110): the three vmap lookups
 *     chain postrouting (nat, 110): masquerade for the routing mesh and for hairpin
 *     chain svc_<id>_<proto><port>: `numgen random mod N map {…}` DNAT, or reject with 0 backends
 *
 * Priorities −110/110 sit just before/after iptables-nft's nat chains (−100/100).
 * A full sync is `table ip shoal` + `delete table ip shoal` + the whole table, which the kernel
 * applies as one transaction, so there is no window without rules.
 */
import type { L4Protocol, LbService, ServiceTable } from './table.js';
import { activeBackends, allPortProtocols, validateTable } from './table.js';
import { NFT, run } from './exec.js';
import type { Capabilities, Dataplane, SyncResult } from './dataplane.js';
import { Serial, probeHost } from './dataplane.js';
import { conntrackCleanup } from './conntrack.js';

export interface NftOptions {
  /** Table name in family `ip` (default `shoal`). */
  table?: string;
  /** Priority of the nat prerouting/output chains (default −110). */
  dnatPriority?: number;
  /** Priority of the nat postrouting chain (default 110). */
  snatPriority?: number;
}

/** A map element: key text → target chain, with a comment. */
interface Elem {
  chain: string;
  comment: string;
}

/** Everything the table holds, keyed for diffing. */
export interface NftModel {
  chains: Map<string, string[]>;
  svcVips: Map<string, Elem>;
  vipAll: Map<string, Elem>;
  mesh: Map<string, Elem>;
  postrouting: string[];
}

const MAX_COMMENT = 120;

/** nft comment literal: quotes stripped, ≤120 bytes (nft caps comments at 128). */
function comment(s: string): string {
  let c = s.replace(/["\\\n]/g, '');
  if (Buffer.byteLength(c) > MAX_COMMENT) c = c.slice(0, MAX_COMMENT - 3) + '...';
  return `comment "${c}"`;
}

export const portChainName = (svcId: string, proto: string, port: number): string => `svc_${svcId}_${proto}${port}`;
export const allPortsChainName = (svcId: string, proto: string): string => `svc_${svcId}_${proto}`;

/** The DNAT (or reject) rule of one service chain; `port` undefined = keep the packet's port. */
function serviceRule(s: LbService, proto: 'tcp' | 'udp', targetPort: number | undefined): string {
  const bs = activeBackends(s);
  const what = targetPort === undefined ? `${proto}/*` : `${proto}/${targetPort}`;
  if (bs.length === 0) {
    const rej = proto === 'tcp' ? 'reject with tcp reset' : 'reject';
    return `meta l4proto ${proto} ${rej} ${comment(`svc=${s.name} ${what} no backends`)}`;
  }
  const total = bs.reduce((a, b) => a + (b.weight ?? 1), 0);
  let slot = 0;
  const elems = bs.map((b) => {
    const w = b.weight ?? 1;
    const key = w === 1 ? `${slot}` : `${slot}-${slot + w - 1}`;
    slot += w;
    const p = b.port ?? targetPort;
    return p === undefined ? `${key} : ${b.ip}` : `${key} : ${b.ip} . ${p}`;
  });
  const tasks = bs.map((b) => b.taskId.slice(0, 12)).join(',');
  return `meta l4proto ${proto} dnat ip to numgen random mod ${total} map { ${elems.join(', ')} } ${comment(`svc=${s.name} ${what} tasks=${tasks}`)}`;
}

/** The part of the model one service contributes, plus what conntrack clean-up needs. */
export interface ServicePart {
  chains: [string, string[]][];
  svcVips: [string, Elem][];
  vipAll: [string, Elem][];
  mesh: [string, Elem][];
  backendIps: string[];
  protocols: L4Protocol[];
}

function servicePart(s: LbService): ServicePart {
  const part: ServicePart = { chains: [], svcVips: [], vipAll: [], mesh: [], backendIps: s.backends.map((b) => b.ip), protocols: [] };
  const protos = new Set<L4Protocol>();
  const ports = [...s.ports].sort((a, b) => (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : a.targetPort - b.targetPort));
  for (const p of ports) {
    const chain = portChainName(s.id, p.protocol, p.targetPort);
    protos.add(p.protocol);
    part.chains.push([chain, [serviceRule(s, p.protocol, p.targetPort)]]);
    if (s.vip) part.svcVips.push([`${s.vip} . ${p.protocol} . ${p.targetPort}`, { chain, comment: `svc=${s.name}` }]);
    if (p.publishedPort) part.mesh.push([`${p.protocol} . ${p.publishedPort}`, { chain, comment: `svc=${s.name} mesh` }]);
  }
  if (s.vip && s.vipAllPorts) {
    for (const proto of allPortProtocols(s)) {
      const chain = allPortsChainName(s.id, proto);
      protos.add(proto);
      // Per-backend port overrides make no sense when the port is kept: drop them.
      const keepPort: LbService = { ...s, backends: s.backends.map(({ port: _p, ...b }) => b) };
      part.chains.push([chain, [serviceRule(keepPort, proto, undefined)]]);
      part.vipAll.push([`${s.vip} . ${proto}`, { chain, comment: `svc=${s.name} all ports` }]);
    }
  }
  part.protocols = [...protos].sort();
  return part;
}

/** Per-service memo for {@link nftModel}: service id → (JSON fingerprint, part). */
export type NftModelMemo = Map<string, { fp: string; part: ServicePart }>;

/**
 * Build the keyed model of a table (pure). With `memo` (from the previous call), services whose
 * JSON is unchanged reuse their rendered part, and the memo is updated to this table.
 * @throws ShoalError(InvalidArgument) from {@link validateTable}.
 */
export function nftModel(t: ServiceTable, memo?: NftModelMemo): NftModel & { parts: Map<string, ServicePart> } {
  validateTable(t);
  const m: NftModel & { parts: Map<string, ServicePart> } = { chains: new Map(), svcVips: new Map(), vipAll: new Map(), mesh: new Map(), postrouting: [], parts: new Map() };
  const services = [...t.services].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const seen = new Set<string>();
  for (const s of services) {
    let part: ServicePart;
    if (memo) {
      const fp = JSON.stringify(s);
      const hit = memo.get(s.id);
      if (hit && hit.fp === fp) part = hit.part;
      else {
        part = servicePart(s);
        memo.set(s.id, { fp, part });
      }
      seen.add(s.id);
    } else {
      part = servicePart(s);
    }
    m.parts.set(s.id, part);
    for (const [k, v] of part.chains) m.chains.set(k, v);
    for (const [k, v] of part.svcVips) m.svcVips.set(k, v);
    for (const [k, v] of part.vipAll) m.vipAll.set(k, v);
    for (const [k, v] of part.mesh) m.mesh.set(k, v);
  }
  if (memo) for (const k of [...memo.keys()]) if (!seen.has(k)) memo.delete(k);
  m.postrouting.push(
    t.clusterCidr
      ? `ct status dnat ip saddr != ${t.clusterCidr} masquerade ${comment('routing mesh: reply must return via the ingress host')}`
      : `ct status dnat masquerade ${comment('routing mesh: reply must return via the ingress host')}`,
  );
  for (const h of t.hairpin ?? []) {
    m.postrouting.push(`ct status dnat ip saddr ${h.subnet} oifname "${h.bridge}" masquerade ${comment('hairpin: client and backend on this bridge')}`);
  }
  return m;
}

const elemText = (k: string, e: Elem) => `${k} ${comment(e.comment)} : goto ${e.chain}`;

function mapBlock(name: string, type: string, elems: Map<string, Elem>): string[] {
  const out = [`\tmap ${name} {`, `\t\ttype ${type} : verdict`];
  if (elems.size > 0) {
    const list = [...elems].map(([k, e]) => elemText(k, e));
    out.push(`\t\telements = {`);
    list.forEach((l, i) => out.push(`\t\t\t${l}${i < list.length - 1 ? ',' : ''}`));
    out.push(`\t\t}`);
  }
  out.push('\t}');
  return out;
}

const VMAP_LOOKUPS = [
  'ip daddr . meta l4proto . th dport vmap @svc_vips',
  'ip daddr . meta l4proto vmap @svc_vip_all',
  'fib daddr type local meta l4proto . th dport vmap @mesh_ports',
];

/**
 * Render the whole table as one transaction: `table ip shoal` + `delete table ip shoal` prelude,
 * then the full declaration. Pure; output is deterministic (services sorted by id, ports by
 * protocol/port, backends by address) so it can be compared to golden files.
 * @throws ShoalError(InvalidArgument) on a bad table.
 */
export function renderNftRuleset(t: ServiceTable, opts: NftOptions = {}): string {
  return renderNftModel(nftModel(t), opts);
}

/** {@link renderNftRuleset} on an already built model (pure). */
export function renderNftModel(m: NftModel, opts: NftOptions): string {
  const name = opts.table ?? 'shoal';
  const pre = opts.dnatPriority ?? -110;
  const post = opts.snatPriority ?? 110;
  const out: string[] = [`table ip ${name}`, `delete table ip ${name}`, `table ip ${name} {`];
  out.push(...mapBlock('svc_vips', 'ipv4_addr . inet_proto . inet_service', m.svcVips));
  out.push(...mapBlock('svc_vip_all', 'ipv4_addr . inet_proto', m.vipAll));
  out.push(...mapBlock('mesh_ports', 'inet_proto . inet_service', m.mesh));
  for (const [chain, rules] of m.chains) {
    out.push(`\tchain ${chain} {`, ...rules.map((r) => `\t\t${r}`), '\t}');
  }
  for (const hook of ['prerouting', 'output']) {
    out.push(`\tchain ${hook} {`, `\t\ttype nat hook ${hook} priority ${pre}; policy accept;`, ...VMAP_LOOKUPS.map((r) => `\t\t${r}`), '\t}');
  }
  out.push('\tchain postrouting {', `\t\ttype nat hook postrouting priority ${post}; policy accept;`, ...m.postrouting.map((r) => `\t\t${r}`), '\t}');
  out.push('}');
  return out.join('\n') + '\n';
}

function sameRules(a: string[] | undefined, b: string[] | undefined): boolean {
  return !!a && !!b && a.length === b.length && a.every((r, i) => r === b[i]);
}

/**
 * Render the smallest transaction that turns table `prev` (as last applied) into `next`:
 * new chains are added, changed chains flushed and refilled, map elements added/deleted
 * (a changed element is deleted then re-added), removed chains deleted last. Returns `''` when
 * nothing changed, and `null` when an incremental update cannot express the change (postrouting
 * rules differ) — then apply {@link renderNftRuleset}. Pure.
 */
export function renderNftUpdate(prev: ServiceTable, next: ServiceTable, opts: NftOptions = {}): string | null {
  return diffNftModels(nftModel(prev), nftModel(next), opts);
}

/** {@link renderNftUpdate} on already built models (pure). */
export function diffNftModels(a: NftModel, b: NftModel, opts: NftOptions = {}): string | null {
  if (!sameRules(a.postrouting, b.postrouting)) return null;
  const t = `ip ${opts.table ?? 'shoal'}`;
  const out: string[] = [];
  for (const [chain, rules] of b.chains) {
    const old = a.chains.get(chain);
    if (!old) {
      out.push(`add chain ${t} ${chain}`, ...rules.map((r) => `add rule ${t} ${chain} ${r}`));
    } else if (old !== rules && !sameRules(old, rules)) {
      out.push(`flush chain ${t} ${chain}`, ...rules.map((r) => `add rule ${t} ${chain} ${r}`));
    }
  }
  for (const [map, ea, eb] of [['svc_vips', a.svcVips, b.svcVips], ['svc_vip_all', a.vipAll, b.vipAll], ['mesh_ports', a.mesh, b.mesh]] as const) {
    for (const [k, e] of ea) {
      const n = eb.get(k);
      if (!n || n.chain !== e.chain || n.comment !== e.comment) out.push(`delete element ${t} ${map} { ${k} }`);
    }
    for (const [k, e] of eb) {
      const o = ea.get(k);
      if (!o || o.chain !== e.chain || o.comment !== e.comment) out.push(`add element ${t} ${map} { ${elemText(k, e)} }`);
    }
  }
  for (const chain of a.chains.keys()) {
    if (!b.chains.has(chain)) out.push(`delete chain ${t} ${chain}`);
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/** Where and how `nft` runs. */
export interface NftRunner {
  /** Apply one transaction (nft -f - text). @throws Error with nft's stderr on a non-zero exit. */
  apply(tx: string): Promise<void>;
  /** `nft list table ip <name>` text, or null when the table does not exist. */
  list(table: string): Promise<string | null>;
  /** `nft -c -f -`: check a transaction without committing it. @throws like apply. */
  check(tx: string): Promise<void>;
}

/** Error thrown when nft rejects a transaction (the whole transaction is then not applied). */
export class NftError extends Error {
  constructor(readonly stderr: string, readonly code: number) {
    super(`nft -f - exited ${code}: ${stderr.trim().split('\n').slice(0, 12).join('\n')}`);
    this.name = 'NftError';
  }
}

/**
 * Runner that spawns `/usr/sbin/nft -f -` with the transaction on stdin, optionally inside a
 * network namespace (`nsenter --net=/var/run/netns/<netns>`).
 */
export function nftRunner(opts: { netns?: string; nft?: string } = {}): NftRunner {
  const bin = opts.nft ?? NFT;
  const go = async (args: string[], tx: string) => {
    const r = await run([bin, ...args], { input: tx, netns: opts.netns, timeoutMs: 60000 });
    if (r.code !== 0) throw new NftError(r.stderr || r.stdout, r.code);
  };
  return {
    apply: (tx) => go(['-f', '-'], tx),
    check: (tx) => go(['-c', '-f', '-'], tx),
    async list(table) {
      const r = await run([bin, 'list', 'table', 'ip', table], { netns: opts.netns });
      return r.code === 0 ? r.stdout : null;
    },
  };
}

export interface NftDataplaneOptions extends NftOptions {
  /** Run nft (and conntrack) inside this network namespace (name under /var/run/netns or a path). */
  netns?: string;
  /** Injected runner (default {@link nftRunner} for `netns`). */
  runner?: NftRunner;
  /** Rewrite the whole table every N syncs even when incremental would do (default 100; 0 = never). */
  fullResyncEvery?: number;
  /** Delete conntrack entries of removed backends (default true; skipped quietly without the tool). */
  conntrack?: boolean;
}

/**
 * nftables {@link Dataplane}. The first sync (and every `fullResyncEvery`-th, and any sync after a
 * failure) rewrites the whole table atomically; the others send only the changed services.
 */
export class NftDataplane implements Dataplane {
  readonly kind = 'nftables' as const;
  private readonly runner: NftRunner;
  private last: ReturnType<typeof nftModel> | null = null;
  private readonly memo: NftModelMemo = new Map();
  private syncs = 0;
  private readonly serial = new Serial();

  constructor(private readonly opts: NftDataplaneOptions = {}) {
    this.runner = opts.runner ?? nftRunner({ netns: opts.netns });
  }

  probe(): Promise<Capabilities> {
    return probeHost({ netns: this.opts.netns });
  }

  sync(table: ServiceTable): Promise<SyncResult> {
    return this.serial.run(async () => {
      const t0 = performance.now();
      const every = this.opts.fullResyncEvery ?? 100;
      const prev = this.last;
      // The memo makes unchanged services cost one JSON.stringify; a failed sync drops it.
      const next = nftModel(table, this.memo);
      let mode: SyncResult['mode'] = 'full';
      let text: string | null = null;
      if (prev && !(every > 0 && this.syncs % every === 0)) {
        text = diffNftModels(prev, next, this.opts);
        mode = text === null ? 'full' : text === '' ? 'noop' : 'incremental';
      }
      if (text === null) text = renderNftModel(next, this.opts);
      this.syncs++;
      if (mode !== 'noop') {
        try {
          await this.runner.apply(text);
        } catch (e) {
          if (mode !== 'incremental') {
            this.reset();
            throw e;
          }
          // The kernel state drifted from what we last applied (someone flushed the table?): rewrite it.
          text = renderNftModel(next, this.opts);
          mode = 'full';
          try {
            await this.runner.apply(text);
          } catch (e2) {
            this.reset();
            throw e2;
          }
        }
      }
      this.last = next;
      if (prev && (this.opts.conntrack ?? true)) {
        const removed: { protocol: L4Protocol; ip: string }[] = [];
        for (const [id, p] of prev.parts) {
          const keep = new Set(next.parts.get(id)?.backendIps ?? []);
          for (const ip of p.backendIps) if (!keep.has(ip)) for (const protocol of p.protocols) removed.push({ protocol, ip });
        }
        if (removed.length) await conntrackCleanup(removed, { netns: this.opts.netns });
      }
      return { mode, bytes: mode === 'noop' ? 0 : Buffer.byteLength(text), ms: performance.now() - t0 };
    });
  }

  private reset(): void {
    this.last = null;
    this.memo.clear();
  }

  close(): Promise<void> {
    return this.serial.run(async () => {
      const name = this.opts.table ?? 'shoal';
      await this.runner.apply(`table ip ${name}\ndelete table ip ${name}\n`);
      this.reset();
    });
  }
}
