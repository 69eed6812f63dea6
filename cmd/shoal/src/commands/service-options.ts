import { type Mount, type Service, type Ulimit, effectiveCaps, isJobMode, normalizeCapability } from '@shoal/api';
import { UsageError } from '../errors.js';
import {
  parseCapability, parseDnsOption, parseDnsSearch, parseDnsServer, parseExtraHost, parseGenericResource, parseKeyValueOpt, parseMount,
  parsePlacementPref, parseSignal, parseSysctl, parseUlimit, parseWorkdir, readEnvFile,
} from '../parse/options.js';
import { parseBytes, parseCount, parseNanoCpus } from '../parse/values.js';
import { type Args, list, str } from './common.js';
import type { ServiceSpecInput } from './service.js';

/**
 * The runtime-option flags of `service create` and `service update` (issue 9), read into the
 * control contract's ServiceSpecInput: Docker's flags and their `-add`/`-rm` forms on update.
 * Pure apart from reading `--env-file`. @throws UsageError naming the flag, the value and the fix.
 */

/** A boolean flag: undefined when not given (`--init=false` gives false). */
function flagBool(a: Args, key: string): boolean | undefined {
  const v = a[key];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? Boolean(v[v.length - 1]) : v === true;
}

/** Flags create and update share, with the same meaning: the value replaces the current one. */
function sharedFlags(a: Args, spec: ServiceSpecInput, forUpdate: boolean): void {
  let v: string | undefined;
  if ((v = str(a, 'workdir')) !== undefined) spec.dir = parseWorkdir(v);
  if ((v = str(a, 'user')) !== undefined) {
    if (/\s/.test(v)) throw new UsageError(`invalid --user value ${JSON.stringify(v)}: expected <name|uid>[:<group|gid>]`);
    spec.user = v;
  }
  if ((v = str(a, 'limit-cpu')) !== undefined) spec.limitNanoCpus = parseNanoCpus(v, '--limit-cpu');
  if ((v = str(a, 'limit-memory')) !== undefined) spec.limitMemoryBytes = parseBytes(v, '--limit-memory');
  if ((v = str(a, 'limit-pids')) !== undefined) spec.limitPids = parseCount(v, '--limit-pids');
  if ((v = str(a, 'max-concurrent')) !== undefined) spec.maxConcurrent = parseCount(v, '--max-concurrent');
  if ((v = str(a, 'stop-signal')) !== undefined) spec.stopSignal = v === '' ? '' : parseSignal(v);
  const init = flagBool(a, 'init');
  if (init !== undefined) spec.init = init;
  const tty = flagBool(a, 'tty');
  if (tty !== undefined) spec.tty = tty;
  const ro = flagBool(a, 'read-only');
  if (ro !== undefined) spec.readOnly = ro;
  if ((v = str(a, 'isolation')) !== undefined && v !== 'default' && v !== '') {
    throw new UsageError(`invalid --isolation value ${JSON.stringify(v)}: process and hyperv isolation are Windows-only; Linux containers take only "default"`);
  }
  if (str(a, 'credential-spec') !== undefined) {
    throw new UsageError('--credential-spec is Windows-only (group managed service accounts); Shoal runs Linux containers');
  }
  const driver = str(a, 'log-driver');
  const opts = list(a, 'log-opt').map((o) => parseKeyValueOpt(o, '--log-opt'));
  if (opts.length && !driver) throw new UsageError('--log-opt needs --log-driver: give the driver the options are for, e.g. --log-driver json-file --log-opt max-size=10m');
  if (driver !== undefined) spec.logDriver = { name: driver, options: Object.fromEntries(opts) };
  if (!forUpdate) {
    const caps = effectiveCaps(list(a, 'cap-add').map((c) => parseCapability(c, '--cap-add')), list(a, 'cap-drop').map((c) => parseCapability(c, '--cap-drop')));
    if (caps.add.length) spec.capAdd = caps.add;
    if (caps.drop.length) spec.capDrop = caps.drop;
  }
}

/**
 * Reads the runtime-option flags of `service create` into `spec`: `--mount`, `--placement-pref`,
 * `--group`, `--dns*`, `--host` (extra hosts), `--sysctl`, `--ulimit`, `--generic-resource`,
 * `--env-file` (merged before `--env`, later keys win), and the shared ones ({@link sharedFlags}).
 */
