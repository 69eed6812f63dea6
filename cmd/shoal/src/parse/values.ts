import { MAX_DURATION_MS, MAX_DURATION_TEXT, serviceNameProblem, type PortConfig } from '@shoal/api';
import { UsageError } from '../errors.js';

/**
 * Parsers for flag values. Pure; each throws UsageError with a one-line message that names the bad
 * value and says what is expected.
 */

/** Nanoseconds per unit of a Go duration. */
const DURATION_UNITS: Record<string, bigint> = {
  ns: 1n, us: 1_000n, 'µs': 1_000n, 'μs': 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n,
};

/** Go's longest `time.Duration`, ns (int64). */
const MAX_DURATION_NS = 9_223_372_036_854_775_807n;

/**
 * Parses a Go duration (`time.ParseDuration` syntax: `300ms`, `5s`, `1m30s`, `1.5h`, `0`) into
 * milliseconds (rounded to a whole ms, at most {@link MAX_DURATION_MS}). Negative durations are
 * refused, and so are durations longer than Go's `time.Duration` allows (2562047h47m16.854775807s),
 * as Docker refuses them.
 * @param what the flag, for the error message (e.g. `--restart-delay`).
 */
export function parseDuration(s: string, what: string): number {
  const bad = (why: string) => new UsageError(`invalid ${what} value ${JSON.stringify(s)}: ${why}`);
  const str = String(s).trim();
  if (str === '0') return 0;
  if (str.startsWith('-')) throw bad('must not be negative');
  const body = str.startsWith('+') ? str.slice(1) : str;
  if (body === '') throw bad('expected a duration such as 5s, 1m30s or 500ms');
  const re = /(\d*)(?:\.(\d*))?([a-zµμ]+)/gy;
  let totalNs = 0n;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body)) !== null && m[0] !== '') {
    const [, whole = '', frac = '', unitName = ''] = m;
    if (whole === '' && frac === '') break; // a unit without a number
    const unit = DURATION_UNITS[unitName];
    if (unit === undefined) throw bad(`unknown unit "${unitName}"; use ns, us, ms, s, m or h`);
    // Exact integer arithmetic: a fraction is truncated to whole ns, as Go does.
    totalNs += BigInt(whole || '0') * unit + (frac ? (BigInt(frac) * unit) / 10n ** BigInt(frac.length) : 0n);
    pos = re.lastIndex;
  }
  if (pos !== body.length) {
    if (/^\d+(\.\d*)?$/.test(body)) throw bad(`missing unit; e.g. ${body}s`);
    throw bad('expected a duration such as 5s, 1m30s or 500ms');
  }
  if (totalNs > MAX_DURATION_NS) throw bad(`longer than the longest duration, ${MAX_DURATION_TEXT}`);
  return Math.min(Number((totalNs + 500_000n) / 1_000_000n), MAX_DURATION_MS);
}

/**
 * Checks a service name (SwarmKit's rule, shared with the control API: letters, digits, `-` and
 * `_`, starting and ending with a letter or digit, at most 63 characters, no dots).
 * @throws UsageError naming the value and the rule.
 */
export function checkServiceName(name: string): string {
  const problem = serviceNameProblem(name);
  if (problem) throw new UsageError(problem);
  return name;
}

/**
 * Parses a whole number ≥ `min` (replicas, attempts, limits). Refuses `abc`, `1.5`, `-1`, ``.
 * @param what the thing being set, for the message (`replicas`, `--restart-max-attempts`).
 */
export function parseCount(s: unknown, what: string, min = 0): number {
  const str = String(s ?? '').trim();
  if (!/^\+?\d+$/.test(str)) throw new UsageError(`invalid ${what} value ${JSON.stringify(String(s ?? ''))}: must be a whole number >= ${min}`);
  const n = Number(str);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`invalid ${what} value ${JSON.stringify(String(s))}: must be a whole number >= ${min}`);
  return n;
}

/**
 * Parses a size with an optional binary unit (Docker `RAMInBytes`): `512m`, `1g`, `1.5GB`, `4096`
 * (bytes), units b, k, m, g, t, p (powers of 1024, case-insensitive, optional trailing `b`).
 */
export function parseBytes(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(b|ib)?$/i.exec(String(s).trim());
  if (!m) throw new UsageError(`invalid ${what} value ${JSON.stringify(s)}: expected a size such as 512m or 1g`);
  const mult = 1024 ** ['', 'k', 'm', 'g', 't', 'p'].indexOf(m[2]!.toLowerCase());
  return Math.round(Number(m[1]) * mult);
}

/** Parses a CPU count (`0.5`, `2`) into nano-CPUs (`--reserve-cpu`, Docker `NanoCPUs`). */
export function parseNanoCpus(s: string, what: string): number {
  const str = String(s).trim();
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(str)) throw new UsageError(`invalid ${what} value ${JSON.stringify(s)}: expected a number of CPUs such as 0.5 or 2`);
  return Math.round(Number(str) * 1e9);
}

