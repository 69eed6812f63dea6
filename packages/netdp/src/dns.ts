/**
 * Service DNS: the per-node resolver tasks reach at their bridge gateway (`--dns 10.97.i.1`,
 * docs/NETWORKING.md "Service discovery"). Swarm semantics (libnetwork `service_common.go`, read for behaviour only):
 * - `NAME` → the service VIP (vip mode) or the healthy task IPs (dnsrr);
 * - `tasks.NAME` → the healthy task IPs;
 * - only networks the asking task is attached to are searched (the asker is found by source IP);
 * - everything else is forwarded to the host's resolvers (/etc/resolv.conf), SERVFAIL when none
 *   answers within `forwardTimeoutMs`.
 * Wire format by `dns-packet`; UDP and TCP (RFC 1035 §4.2). Records are swapped atomically by
 * {@link ServiceDns.setRecords}. TTL defaults to 0 so clients re-ask (swarm's proto warns dnsrr
 * answers must not be cached).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import * as dnsPacket from 'dns-packet';
import type { Packet, Question } from 'dns-packet';
import { isIPv4 } from './table.js';

/** One service as seen on one network. */
export interface DnsServiceRecord {
  /** Service name; matched case-insensitively. */
  name: string;
  /** Extra names (network aliases) answered like `name`. */
  aliases?: string[];
  networkId: string;
  mode: 'vip' | 'dnsrr';
  /** VIP on this network (vip mode). */
  vip?: string;
  /** Healthy (backend-eligible) task IPs on this network. */
  taskIps: string[];
}

export interface DnsRecords {
  services: DnsServiceRecord[];
  /** Who asks: task IP → the networks that task is attached to. */
  clients: { ip: string; networks: string[] }[];
}

export interface Upstream {
  host: string;
  port: number;
}

export interface ServiceDnsOptions {
  /** Bind address, e.g. the bridge gateway `10.97.1.1` (default `127.0.0.1`). */
  host?: string;
  /** Port (default 53; 0 = pick one, see {@link ServiceDns.address}). */
  port?: number;
  /** Also serve DNS over TCP on the same port (default true). */
  tcp?: boolean;
  /** Upstream resolvers (default: nameservers in /etc/resolv.conf, port 53). */
  upstreams?: Upstream[];
  /** Give up forwarding after this many ms and answer SERVFAIL (default 800). */
  forwardTimeoutMs?: number;
  /** TTL of our answers, seconds (default 0). */
  ttl?: number;
  /** Networks searched for askers not in `clients` (default none: their queries are forwarded). */
  unknownClientNetworks?: string[];
}

/** Nameserver addresses from resolv.conf text (pure). IPv4 only; `127.0.0.11` (Docker's) dropped. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && isIPv4(m[1]!) && m[1] !== '127.0.0.11') out.push(m[1]!);
  }
  return out;
}

interface Index {
  /** lowercase name → records */
  byName: Map<string, DnsServiceRecord[]>;
  clients: Map<string, Set<string>>;
}

function buildIndex(r: DnsRecords): Index {
  const byName = new Map<string, DnsServiceRecord[]>();
  for (const s of r.services) {
    for (const n of [s.name, ...(s.aliases ?? [])]) {
      const k = n.toLowerCase().replace(/\.$/, '');
      const l = byName.get(k) ?? [];
      l.push(s);
      byName.set(k, l);
    }
  }
  const clients = new Map<string, Set<string>>();
  for (const c of r.clients) {
    const s = clients.get(c.ip) ?? new Set<string>();
    for (const n of c.networks) s.add(n);
    clients.set(c.ip, s);
  }
  return { byName, clients };
}

/**
 * Resolve a name for an asker (pure). Returns the A addresses, or `null` when the name is not a
 * service on any network the asker shares (the caller forwards it).
 */
export function resolveServiceName(idx: { byName: Map<string, DnsServiceRecord[]>; clients: Map<string, Set<string>> }, name: string, clientIp: string, unknownNetworks: readonly string[] = []): string[] | null {
  const nets = idx.clients.get(clientIp) ?? new Set(unknownNetworks);
  if (nets.size === 0) return null;
  let q = name.toLowerCase().replace(/\.$/, '');
  let tasks = false;
  let recs = idx.byName.get(q);
  if (!recs && q.startsWith('tasks.')) {
    q = q.slice(6);
    tasks = true;
    recs = idx.byName.get(q);
  }
  const mine = (recs ?? []).filter((r) => nets.has(r.networkId));
  if (mine.length === 0) return null;
  const ips = new Set<string>();
  for (const r of mine) {
    if (!tasks && r.mode === 'vip' && r.vip) ips.add(r.vip);
    else for (const ip of r.taskIps) ips.add(ip);
  }
  return [...ips];
}

const RCODE_SERVFAIL = 2;

/**
 * The resolver. `start()` binds UDP (and TCP); `setRecords()` swaps the whole record set in one
 * assignment, so a query sees either the old or the new set, never a mix.
 */
export class ServiceDns {
  private idx: Index = buildIndex({ services: [], clients: [] });
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  private readonly tcpConns = new Set<net.Socket>();
  private rotate = 0;
  private readonly upstreams: Upstream[];
  /** Counters: answered locally, forwarded, SERVFAIL after forwarding failed. */
  readonly stats = { local: 0, forwarded: 0, servfail: 0 };

  constructor(private readonly opts: ServiceDnsOptions = {}) {
    const self = `${opts.host ?? '127.0.0.1'}:${opts.port ?? 53}`;
    this.upstreams = (opts.upstreams ?? readUpstreams()).filter((u) => `${u.host}:${u.port}` !== self);
  }

