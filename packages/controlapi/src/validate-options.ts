import {
  type ContainerSpec, type DnsConfig, type GenericResource, type LogDriver, type Mount, type PlacementPreference, type ServiceMode,
  type ServiceSpec, type ServiceSpecInput, type TaskSpec, type Ulimit,
  MIN_MEMORY_LIMIT_BYTES, MIN_NANO_CPUS, SERVICE_MODES, capabilityProblem, invalidArgument, isHostname, isIpAddress, modeName,
  mountProblem, normalizeCapability, signalProblem, sysctlProblem, ulimitProblem,
} from '@shoal/api';

/**
 * Server-side rules for the runtime options of a service (issue 9): the mode (services and jobs),
 * mounts, limits, the container's process options, DNS, extra hosts, log driver, placement
 * preferences and generic resources. Every value a client could send is checked here (the CLI checks
 * them too, but a client may skip it); each refusal is one line naming the field, the value and
 * the fix. Shared rules live in `@shoal/api` (service-options.ts) so both give the same answer.
 */

/** Most replicas (or job completions) one service may have; see validate.ts MAX_REPLICAS. */
const MAX_TASKS = 2000;

function wholeNumber(what: string, v: unknown, min = 0, hint = ''): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalidArgument(`invalid ${what} ${JSON.stringify(v)}: must be a whole number >= ${min}${hint}`);
  }
  return v;
}

/**
 * The service mode from input `mode` (`replicated`, `global`, `replicated-job`, `global-job`),
 * `replicas` and `maxConcurrent`, on top of `base` (update). Docker's rules: the mode cannot change;
 * `replicas` only for replicated services and replicated jobs (where it is the number of
 * completions, default 1); `maxConcurrent` only for replicated jobs (default: the completions).
 * @throws InvalidArgument naming the field, the value and the fix.
 */
export function normalizeMode(input: Partial<ServiceSpecInput>, base: ServiceSpec | undefined, checkCount: (n: unknown) => number): ServiceMode {
  const name = input.mode ?? (base ? modeName(base.mode) : 'replicated');
  if (!(SERVICE_MODES as readonly string[]).includes(name)) {
    throw invalidArgument(`invalid mode ${JSON.stringify(name)}: must be replicated, global, replicated-job or global-job`);
  }
  if (base && modeName(base.mode) !== name) throw invalidArgument('service mode cannot be changed; remove and recreate the service');
  if (input.replicas !== undefined && (name === 'global' || name === 'global-job')) {
    throw invalidArgument('replicas can only be used with replicated or replicated-job mode');
  }
  if (input.maxConcurrent !== undefined && name !== 'replicated-job') throw invalidArgument('max-concurrent can only be used with replicated-job mode');
  switch (name) {
    case 'global': return { global: {} };
    case 'global-job': return { globalJob: {} };
    case 'replicated': {
      const prev = base && 'replicated' in base.mode ? base.mode.replicated.replicas : 1;
      return { replicated: { replicas: checkCount(input.replicas ?? prev) } };
    }
    default: {
      // Docker's defaults: max-concurrent = replicas, replicas (completions) = max-concurrent, else 1.
      const prev = base && 'replicatedJob' in base.mode ? base.mode.replicatedJob : undefined;
      const conc = input.maxConcurrent ?? prev?.maxConcurrent ?? input.replicas ?? 1;
      const maxConcurrent = wholeNumber('max-concurrent value', conc, 0, '; it is how many job tasks may run at once');
      const totalCompletions = checkCount(input.replicas ?? prev?.totalCompletions ?? maxConcurrent);
      if (maxConcurrent > MAX_TASKS) throw invalidArgument(`invalid max-concurrent value ${maxConcurrent}: at most ${MAX_TASKS} tasks at once`);
      return { replicatedJob: { maxConcurrent, totalCompletions } };
    }
  }
}

/** Validates and normalizes a list of mounts. @throws InvalidArgument naming the mount. */
export function checkMounts(mounts: readonly Mount[]): Mount[] {
  const seen = new Set<string>();
  return mounts.map((m, i) => {
    const problem = mountProblem(m);
    if (problem) throw invalidArgument(`invalid mount ${i + 1} (${describeMount(m)}): ${problem}`);
    if (seen.has(m.target)) throw invalidArgument(`duplicate mount point ${m.target}: each target may be mounted once; drop one of them`);
    seen.add(m.target);
    const out: Mount = { type: m.type, target: m.target };
    if (m.source) out.source = m.source;
    if (m.readOnly) out.readOnly = true;
    if (m.consistency) out.consistency = m.consistency;
    if (m.bindOptions) out.bindOptions = { ...m.bindOptions };
    if (m.volumeOptions) out.volumeOptions = structuredClone(m.volumeOptions);
    if (m.tmpfsOptions) out.tmpfsOptions = { ...m.tmpfsOptions };
    return out;
  });
}