/** Parses `KEY=VALUE` (`--label`, `--label-add`); a bare `KEY` means an empty value. */
export function parseKeyValue(s: string, what: string): [string, string] {
  const str = String(s);
  const eq = str.indexOf('=');
  const key = eq < 0 ? str : str.slice(0, eq);
  if (key.trim() === '') throw new UsageError(`invalid ${what} value ${JSON.stringify(str)}: expected KEY=VALUE`);
  return [key, eq < 0 ? '' : str.slice(eq + 1)];
}

/** Collects `KEY=VALUE` flags into a record (later keys win). */
export function parseLabels(values: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const [k, val] = parseKeyValue(v, what);
    out[k] = val;
  }
  return out;
}

/** Checks an environment entry `KEY=VALUE` (a bare `KEY` is allowed, as Docker passes it through). */
export function parseEnv(s: string): string {
  const str = String(s);
  if (str === '' || str.startsWith('=')) throw new UsageError(`invalid --env value ${JSON.stringify(str)}: expected KEY=VALUE`);
  // Like Docker: a bare KEY takes its value from the client's environment when set there.
  if (!str.includes('=') && process.env[str] !== undefined) return `${str}=${process.env[str]}`;
  return str;
}

function parsePortNumber(s: string, spec: string, what: string): number {
  if (!/^\d+$/.test(s)) throw new UsageError(`invalid --publish value ${JSON.stringify(spec)}: ${what} port ${JSON.stringify(s)} must be a number 1-65535`);
  const n = Number(s);
  if (n < 1 || n > 65535) throw new UsageError(`invalid --publish value ${JSON.stringify(spec)}: ${what} port ${n} must be 1-65535`);
  return n;
}

/** `80` or `8000-8010`; anything else (`-1`, `80-`, `a-b`) is named whole in the error. */
function parsePortRange(s: string, spec: string, what: string): [number, number] {
  const range = /^(\d+)-(\d+)$/.exec(s);
  if (!range) {
    const n = parsePortNumber(s, spec, what);
    return [n, n];
  }
  const a = parsePortNumber(range[1]!, spec, what);
  const b = parsePortNumber(range[2]!, spec, what);
  if (b < a) throw new UsageError(`invalid --publish value ${JSON.stringify(spec)}: ${what} port range ${s} ends before it starts`);
  return [a, b];
}

/**
 * Parses a `--publish` value (Docker's two syntaxes):
 * - short `[PUBLISHED:]TARGET[/PROTO]`, ranges allowed (`8080-8081:80-81/udp`), TARGET alone lets
 *   the cluster pick the published port (0);
 * - long `published=8080,target=80[,mode=ingress|host][,protocol=tcp|udp]`.
 * @returns one PortConfig per port (ranges expand).
 */
export function parsePublish(spec: string): PortConfig[] {
  const s = String(spec).trim();
  if (s.includes('=')) {
    let target: number | undefined;
    let published = 0;
    let mode: PortConfig['publishMode'] = 'ingress';
    let protocol: PortConfig['protocol'] = 'tcp';
    for (const part of s.split(',')) {
      const eq = part.indexOf('=');
      const k = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      const v = eq < 0 ? '' : part.slice(eq + 1).trim();
      switch (k) {
        case 'target': target = parsePortNumber(v, s, 'target'); break;
        case 'published': published = parsePortNumber(v, s, 'published'); break;
        case 'mode':
          if (v !== 'ingress' && v !== 'host') throw new UsageError(`invalid --publish value ${JSON.stringify(s)}: mode must be ingress or host`);
          mode = v;
          break;
        case 'protocol':
          if (v !== 'tcp' && v !== 'udp') throw new UsageError(`invalid --publish value ${JSON.stringify(s)}: protocol must be tcp or udp`);
          protocol = v;
          break;
        default:
          throw new UsageError(`invalid --publish value ${JSON.stringify(s)}: unknown field "${k}"; use published, target, mode, protocol`);
      }
    }
    if (target === undefined) throw new UsageError(`invalid --publish value ${JSON.stringify(s)}: missing target=PORT`);
    return [{ protocol, targetPort: target, publishedPort: published, publishMode: mode }];
  }
  const slash = s.indexOf('/');
  const proto = slash < 0 ? 'tcp' : s.slice(slash + 1).toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp') throw new UsageError(`invalid --publish value ${JSON.stringify(s)}: protocol must be tcp or udp`);
  const body = slash < 0 ? s : s.slice(0, slash);
  const parts = body.split(':');
  if (parts.length > 2) throw new UsageError(`invalid --publish value ${JSON.stringify(s)}: a host IP cannot be given for swarm services; use PUBLISHED:TARGET`);
  const [t0, t1] = parsePortRange(parts[parts.length - 1]!, s, 'target');
  let p0 = 0;
  let p1 = 0;
  if (parts.length === 2) [p0, p1] = parsePortRange(parts[0]!, s, 'published');
  if (parts.length === 2 && p1 - p0 !== t1 - t0) {
    throw new UsageError(`invalid --publish value ${JSON.stringify(s)}: published and target ranges must be the same length`);
  }
  const out: PortConfig[] = [];
  for (let i = 0; i <= t1 - t0; i++) {
    out.push({ protocol: proto, targetPort: t0 + i, publishedPort: parts.length === 2 ? p0 + i : 0, publishMode: 'ingress' });
  }
  return out;
}

