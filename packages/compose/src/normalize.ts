/**
 * One compose file's short syntaxes turned into the long ones, per file and before the merge (the
 * merge's unique keys — a port, a mount target — are only comparable in the long form), and the
 * legacy format (services at the top level, `links:`) read as services. Positions stay attached to
 * key paths (`Origins`); a value that cannot be read throws a ComposeError at its position.
 */
import { parse as shellParse } from 'shell-quote';
import { ComposeError, RESET, joinPath, posOf, type Origins } from './source.js';

export type Dict = Record<string, unknown>;

/** A published port, long syntax (Compose Specification `ports`). */
export interface PortConfig {
  target: number;
  published?: number;
  protocol: 'tcp' | 'udp';
  mode: 'ingress' | 'host';
  host_ip?: string;
  name?: string;
}

/** A service volume, long syntax. */
export interface VolumeMount {
  type: 'volume' | 'bind' | 'tmpfs' | 'npipe' | 'cluster' | 'image';
  source?: string;
  target: string;
  read_only?: boolean;
  bind?: { propagation?: string; create_host_path?: boolean };
  volume?: { nocopy?: boolean; subpath?: string };
  tmpfs?: { size?: number | string; mode?: number };
  consistency?: string;
}

/** A secret or config a service uses, long syntax. */
export interface FileRef {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

/** `depends_on` entry, long syntax. */
export interface Dependency {
  condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  required: boolean;
  restart?: boolean;
}

const TOP_LEVEL = new Set(['version', 'name', 'include', 'services', 'networks', 'volumes', 'secrets', 'configs', 'models']);

/**
 * Files without a `services:` key whose top-level entries look like services (the version 1
 * format, often with `links:`) are rewritten as `services:`. Docker refuses such files; Shoal
 * reads them with a warning. @returns the data to use and whether it was legacy.
 */
export function fromLegacy(data: unknown, origins: Origins, warn: (m: string) => void): { data: unknown; legacy: boolean } {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return { data, legacy: false };
  const d = data as Dict;
  if ('services' in d) return { data, legacy: false };
  const keys = Object.keys(d).filter((k) => !k.startsWith('x-'));
  if (keys.length === 0 || keys.some((k) => TOP_LEVEL.has(k))) return { data, legacy: false };
  if (!keys.every((k) => d[k] && typeof d[k] === 'object' && !Array.isArray(d[k]))) return { data, legacy: false };
  warn('this file has no "services:" key: reading it as the legacy version 1 format (services at the top level; links become network aliases); Docker refuses this format, consider moving the services under "services:"');
  // Positions move under services.
  for (const [k, v] of [...origins]) if (k !== '') origins.set(`services.${k}`, v);
  const services: Dict = {};
  for (const k of keys) services[k] = d[k];
  // `links: [db]` or `[db:alias]`: the target service answers to the alias too. Names already
  // resolve between services of a stack; the aliases keep `alias` working.
  const aliases = new Map<string, Set<string>>();
  for (const [name, svc] of Object.entries(services)) {
    const links = (svc as Dict)['links'];
    if (!Array.isArray(links)) continue;
    for (const l of links) {
      const [target, alias] = String(l).split(':');
      if (target && alias && alias !== target) {
        let set = aliases.get(target);
        if (!set) aliases.set(target, (set = new Set()));
        set.add(alias);
      }
    }
    delete (svc as Dict)['links'];
    void name;
  }
  for (const [target, set] of aliases) {
    const svc = services[target] as Dict | undefined;
    if (svc) svc['networks'] = { default: { aliases: [...set] } };
  }
  const out: Dict = { services };
  for (const k of Object.keys(d)) if (k.startsWith('x-')) out[k] = d[k];
  return { data: out, legacy: true };
}

/** Go-style duration string ("1m30s", "10s", "500ms", "2h") → ms. @throws Error naming it. */
export function parseDuration(s: string | number): number {
  if (typeof s === 'number') return s * 1000; // the schema wants strings; a bare number is read as seconds
  const t = s.trim();
  if (t === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let at = 0;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  while ((m = re.exec(t))) {
    total += Number(m[1]) * unit[m[2]!]!;
    at = re.lastIndex;
  }
  if (at !== t.length || t === '') throw new Error(`${JSON.stringify(s)} is not a duration; use e.g. 10s, 1m30s or 500ms`);
  return Math.round(total);
}

/** Byte size ("512m", "1g", "1024", "1.5GB", 2048) → bytes. @throws Error naming it. */
export function parseBytes(s: string | number): number {
  if (typeof s === 'number') return Math.round(s);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?\s*$/i.exec(s);
  if (!m) throw new Error(`${JSON.stringify(s)} is not a size; use e.g. 512m, 1g or 1048576`);
  const pow = { '': 0, k: 1, m: 2, g: 3, t: 4, p: 5 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't' | 'p'];
  return Math.round(Number(m[1]) * 1024 ** pow);
}

/** A command or entrypoint: a list as is, a string split with shell rules (Compose). */
export function commandList(v: unknown): string[] | undefined {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) return v.map(String);
  const parts = shellParse(String(v));
  return parts.map((p) => (typeof p === 'string' ? p : 'op' in p ? p.op : String((p as { pattern?: string }).pattern ?? ''))) as string[];
}

/** A list of `K=V` (or `K` alone) or a mapping → mapping; `null` values mean "take it from the environment". */
export function listOrDict(v: unknown, sep = '='): Record<string, string | null> {
  if (!v) return {};
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = String(item);
      const i = s.indexOf(sep);
      if (i < 0) out[s] = null;
      else out[s.slice(0, i)] = s.slice(i + 1);
    }
    return out;
  }
  for (const [k, x] of Object.entries(v as Dict)) out[k] = x === null || x === undefined ? null : String(x);
  return out;
}