export function runtimeCreateFlags(a: Args, spec: ServiceSpecInput): void {
  sharedFlags(a, spec, false);
  const mounts = list(a, 'mount').map((m) => parseMount(m));
  const targets = new Set<string>();
  for (const m of mounts) {
    if (targets.has(m.target)) throw new UsageError(`invalid --mount value: target ${m.target} is mounted twice; give each target once`);
    targets.add(m.target);
  }
  if (mounts.length) spec.mounts = mounts;
  const prefs = list(a, 'placement-pref').map((p) => parsePlacementPref(p));
  if (prefs.length) spec.placementPreferences = prefs;
  const groups = list(a, 'group');
  if (groups.length) spec.groups = groups;
  const dns = list(a, 'dns').map((d) => parseDnsServer(d));
  if (dns.length) spec.dns = dns;
  const search = list(a, 'dns-search').map((d) => parseDnsSearch(d));
  if (search.length) spec.dnsSearch = search;
  const dnsOpts = list(a, 'dns-option').map((d) => parseDnsOption(d));
  if (dnsOpts.length) spec.dnsOptions = dnsOpts;
  const hosts = list(a, 'add-host').map((h) => parseExtraHost(h, '--host'));
  if (hosts.length) spec.hosts = [...new Set(hosts)];
  const sysctls = list(a, 'sysctl').map((s) => parseSysctl(s));
  if (sysctls.length) spec.sysctls = Object.fromEntries(sysctls);
  const ulimits = new Map<string, Ulimit>();
  for (const u of list(a, 'ulimit').map((x) => parseUlimit(x))) ulimits.set(u.name, u);
  if (ulimits.size) spec.ulimits = [...ulimits.values()].sort((x, y) => (x.name < y.name ? -1 : 1));
  const generic = list(a, 'generic-resource').map((g) => parseGenericResource(g));
  if (generic.length) spec.genericResources = generic;
  const files = list(a, 'env-file');
  if (files.length) {
    const merged = new Map<string, string>();
    for (const e of [...files.flatMap((f) => readEnvFile(f)), ...(spec.env ?? [])]) {
      const k = e.includes('=') ? e.slice(0, e.indexOf('=')) : e;
      merged.delete(k);
      merged.set(k, e);
    }
    spec.env = [...merged.values()];
  }
}

/** Applies `-add` values (parsed) and `-rm` keys to a list: removed first, then added, deduplicated. */
function editList(cur: readonly string[], add: readonly string[], rm: readonly string[], sort = true): string[] {
  const out = [...new Set([...cur, ...add])].filter((x) => !rm.includes(x));
  return sort ? out.sort() : out;
}

/**
 * Reads the runtime-option flags of `service update` into `spec`, applying the `-add`/`-rm` forms
 * to the current service (Docker's `service update` rules): mounts by target (`--mount-rm TARGET`),
 * placement preferences, groups, DNS servers/options/search domains, extra hosts (`--host-rm HOST`
 * or `HOST:IP`), sysctls and ulimits by name, generic resources by kind, capabilities
 * (`--cap-add`/`--cap-drop` relative to the current sets; `RESET` clears one), and the shared flags.
 * Only what changes is set in `spec`.
 */