/**
 * Parses a `service scale` argument `SERVICE=REPLICAS`.
 * @throws UsageError for `web` (no `=`), `=3` (no name) or `web=x` (bad count).
 */
export function parseScaleArg(arg: string): { service: string; replicas: number } {
  const s = String(arg);
  const eq = s.indexOf('=');
  if (eq <= 0) throw new UsageError(`invalid scale argument ${JSON.stringify(s)}: expected SERVICE=REPLICAS, e.g. web=3`);
  const service = s.slice(0, eq);
  const count = s.slice(eq + 1);
  if (!/^\+?\d+$/.test(count) || !Number.isSafeInteger(Number(count))) {
    throw new UsageError(`invalid replicas value ${JSON.stringify(count)} for service ${service}: must be a whole number >= 0`);
  }
  return { service, replicas: Number(count) };
}

/**
 * Splits an `--args` string into words: whitespace separates, single and double quotes group,
 * backslash escapes the next character (outside single quotes).
 */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | '' = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q === "'") {
      if (c === "'") q = ''; else cur += c;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i]!;
      has = true;
    } else if (q === '"') {
      if (c === '"') q = ''; else cur += c;
    } else if (c === '"' || c === "'") {
      q = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (q) throw new UsageError(`invalid --args value ${JSON.stringify(s)}: unterminated ${q === '"' ? 'double' : 'single'} quote`);
  if (has || cur) out.push(cur);
  return out;
}

/** The port `swarm join` uses when the manager address has none (Docker's). */
export const DEFAULT_MANAGER_PORT = 2377;

/**
 * Parses the manager address of `swarm join`: `HOST:PORT`, `[IPv6]:PORT`, or a bare `HOST` /
 * `[IPv6]` (an IPv4 address or a name), which gets Docker's default port 2377.
 * @returns `host:port`. @throws UsageError naming the value.
 */
export function parseManagerAddr(s: string): string {
  const a = String(s ?? '').trim();
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]@]+)(?::(\d{1,5}))?$/.exec(a);
  const port = m?.[2] === undefined ? DEFAULT_MANAGER_PORT : Number(m[2]);
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`invalid manager address ${JSON.stringify(String(s ?? ''))}: expected HOST[:PORT], e.g. 10.0.0.1 or 10.0.0.1:2377 (default port ${DEFAULT_MANAGER_PORT})`);
  }
  return `${m[1]}:${port}`;
}

/** A `--secret` / `--config` value as the control API takes it (mode in permission bits). */
export interface FileRefFlag {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

/**
 * Parses `--secret` / `--config` (Docker's `opts.SecretOpt`/`ConfigOpt`): `NAME`, or
 * `source=NAME[,target=PATH][,uid=N][,gid=N][,mode=0OCTAL]` (`src` for `source`). The mode is
 * octal with a leading 0 (`0400`, `0o400`).
 * @throws UsageError naming the flag and the bad part.
 */
export function parseFileRef(value: string, flag: string): FileRefFlag {
  const v = String(value).trim();
  if (v === '') throw new UsageError(`invalid ${flag} value "": give NAME or source=NAME,target=PATH,uid=0,gid=0,mode=0444`);
  if (!v.includes('=')) return { source: v };
  const out: Partial<FileRefFlag> = {};
  for (const part of v.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 1) throw new UsageError(`invalid field ${JSON.stringify(part)} in ${flag} ${JSON.stringify(v)}: must be a key=value pair`);
    const key = part.slice(0, eq).trim().toLowerCase();
    const val = part.slice(eq + 1).trim();
    switch (key) {
      case 'source': case 'src': out.source = val; break;
      case 'target': out.target = val; break;
      case 'uid': case 'gid':
        if (!/^\d+$/.test(val)) throw new UsageError(`invalid ${key} ${JSON.stringify(val)} in ${flag}: must be a numeric ID such as 0 or 1000`);
        out[key] = val;
        break;
      case 'mode': {
        const m = /^0o?([0-7]{1,4})$/i.exec(val);
        if (!m || Number.parseInt(m[1]!, 8) > 0o777) throw new UsageError(`invalid mode ${JSON.stringify(val)} in ${flag}: give octal permission bits with a leading 0, e.g. 0400`);
        out.mode = Number.parseInt(m[1]!, 8);
        break;
      }
      default:
        throw new UsageError(`invalid field key ${JSON.stringify(key)} in ${flag} ${JSON.stringify(v)}: use source, target, uid, gid or mode`);
    }
  }
  if (!out.source) throw new UsageError(`invalid ${flag} ${JSON.stringify(v)}: source is required, e.g. source=db_pass`);
  return out as FileRefFlag;
}
