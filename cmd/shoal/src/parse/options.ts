import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  type GenericResource, type Mount, type Ulimit,
  capabilityProblem, isHostname, isIpAddress, mountProblem, normalizeCapability, signalProblem, sysctlProblem, ulimitProblem,
} from '@shoal/api';
import { UsageError } from '../errors.js';
import { parseBytes } from './values.js';

/**
 * Parsers for the runtime-option flags of `service create/update` (issue 9), with Docker's syntax
 * (docker/cli `opts/mount.go`, `opts/ulimit.go`, `opts/hosts.go`, service `opts.go`). Pure apart
 * from {@link readEnvFile}. Each throws UsageError with one line naming the flag, the value and the
 * fix; the rules shared with the control API come from `@shoal/api` (service-options.ts).
 */

const bad = (flag: string, value: string, why: string) => new UsageError(`invalid ${flag} value ${JSON.stringify(value)}: ${why}`);

/** Splits one CSV record (Go `encoding/csv`): commas separate, double quotes group, `""` is a quote. */
export function splitCsv(s: string, flag: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c === '"' && (cur === '' || /=$/.test(cur)) && !wasQuoted) {
      quoted = true;
      wasQuoted = true;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
      wasQuoted = false;
    } else {
      cur += c;
    }
  }
  if (quoted) throw bad(flag, s, 'unterminated double quote');
  out.push(cur);
  return out;
}

function bool(flag: string, value: string, key: string, v: string | undefined): boolean {
  if (v === undefined) return true;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw bad(flag, value, `${key}=${v}: use true, 1, false or 0 (or ${key} alone for true)`);
}

/**
 * Parses a `--mount` / `--mount-add` value, Docker's CSV form:
 * `type=volume|bind|tmpfs,source=…,target=…[,readonly][,volume-driver=…][,volume-opt=K=V]…
 * [,volume-label=K=V][,volume-nocopy][,volume-subpath=…][,tmpfs-size=…][,tmpfs-mode=…]
 * [,bind-propagation=…][,bind-recursive=enabled|disabled][,bind-create-src][,consistency=…]`.
 * Aliases `src`, `dst`/`destination`, `ro`; the type defaults to `volume`; a relative bind source
 * starting with `.` is made absolute (as Docker does). The result passes {@link mountProblem}.
 */
export function parseMount(value: string, flag = '--mount'): Mount {
  const v = String(value).trim();
  if (v === '') throw bad(flag, value, 'empty; e.g. type=volume,source=data,target=/data');
  const m: Mount & { type: string } = { type: 'volume', target: '' };
  const ensure = <K extends 'bindOptions' | 'volumeOptions' | 'tmpfsOptions'>(k: K) => (m[k] ??= {} as NonNullable<Mount[K]>) as NonNullable<Mount[K]>;
  for (const field of splitCsv(v, flag)) {
    const eq = field.indexOf('=');
    const rawKey = eq < 0 ? field : field.slice(0, eq);
    const val = eq < 0 ? undefined : field.slice(eq + 1);
    const key = rawKey.toLowerCase();
    if (rawKey.trim() !== rawKey) throw bad(flag, value, `option '${rawKey.trim()}' should not have whitespace`);
    if (val !== undefined && val.trim() === '') throw bad(flag, value, `${rawKey} has an empty value`);
    if (val === undefined && !['readonly', 'ro', 'volume-nocopy', 'bind-create-src'].includes(key)) {
      throw bad(flag, value, `'${field}' must be a key=value pair`);
    }
    const kv = (what: string): [string, string] => {
      const i = val!.indexOf('=');
      if (i <= 0) throw bad(flag, value, `${what}=${val} must be ${what}=KEY=VALUE`);
      return [val!.slice(0, i), val!.slice(i + 1)];
    };
    switch (key) {
      case 'type': m.type = val!.toLowerCase() as Mount['type']; break;
      case 'source': case 'src':
        m.source = val!.startsWith('.') ? resolve(val!) : val!;
        break;
      case 'target': case 'dst': case 'destination': m.target = val!; break;
      case 'readonly': case 'ro': m.readOnly = bool(flag, value, key, val); break;
      case 'consistency': m.consistency = val!.toLowerCase(); break;
      case 'bind-propagation': ensure('bindOptions').propagation = val!.toLowerCase(); break;
      case 'bind-recursive':
        if (val === 'disabled') ensure('bindOptions').nonRecursive = true;
        else if (val !== 'enabled') throw bad(flag, value, `bind-recursive=${val}: use enabled or disabled`);
        break;
      case 'bind-create-src': ensure('bindOptions').createMountpoint = bool(flag, value, key, val); break;
      case 'volume-nocopy': ensure('volumeOptions').noCopy = bool(flag, value, key, val); break;
      case 'volume-subpath': ensure('volumeOptions').subpath = val!; break;
      case 'volume-label': {
        const [k, x] = kv('volume-label');
        const o = ensure('volumeOptions');
        o.labels = { ...(o.labels ?? {}), [k]: x };
        break;
      }
      case 'volume-driver': {
        const o = ensure('volumeOptions');
        o.driverConfig = { ...(o.driverConfig ?? {}), name: val! };
        break;
      }
      case 'volume-opt': {
        const [k, x] = kv('volume-opt');
        const o = ensure('volumeOptions');
        o.driverConfig = { name: o.driverConfig?.name ?? 'local', options: { ...(o.driverConfig?.options ?? {}), [k]: x } };
        break;
      }
      case 'tmpfs-size': {
        let n: number;
        try {
          n = parseBytes(val!, 'tmpfs-size');
        } catch {
          throw bad(flag, value, `tmpfs-size=${val} is not a size; e.g. tmpfs-size=64m`);
        }
        ensure('tmpfsOptions').sizeBytes = n;
        break;
      }
      case 'tmpfs-mode':
        if (!/^[0-7]{1,4}$/.test(val!)) throw bad(flag, value, `tmpfs-mode=${val} is not an octal file mode; e.g. tmpfs-mode=1777`);
        ensure('tmpfsOptions').mode = parseInt(val!, 8);
        break;
      default:
        throw bad(flag, value, `unknown option '${rawKey}'; use type, source, target, readonly, volume-*, bind-*, tmpfs-size, tmpfs-mode or consistency`);
    }
  }
  const problem = mountProblem(m);
  if (problem) throw bad(flag, value, problem);
  return m;
}