  /** Replace every record atomically. */
  setRecords(r: DnsRecords): void {
    this.idx = buildIndex(r);
  }

  /**
   * Bind the sockets.
   * @throws Error (EADDRINUSE, EADDRNOTAVAIL, EACCES) naming the address.
   */
  async start(): Promise<void> {
    const host = this.opts.host ?? '127.0.0.1';
    let port = this.opts.port ?? 53;
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      void this.answer(msg, rinfo.address, true).then((out) => {
        if (out) udp.send(out, rinfo.port, rinfo.address);
      });
    });
    try {
      udp.bind(port, host);
      await once(udp, 'listening');
    } catch (e) {
      udp.close();
      throw new Error(`DNS cannot bind udp ${host}:${port}: ${(e as Error).message}; pick a free address/port`);
    }
    udp.on('error', () => {});
    this.udp = udp;
    port = udp.address().port;
    if (this.opts.tcp ?? true) {
      const srv = net.createServer((c) => this.serveTcp(c));
      try {
        srv.listen(port, host);
        await once(srv, 'listening');
      } catch (e) {
        await this.close();
        throw new Error(`DNS cannot bind tcp ${host}:${port}: ${(e as Error).message}; pick a free address/port`);
      }
      this.tcp = srv;
    }
  }

  /** Bound address (after start). */
  address(): { host: string; port: number } {
    if (!this.udp) throw new Error('ServiceDns not started; call start() first');
    const a = this.udp.address();
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    const u = this.udp;
    const t = this.tcp;
    this.udp = null;
    this.tcp = null;
    if (u) await new Promise<void>((r) => u.close(() => r()));
    for (const c of this.tcpConns) c.destroy();
    if (t) await new Promise<void>((r) => t.close(() => r()));
  }

  private serveTcp(c: net.Socket): void {
    this.tcpConns.add(c);
    c.on('close', () => this.tcpConns.delete(c));
    c.on('error', () => {});
    c.setTimeout(10000, () => c.destroy());
    let buf = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        void this.answer(msg, c.remoteAddress?.replace(/^::ffff:/, '') ?? '', false).then((out) => {
          if (out && !c.destroyed) {
            const hdr = Buffer.alloc(2);
            hdr.writeUInt16BE(out.length);
            c.write(Buffer.concat([hdr, out]));
          }
        });
      }
    });
  }

  /** Build the reply to one query (never throws; malformed packets are dropped → null). */
  private async answer(msg: Buffer, clientIp: string, udp: boolean): Promise<Buffer | null> {
    let q: Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return null;
    }
    const question = q.questions?.[0];
    if (q.type !== 'query' || !question) return null;
    const ips = question.class === undefined || question.class === 'IN' ? resolveServiceName(this.idx, question.name, clientIp, this.opts.unknownClientNetworks) : null;
    if (ips) {
      this.stats.local++;
      return this.localReply(q, question, ips, udp);
    }
    return this.forward(msg, q);
  }

  private localReply(q: Packet, question: Question, ips: string[], udp: boolean): Buffer {
    const rd = (q.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    // Rotate so naive clients that take the first address spread over the tasks.
    const n = ips.length;
    const start = n ? this.rotate++ % n : 0;
    const ordered = ips.map((_, i) => ips[(start + i) % n]!);
    const ttl = this.opts.ttl ?? 0;
    const wantA = question.type === 'A' || (question.type as string) === 'ANY';
    const answers = wantA ? ordered.map((ip) => ({ type: 'A' as const, class: 'IN' as const, name: question.name, ttl, data: ip })) : [];
    const reply: Packet = {
      type: 'response', id: q.id, flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE | rd,
      questions: [question], answers,
    };
    let out = dnsPacket.encode(reply);
    if (udp) {
      const opt = q.additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
      const limit = Math.max(512, opt?.udpPayloadSize ?? 512);
      while (out.length > limit && reply.answers!.length > 0) {
        reply.answers = reply.answers!.slice(0, Math.floor(reply.answers!.length / 2));
        reply.flags = (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE;
        out = dnsPacket.encode(reply);
      }
    }
    return out;
  }

  /** Send the raw query to every upstream at once; first reply wins; SERVFAIL on timeout. */
  private async forward(msg: Buffer, q: Packet): Promise<Buffer> {
    this.stats.forwarded++;
    const servfail = () => {
      this.stats.servfail++;
      return dnsPacket.encode({
        type: 'response', id: q.id,
        flags: ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | RCODE_SERVFAIL,
        questions: q.questions ?? [],
      });
    };
    if (this.upstreams.length === 0) return servfail();
    const sock = dgram.createSocket('udp4');
    try {
      const got = await new Promise<Buffer | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), this.opts.forwardTimeoutMs ?? 800);
        sock.on('error', () => {});
        sock.on('message', (m) => {
          if (m.length >= 2 && m.readUInt16BE(0) === msg.readUInt16BE(0)) {
            clearTimeout(timer);
            resolve(m);
          }
        });
        for (const u of this.upstreams) sock.send(msg, u.port, u.host);
      });
      return got ?? servfail();
    } finally {
      sock.close();
    }
  }
}

function readUpstreams(): Upstream[] {
  try {
    return parseResolvConf(readFileSync('/etc/resolv.conf', 'utf8')).map((host) => ({ host, port: 53 }));
  } catch {
    return [];
  }
}