function describeMount(m: Partial<Mount>): string {
  return [`type=${m.type ?? ''}`, m.source ? `source=${m.source}` : '', m.target ? `target=${m.target}` : ''].filter(Boolean).join(',');
}

function checkNanoCpus(what: string, v: unknown): number {
  const n = wholeNumber(what, v, 0, ' nano-CPUs (1e9 = one CPU)');
  if (n !== 0 && n < MIN_NANO_CPUS) throw invalidArgument(`invalid ${what} ${n}: must be 0 or at least ${MIN_NANO_CPUS} nano-CPUs (0.001 CPUs)`);
  return n;
}

function checkStrings(what: string, list: readonly string[], check: (s: string) => string | undefined): string[] {
  for (const s of list) {
    const p = check(s);
    if (p) throw invalidArgument(`invalid ${what} ${JSON.stringify(s)}: ${p}`);
  }
  return [...list];
}

/** `IP hostname [aliases...]` (SwarmKit's form of `--host name:ip`). */
function hostLineProblem(line: string): string | undefined {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || !isIpAddress(parts[0]!)) return 'expected "IP_address hostname [aliases...]", e.g. "10.0.0.5 db"';
  const bad = parts.slice(1).find((h) => !isHostname(h));
  return bad ? `${JSON.stringify(bad)} is not a host name` : undefined;
}

function checkGenericResources(list: readonly GenericResource[]): GenericResource[] {
  const seen = new Set<string>();
  return list.map((r) => {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(r.kind)) throw invalidArgument(`invalid generic resource kind ${JSON.stringify(r.kind)}: use letters, digits, '_', '.' and '-', e.g. gpu`);
    if (seen.has(r.kind)) throw invalidArgument(`generic resource ${r.kind} is given twice; give each kind once`);
    seen.add(r.kind);
    return { kind: r.kind, value: wholeNumber(`generic resource ${r.kind} value`, r.value, 1) };
  });
}

function checkPreferences(list: readonly PlacementPreference[]): PlacementPreference[] {
  return list.map((p) => {
    const d = p.spread;
    if (!/^(node|engine)\.labels\.[^\s=!]+$/i.test(d)) {
      throw invalidArgument(`invalid placement preference spread=${d}: spread over node.labels.<name> or engine.labels.<name>, e.g. spread=node.labels.zone`);
    }
    return { spread: d };
  });
}

function checkLogDriver(d: { name: string; options?: Record<string, string> }): LogDriver | undefined {
  if (d.name === '') {
    if (Object.keys(d.options ?? {}).length) throw invalidArgument('log options need a log driver; give --log-driver with --log-opt');
    return undefined;
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.:/-]*$/.test(d.name)) throw invalidArgument(`invalid log driver ${JSON.stringify(d.name)}: give a driver name such as json-file, local or none`);
  return { name: d.name, options: { ...(d.options ?? {}) } };
}

/**
 * Applies the runtime options of `input` to `spec` (already normalized for the older fields),
 * keeping `base`'s values for what `input` leaves out. Mutates and returns `spec`.
 * @throws InvalidArgument for the first bad value.
 */