/** Parses `--ulimit NAME=SOFT[:HARD]` (go-units `ParseUlimit`; HARD defaults to SOFT, -1 = unlimited). */
export function parseUlimit(value: string, flag = '--ulimit'): Ulimit {
  const s = String(value);
  const eq = s.indexOf('=');
  if (eq <= 0) throw bad(flag, s, 'expected NAME=SOFT[:HARD], e.g. nofile=1024:2048');
  const name = s.slice(0, eq);
  const parts = s.slice(eq + 1).split(':');
  if (parts.length > 2) throw bad(flag, s, 'too many limit values; use SOFT or SOFT:HARD');
  const num = (p: string, what: string) => {
    if (!/^-?\d+$/.test(p)) throw bad(flag, s, `${what} limit ${JSON.stringify(p)} must be a whole number; e.g. ${name}=1024:2048`);
    return Number(p);
  };
  const soft = num(parts[0]!, 'soft');
  const hard = parts.length === 2 ? num(parts[1]!, 'hard') : soft;
  const u = { name, soft, hard };
  const problem = ulimitProblem(u);
  if (problem) throw bad(flag, s, problem);
  return u;
}

/** Parses `KEY=VALUE` of `--sysctl` (only namespaced sysctls, {@link sysctlProblem}). */
export function parseSysctl(value: string, flag = '--sysctl'): [string, string] {
  const s = String(value);
  const eq = s.indexOf('=');
  if (eq <= 0) throw bad(flag, s, 'expected KEY=VALUE, e.g. net.core.somaxconn=1024');
  const key = s.slice(0, eq);
  const problem = sysctlProblem(key);
  if (problem) throw bad(flag, s, problem);
  return [key, s.slice(eq + 1)];
}

/**
 * Parses `--host` / `--host-add` `HOST:IP` (or `HOST=IP`; IPv6 may be in brackets) into SwarmKit's
 * `/etc/hosts` line form `IP HOST` (docker/cli `convertExtraHostsToSwarmHosts`).
 */
export function parseExtraHost(value: string, flag = '--host'): string {
  const s = String(value);
  let i = s.indexOf('=');
  if (i < 0) i = s.indexOf(':');
  const host = i < 0 ? '' : s.slice(0, i);
  let ip = i < 0 ? '' : s.slice(i + 1);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (!host || !isHostname(host) || !isIpAddress(ip)) {
    throw bad(flag, s, 'expected HOST:IP, e.g. db:10.0.0.5 (the daemon address is -H, before the command)');
  }
  return `${ip} ${host}`;
}