/**
 * `ports` short syntax `[[HOST_IP:][PUBLISHED[-END]]:]TARGET[-END][/PROTO]` (ranges expand into one
 * entry per port), or long syntax; every number a port 1–65535.
 * @throws Error naming the value.
 */
export function parsePorts(list: unknown[]): PortConfig[] {
  const out: PortConfig[] = [];
  const port = (s: string, whole: string): number => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw new Error(`${JSON.stringify(s)} is not a port (1-65535) in ${JSON.stringify(whole)}`);
    return n;
  };
  const range = (s: string, whole: string): [number, number] => {
    const [a, b] = s.split('-');
    const lo = port(a!, whole);
    const hi = b === undefined ? lo : port(b, whole);
    if (hi < lo) throw new Error(`port range ${JSON.stringify(s)} ends before it starts in ${JSON.stringify(whole)}`);
    return [lo, hi];
  };
  for (const item of list) {
    if (item && typeof item === 'object') {
      const p = item as Dict;
      const target = port(String(p['target']), JSON.stringify(item));
      const protocol = String(p['protocol'] ?? 'tcp').toLowerCase();
      if (protocol !== 'tcp' && protocol !== 'udp') throw new Error(`protocol ${JSON.stringify(protocol)} is not supported; use tcp or udp`);
      const mode = String(p['mode'] ?? 'ingress');
      if (mode !== 'ingress' && mode !== 'host') throw new Error(`port mode ${JSON.stringify(mode)} is not supported; use ingress or host`);
      const pub = p['published'];
      if (pub !== undefined && pub !== null && pub !== '') {
        const [lo, hi] = range(String(pub), JSON.stringify(item));
        if (hi !== lo) {
          for (let x = lo; x <= hi; x++) out.push({ target, published: x, protocol, mode, ...(p['host_ip'] ? { host_ip: String(p['host_ip']) } : {}) });
          continue;
        }
        out.push({ target, published: lo, protocol, mode, ...(p['host_ip'] ? { host_ip: String(p['host_ip']) } : {}), ...(p['name'] ? { name: String(p['name']) } : {}) });
      } else {
        out.push({ target, protocol, mode, ...(p['name'] ? { name: String(p['name']) } : {}) });
      }
      continue;
    }
    const whole = String(item);
    let s = whole;
    let protocol: 'tcp' | 'udp' = 'tcp';
    const slash = s.lastIndexOf('/');
    if (slash >= 0) {
      const pr = s.slice(slash + 1).toLowerCase();
      if (pr !== 'tcp' && pr !== 'udp') throw new Error(`protocol ${JSON.stringify(pr)} is not supported in ${JSON.stringify(whole)}; use tcp or udp`);
      protocol = pr;
      s = s.slice(0, slash);
    }
    const parts = s.split(':');
    if (parts.length > 3) throw new Error(`${JSON.stringify(whole)} is not a port mapping; use [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]`);
    const targetPart = parts.pop()!;
    const publishedPart = parts.pop();
    const hostIp = parts.pop();
    const [tlo, thi] = range(targetPart, whole);
    if (publishedPart === undefined || publishedPart === '') {
      for (let x = tlo; x <= thi; x++) out.push({ target: x, protocol, mode: 'ingress' });
      continue;
    }
    const [plo, phi] = range(publishedPart, whole);
    if (phi - plo !== thi - tlo && thi !== tlo) throw new Error(`the published and target ranges of ${JSON.stringify(whole)} differ in size`);
    for (let i = 0; i <= phi - plo; i++) {
      out.push({ target: tlo + (thi === tlo ? 0 : i), published: plo + i, protocol, mode: 'ingress', ...(hostIp ? { host_ip: hostIp } : {}) });
    }
  }
  return out;
}