export function applyRuntimeOptions(input: Partial<ServiceSpecInput>, base: ServiceSpec | undefined, spec: ServiceSpec): ServiceSpec {
  const prev: ContainerSpec | undefined = base?.task.container;
  const c = spec.task.container;
  const pick = <K extends keyof ContainerSpec>(key: K, v: ContainerSpec[K] | undefined) => {
    if (v === undefined) delete c[key];
    else c[key] = v;
  };

  const mounts = input.mounts ?? prev?.mounts;
  pick('mounts', mounts?.length ? checkMounts(mounts as Mount[]) : undefined);

  const dir = input.dir ?? prev?.dir;
  if (dir !== undefined && dir !== '' && !dir.replace(/\{\{[^}]*\}\}/g, 'x').startsWith('/')) {
    throw invalidArgument(`invalid working directory ${JSON.stringify(dir)}: must be an absolute path, e.g. /app`);
  }
  pick('dir', dir || undefined);
  const user = input.user ?? prev?.user;
  if (user !== undefined && /\s/.test(user)) throw invalidArgument(`invalid user ${JSON.stringify(user)}: expected <name|uid>[:<group|gid>] without spaces`);
  pick('user', user || undefined);
  const groups = input.groups ?? prev?.groups;
  pick('groups', groups?.length ? checkStrings('group', groups, (g) => (g.trim() === '' || /\s/.test(g) ? 'expected a group name or GID' : undefined)) : undefined);
  pick('init', input.init ?? prev?.init);
  pick('tty', (input.tty ?? prev?.tty) || undefined);
  pick('readOnly', (input.readOnly ?? prev?.readOnly) || undefined);
  const stopSignal = input.stopSignal ?? prev?.stopSignal;
  if (stopSignal) {
    const p = signalProblem(stopSignal);
    if (p) throw invalidArgument(`invalid stop signal: ${p.replace(/^invalid signal /, '')}`);
  }
  pick('stopSignal', stopSignal || undefined);

  const capAdd = input.capAdd ? input.capAdd.map(normalizeCapability) : prev?.capabilityAdd;
  const capDrop = input.capDrop ? input.capDrop.map(normalizeCapability) : prev?.capabilityDrop;
  for (const [what, list] of [['capability to add', capAdd], ['capability to drop', capDrop]] as const) {
    for (const cap of list ?? []) {
      const p = capabilityProblem(cap);
      if (p) throw invalidArgument(`invalid ${what}: ${p}`);
    }
  }
  pick('capabilityAdd', capAdd?.length ? [...new Set(capAdd)].sort() : undefined);
  pick('capabilityDrop', capDrop?.length ? [...new Set(capDrop)].sort() : undefined);

  const sysctls = input.sysctls ?? prev?.sysctls;
  for (const k of Object.keys(sysctls ?? {})) {
    const p = sysctlProblem(k);
    if (p) throw invalidArgument(p);
  }
  pick('sysctls', sysctls && Object.keys(sysctls).length ? { ...sysctls } : undefined);

  const ulimits = input.ulimits ?? prev?.ulimits;
  if (ulimits) {
    const names = new Set<string>();
    for (const u of ulimits) {
      const p = ulimitProblem(u);
      if (p) throw invalidArgument(`invalid ulimit ${u.name}=${u.soft}:${u.hard}: ${p}`);
      if (names.has(u.name)) throw invalidArgument(`ulimit ${u.name} is given twice; give each limit once`);
      names.add(u.name);
    }
  }
  pick('ulimits', ulimits?.length ? [...ulimits].map((u): Ulimit => ({ name: u.name, soft: u.soft, hard: u.hard })).sort((a, b) => (a.name < b.name ? -1 : 1)) : undefined);

  const dnsPrev = prev?.dnsConfig;
  const dns: DnsConfig = {
    nameservers: checkStrings('DNS server', input.dns ?? dnsPrev?.nameservers ?? [], (s) => (isIpAddress(s) ? undefined : 'expected an IP address, e.g. 10.0.0.2')),
    search: checkStrings('DNS search domain', input.dnsSearch ?? dnsPrev?.search ?? [], (s) => (s === '.' || isHostname(s) ? undefined : 'expected a domain such as example.com')),
    options: checkStrings('DNS option', input.dnsOptions ?? dnsPrev?.options ?? [], (s) => (s.trim() === '' || /\s/.test(s) ? 'expected an option such as ndots:2' : undefined)),
  };
  for (const k of ['nameservers', 'search', 'options'] as const) if (!dns[k]?.length) delete dns[k];
  pick('dnsConfig', Object.keys(dns).length ? dns : undefined);

  const hosts = input.hosts ?? prev?.hosts;
  pick('hosts', hosts?.length ? checkStrings('extra host', hosts, hostLineProblem) : undefined);

  const task: TaskSpec = spec.task;
  const limPrev = base?.task.resources?.limits;
  const limits: NonNullable<NonNullable<TaskSpec['resources']>['limits']> = {};
  const lc = input.limitNanoCpus ?? limPrev?.nanoCpus;
  if (lc !== undefined && checkNanoCpus('CPU limit', lc)) limits.nanoCpus = lc;
  const lm = input.limitMemoryBytes ?? limPrev?.memoryBytes;
  if (lm !== undefined) {
    wholeNumber('memory limit', lm, 0, ' bytes');
    if (lm !== 0 && lm < MIN_MEMORY_LIMIT_BYTES) {
      throw invalidArgument(`invalid memory limit ${lm} bytes: must be 0 (none) or at least 6MiB (${MIN_MEMORY_LIMIT_BYTES} bytes), the engine's minimum`);
    }
    if (lm) limits.memoryBytes = lm;
  }
  const lp = input.limitPids ?? limPrev?.pids;
  if (lp !== undefined && wholeNumber('pids limit', lp, 0, ' (0 = unlimited)')) limits.pids = lp;
  const reservations = { ...(task.resources?.reservations ?? {}) };
  if (reservations.nanoCpus) checkNanoCpus('CPU reservation', reservations.nanoCpus);
  const generic = input.genericResources ?? base?.task.resources?.reservations?.genericResources;
  if (generic?.length) reservations.genericResources = checkGenericResources(generic);
  else delete reservations.genericResources;
  task.resources = { reservations, ...(Object.keys(limits).length ? { limits } : {}) };

  const log = input.logDriver ? checkLogDriver(input.logDriver) : base?.task.logDriver;
  if (log) task.logDriver = log;
  else delete task.logDriver;

  const prefs = input.placementPreferences ?? base?.task.placement.preferences;
  if (prefs?.length) task.placement.preferences = checkPreferences(prefs);
  else delete task.placement.preferences;
  return spec;
}