/** `--dns`: an IP address. */
export function parseDnsServer(value: string, flag = '--dns'): string {
  const s = String(value).trim();
  if (!isIpAddress(s)) throw bad(flag, value, 'expected the IP address of a name server, e.g. 10.0.0.2');
  return s;
}

/** `--dns-search`: a domain (or `.` for none). */
export function parseDnsSearch(value: string, flag = '--dns-search'): string {
  const s = String(value).trim();
  if (s !== '.' && !isHostname(s)) throw bad(flag, value, 'expected a domain such as example.com');
  return s;
}

/** `--dns-option`: a resolv.conf option such as `ndots:2`. */
export function parseDnsOption(value: string, flag = '--dns-option'): string {
  const s = String(value);
  if (s.trim() === '' || /\s/.test(s)) throw bad(flag, value, 'expected a resolv.conf option such as ndots:2');
  return s;
}

/** `--generic-resource KIND=N` (discrete only, as Docker: named resources cannot be requested). */
export function parseGenericResource(value: string, flag = '--generic-resource'): GenericResource {
  const s = String(value);
  const eq = s.indexOf('=');
  if (eq <= 0) throw bad(flag, s, 'expected KIND=COUNT, e.g. gpu=1');
  const kind = s.slice(0, eq);
  const n = s.slice(eq + 1);
  if (!/^\d+$/.test(n) || Number(n) < 1) throw bad(flag, s, `${JSON.stringify(n)} is not a count; named generic resources cannot be requested, give KIND=COUNT, e.g. gpu=1`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(kind)) throw bad(flag, s, `${JSON.stringify(kind)} is not a resource kind; e.g. gpu`);
  return { kind, value: Number(n) };
}

/** `--placement-pref spread=node.labels.X` (only spread exists). */
export function parsePlacementPref(value: string, flag = '--placement-pref'): { spread: string } {
  const s = String(value);
  const eq = s.indexOf('=');
  if (eq <= 0) throw bad(flag, s, 'placement preference must be of the format "<strategy>=<arg>", e.g. spread=node.labels.zone');
  const strategy = s.slice(0, eq);
  if (strategy !== 'spread') throw bad(flag, s, `unsupported placement preference ${strategy} (only spread is supported)`);
  const d = s.slice(eq + 1);
  if (!/^(node|engine)\.labels\.[^\s=!]+$/i.test(d)) throw bad(flag, s, 'spread over node.labels.<name> or engine.labels.<name>, e.g. spread=node.labels.zone');
  return { spread: d };
}

/** `--cap-add` / `--cap-drop`: a capability, normalized to `CAP_NAME` (`ALL` and `RESET` kept). */
export function parseCapability(value: string, flag: string): string {
  const c = normalizeCapability(String(value));
  if (c === 'RESET') return c;
  const problem = capabilityProblem(c);
  if (problem) throw bad(flag, value, problem);
  return c;
}

/** `--stop-signal`: a signal name or number the engine knows. */
export function parseSignal(value: string, flag = '--stop-signal'): string {
  const s = String(value).trim();
  const problem = signalProblem(s);
  if (problem) throw bad(flag, value, problem.replace(/^invalid signal "[^"]*": /, ''));
  return s;
}

/** `--log-opt KEY=VALUE`. */
export function parseKeyValueOpt(value: string, flag: string): [string, string] {
  const s = String(value);
  const eq = s.indexOf('=');
  if (eq <= 0) throw bad(flag, s, 'expected KEY=VALUE, e.g. max-size=10m');
  return [s.slice(0, eq), s.slice(eq + 1)];
}

/** `--workdir`: an absolute path in the container. */
export function parseWorkdir(value: string, flag = '--workdir'): string {
  const s = String(value);
  if (s !== '' && !s.replace(/\{\{[^}]*\}\}/g, 'x').startsWith('/')) throw bad(flag, s, 'must be an absolute path in the container, e.g. /app');
  return s;
}

/**
 * Reads an `--env-file` (Docker's format: `KEY=VALUE` lines, `#` comments and blank lines skipped,
 * a bare `KEY` takes its value from this environment when set there, leading whitespace trimmed).
 * @throws UsageError naming the file (missing, unreadable) or the bad line.
 */
export function readEnvFile(path: string, flag = '--env-file'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw bad(flag, path, code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? (e as Error).message})`);
  }
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '' || /\s/.test(key)) throw bad(flag, path, `line ${i + 1}: variable ${JSON.stringify(key)} contains whitespace or is empty`);
    if (eq >= 0) out.push(line);
    else if (process.env[key] !== undefined) out.push(`${key}=${process.env[key]}`);
  });
  return out;
}