/** `volumes` of a service: short `[SOURCE:]TARGET[:MODE]` or long syntax. @throws Error naming the value. */
export function parseVolumes(list: unknown[]): VolumeMount[] {
  return list.map((item) => {
    if (item && typeof item === 'object') {
      const v = item as Dict & VolumeMount;
      if (!v.target) throw new Error(`volume ${JSON.stringify(item)} has no target; give the path in the container`);
      return { ...v, type: (v.type ?? 'volume') } as VolumeMount;
    }
    const s = String(item);
    const parts = s.split(':');
    if (parts.length === 1) return { type: 'volume', target: s }; // anonymous volume
    let mode: string | undefined;
    if (parts.length >= 3 || (parts.length === 2 && /^(ro|rw|z|Z|nocopy|[rs]?(shared|slave|private))(,.*)?$/.test(parts[1]!) && !parts[1]!.startsWith('/'))) {
      if (parts.length >= 3) mode = parts.pop();
    }
    const target = parts.pop()!;
    const source = parts.join(':');
    if (!target.startsWith('/')) throw new Error(`${JSON.stringify(s)}: the target ${JSON.stringify(target)} must be an absolute path in the container`);
    const bind = /^(\.|\/|~)/.test(source);
    const opts = new Set((mode ?? '').split(',').filter(Boolean));
    const out: VolumeMount = { type: bind ? 'bind' : 'volume', source, target };
    if (opts.has('ro')) out.read_only = true;
    if (opts.has('nocopy')) out.volume = { nocopy: true };
    const prop = [...opts].find((o) => /^r?(shared|slave|private)$/.test(o));
    if (prop) out.bind = { propagation: prop };
    return out;
  });
}

/** `secrets`/`configs` of a service: a name, or the long syntax. */
export function parseFileRefs(list: unknown[]): FileRef[] {
  return list.map((item) => {
    if (item && typeof item === 'object') {
      const r = item as Dict;
      return {
        source: String(r['source']),
        ...(r['target'] !== undefined ? { target: String(r['target']) } : {}),
        ...(r['uid'] !== undefined ? { uid: String(r['uid']) } : {}),
        ...(r['gid'] !== undefined ? { gid: String(r['gid']) } : {}),
        ...(typeof r['mode'] === 'number' ? { mode: r['mode'] } : {}),
      };
    }
    return { source: String(item) };
  });
}