export function runtimeUpdateFlags(a: Args, cur: Service, spec: ServiceSpecInput): void {
  sharedFlags(a, spec, true);
  const c = cur.spec.task.container;
  if (spec.maxConcurrent !== undefined && !('replicatedJob' in cur.spec.mode)) {
    throw new UsageError(`--max-concurrent can only be used with replicated-job mode; ${cur.spec.name} is not a replicated job`);
  }
  if (isJobMode(cur.spec.mode) && Object.keys(a).some((k) => /^(update|rollback)-/.test(k) && a[k] !== undefined)) {
    throw new UsageError(`update and rollback configuration is not supported for jobs; ${cur.spec.name} re-runs as a whole on every update`);
  }

  const mountAdd = list(a, 'mount-add').map((m) => parseMount(m, '--mount-add'));
  const mountRm = list(a, 'mount-rm');
  if (mountAdd.length || mountRm.length) {
    const byTarget = new Map<string, Mount>();
    for (const m of mountAdd) {
      if (byTarget.has(m.target)) throw new UsageError(`invalid --mount-add value: target ${m.target} is given twice; give each target once`);
      byTarget.set(m.target, m);
    }
    for (const m of c.mounts ?? []) if (!byTarget.has(m.target)) byTarget.set(m.target, m);
    // Docker sorts the result by source, then target.
    spec.mounts = [...byTarget.values()].filter((m) => !mountRm.includes(m.target))
      .sort((x, y) => ((x.source ?? '') === (y.source ?? '') ? (x.target < y.target ? -1 : 1) : (x.source ?? '') < (y.source ?? '') ? -1 : 1));
  }

  const prefAdd = list(a, 'placement-pref-add').map((p) => parsePlacementPref(p, '--placement-pref-add'));
  const prefRm = list(a, 'placement-pref-rm').map((p) => parsePlacementPref(p, '--placement-pref-rm'));
  if (prefAdd.length || prefRm.length) {
    const kept = (cur.spec.task.placement.preferences ?? []).filter((p) => !prefRm.some((r) => r.spread === p.spread));
    spec.placementPreferences = [...kept, ...prefAdd];
  }

  const gAdd = list(a, 'group-add');
  const gRm = list(a, 'group-rm');
  if (gAdd.length || gRm.length) spec.groups = editList(c.groups ?? [], gAdd, gRm);

  const dns = c.dnsConfig ?? {};
  const dAdd = list(a, 'dns-add').map((d) => parseDnsServer(d, '--dns-add'));
  const dRm = list(a, 'dns-rm');
  if (dAdd.length || dRm.length) spec.dns = editList(dns.nameservers ?? [], dAdd, dRm);
  const sAdd = list(a, 'dns-search-add').map((d) => parseDnsSearch(d, '--dns-search-add'));
  const sRm = list(a, 'dns-search-rm');
  if (sAdd.length || sRm.length) spec.dnsSearch = editList(dns.search ?? [], sAdd, sRm);
  const oAdd = list(a, 'dns-option-add').map((d) => parseDnsOption(d, '--dns-option-add'));
  const oRm = list(a, 'dns-option-rm');
  if (oAdd.length || oRm.length) spec.dnsOptions = editList(dns.options ?? [], oAdd, oRm);

  const hAdd = list(a, 'host-add').map((h) => parseExtraHost(h, '--host-add'));
  const hRm = list(a, 'host-rm');
  if (hAdd.length || hRm.length) {
    const kept: string[] = [];
    for (const line of c.hosts ?? []) {
      const [ip, ...names] = line.trim().split(/\s+/);
      const left = names.filter((n) => !hRm.some((r) => {
        const i = r.indexOf(':');
        const host = i < 0 ? r : r.slice(0, i);
        const rip = i < 0 ? '' : r.slice(i + 1);
        return host === n && (rip === '' || rip === ip);
      }));
      if (left.length) kept.push(`${ip} ${left.join(' ')}`);
    }
    spec.hosts = [...new Set([...kept, ...hAdd])];
  }

  const scAdd = list(a, 'sysctl-add').map((s) => parseSysctl(s, '--sysctl-add'));
  const scRm = list(a, 'sysctl-rm').map((s) => (s.includes('=') ? s.slice(0, s.indexOf('=')) : s));
  if (scAdd.length || scRm.length) {
    const m = { ...(c.sysctls ?? {}) };
    for (const k of scRm) delete m[k];
    Object.assign(m, Object.fromEntries(scAdd));
    spec.sysctls = m;
  }

  const uAdd = list(a, 'ulimit-add').map((u) => parseUlimit(u, '--ulimit-add'));
  const uRm = list(a, 'ulimit-rm').map((s) => (s.includes('=') ? s.slice(0, s.indexOf('=')) : s));
  if (uAdd.length || uRm.length) {
    const m = new Map((c.ulimits ?? []).map((u) => [u.name, u]));
    for (const k of uRm) m.delete(k);
    for (const u of uAdd) m.set(u.name, u);
    spec.ulimits = [...m.values()].sort((x, y) => (x.name < y.name ? -1 : 1));
  }

  const grAdd = list(a, 'generic-resource-add').map((g) => parseGenericResource(g, '--generic-resource-add'));
  const grRm = list(a, 'generic-resource-rm');
  if (grAdd.length || grRm.length) {
    const m = new Map((cur.spec.task.resources?.reservations?.genericResources ?? []).map((g) => [g.kind, g]));
    for (const k of grRm) m.delete(k.includes('=') ? k.slice(0, k.indexOf('=')) : k);
    for (const g of grAdd) m.set(g.kind, g);
    spec.genericResources = [...m.values()];
  }

  const capAdd = list(a, 'cap-add').map((x) => parseCapability(x, '--cap-add'));
  const capDrop = list(a, 'cap-drop').map((x) => parseCapability(x, '--cap-drop'));
  if (capAdd.length || capDrop.length) {
    // docker/cli updateCapabilities: relative to the current sets; RESET empties one first; adding
    // a dropped capability un-drops it and dropping an added one un-adds it.
    const add = new Set(capAdd.includes('RESET') ? [] : (c.capabilityAdd ?? []).map(normalizeCapability));
    const drop = new Set(capDrop.includes('RESET') ? [] : (c.capabilityDrop ?? []).map(normalizeCapability));
    const toAdd = new Set(capAdd.filter((x) => x !== 'RESET'));
    for (const x of capDrop.filter((y) => y !== 'RESET')) {
      if (toAdd.has(x)) continue;
      if (add.has(x)) add.delete(x);
      else drop.add(x);
    }
    for (const x of toAdd) {
      if (drop.has(x)) drop.delete(x);
      else add.add(x);
    }
    spec.capAdd = add.has('ALL') ? ['ALL'] : [...add].sort();
    spec.capDrop = drop.has('ALL') ? ['ALL'] : [...drop].sort();
  }
}