/** `depends_on`: a list of names (started), or the long syntax. */
export function parseDependsOn(v: unknown): Record<string, Dependency> {
  if (!v) return {};
  if (Array.isArray(v)) return Object.fromEntries(v.map((n) => [String(n), { condition: 'service_started', required: true }]));
  const out: Record<string, Dependency> = {};
  for (const [k, d] of Object.entries(v as Dict)) {
    const dd = (d ?? {}) as Dict;
    const condition = String(dd['condition'] ?? 'service_started');
    if (!['service_started', 'service_healthy', 'service_completed_successfully'].includes(condition)) {
      throw new Error(`depends_on ${k}: condition ${JSON.stringify(condition)} is not one of service_started, service_healthy, service_completed_successfully`);
    }
    out[k] = { condition: condition as Dependency['condition'], required: dd['required'] !== false, ...(dd['restart'] !== undefined ? { restart: !!dd['restart'] } : {}) };
  }
  return out;
}

/** A service's `networks`: a list of names or a mapping (values may be null). */
export function parseServiceNetworks(v: unknown): Record<string, { aliases?: string[] } | null> {
  if (!v) return {};
  if (Array.isArray(v)) return Object.fromEntries(v.map((n) => [String(n), null]));
  const out: Record<string, { aliases?: string[] } | null> = {};
  for (const [k, x] of Object.entries(v as Dict)) out[k] = x ? { ...(Array.isArray((x as Dict)['aliases']) ? { aliases: ((x as Dict)['aliases'] as unknown[]).map(String) } : {}) } : null;
  return out;
}

/** A string or a list of strings → list. */
export function stringList(v: unknown): string[] {
  if (v === null || v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

/**
 * Normalizes one file's services in place (the shapes above), so that files can be merged.
 * @throws ComposeError at the offending value.
 */
export function normalizeFile(data: Dict, origins: Origins): Dict {
  const services = (data['services'] ?? {}) as Record<string, Dict | null>;
  for (const [name, svc0] of Object.entries(services)) {
    if (!svc0) {
      services[name] = {};
      continue;
    }
    const svc = svc0;
    const at = (key: string, fn: (v: unknown) => unknown): void => {
      if (!(key in svc) || svc[key] === RESET) return;
      try {
        svc[key] = fn(svc[key]);
      } catch (e) {
        if (e instanceof ComposeError) throw e;
        const p = joinPath(['services', name, key]);
        // Point at the list item when the message quotes one.
        let pos = posOf(origins, p);
        if (Array.isArray(svc[key])) {
          const i = (svc[key] as unknown[]).findIndex((x) => (e as Error).message.includes(JSON.stringify(String(typeof x === 'object' ? '' : x)).slice(1, -1)) && typeof x !== 'object');
          if (i >= 0) {
            const ip = `${p}[${i}]`;
            pos = posOf(origins, ip);
            throw new ComposeError((e as Error).message, ip, pos);
          }
        }
        throw new ComposeError((e as Error).message, p, pos);
      }
    };
    at('command', (v) => commandList(v));
    at('entrypoint', (v) => commandList(v));
    at('ports', (v) => parsePorts(v as unknown[]));
    at('volumes', (v) => parseVolumes(v as unknown[]));
    at('secrets', (v) => parseFileRefs(v as unknown[]));
    at('configs', (v) => parseFileRefs(v as unknown[]));
    at('environment', (v) => listOrDict(v));
    at('labels', (v) => listOrDict(v));
    at('depends_on', (v) => parseDependsOn(v));
    at('networks', (v) => parseServiceNetworks(v));
    at('extra_hosts', (v) => (Array.isArray(v) ? v.map(String) : Object.entries(v as Dict).map(([h, ip]) => `${h}:${String(ip)}`)));
    at('dns', stringList);
    at('dns_search', stringList);
    at('tmpfs', stringList);
    at('env_file', (v) => (Array.isArray(v) ? v : [v]).map((x) => (typeof x === 'string' ? { path: x, required: true } : x)));
    at('sysctls', (v) => listOrDict(v));
    const deploy = svc['deploy'] as Dict | undefined;
    if (deploy && deploy['labels']) deploy['labels'] = listOrDict(deploy['labels']);
    const hc = svc['healthcheck'] as Dict | undefined;
    if (hc && typeof hc['test'] === 'string') hc['test'] = ['CMD-SHELL', hc['test']];
  }
  return data;
}
