import {
  type ServiceSpecInput,
  DEFAULTS, MAX_DURATION_MS, MAX_DURATION_TEXT, invalidArgument, parseConstraint, serviceNameProblem,
  type HealthConfig, type PortConfig, type RestartPolicy, type ServiceSpec, type UpdateConfig,
  isGlobalMode, isJobMode,
} from '@shoal/api';
import { applyRuntimeOptions, normalizeMode } from './validate-options.js';
import { checkFileRefs } from './secrets.js';

/**
 * Most replicas one service may have. Each node's overlay /24 holds about 250 tasks, and every
 * write of a service's tasks must fit one Raft proposal (8 MiB): 2,000 keeps both safe for the
 * clusters Shoal is for (a handful to a few hundred machines).
 */
export const MAX_REPLICAS = 2000;

/** Validates a desired replica count: a whole number from 0 to {@link MAX_REPLICAS}. @throws InvalidArgument. */
export function checkReplicaCount(n: unknown): number {
  const v = checkReplicas(n);
  if (v > MAX_REPLICAS) throw invalidArgument(`invalid replicas value ${v}: at most ${MAX_REPLICAS} replicas per service; split the work over several services`);
  return v;
}

/** Validates a count: a whole number ≥ 0. @throws InvalidArgument naming the value. */
export function checkReplicas(n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw invalidArgument(`invalid replicas value ${JSON.stringify(n)}: must be a whole number >= 0`);
  }
  return n;
}

/** Validates one placement constraint (`key==value` / `key!=value`, SwarmKit's language). */
export function checkConstraint(expr: string): void {
  parseConstraint(expr);
}

function checkPort(p: NonNullable<ServiceSpecInput['ports']>[number]): PortConfig {
  const target = p.targetPort;
  if (typeof target !== 'number' || !Number.isInteger(target) || target < 1 || target > 65535) {
    throw invalidArgument(`invalid target port ${JSON.stringify(target)}: must be 1-65535`);
  }
  const published = p.publishedPort ?? 0;
  if (!Number.isInteger(published) || published < 0 || published > 65535) {
    throw invalidArgument(`invalid published port ${JSON.stringify(published)}: must be 0-65535 (0 picks one)`);
  }
  const protocol = (p.protocol ?? 'tcp') as PortConfig['protocol'];
  if (protocol !== 'tcp' && protocol !== 'udp') throw invalidArgument(`invalid protocol ${JSON.stringify(protocol)}: must be tcp or udp`);
  const publishMode = (p.publishMode ?? 'ingress') as PortConfig['publishMode'];
  if (publishMode !== 'ingress' && publishMode !== 'host') throw invalidArgument(`invalid publish mode ${JSON.stringify(publishMode)}: must be ingress or host`);
  return { protocol, targetPort: target, publishedPort: published, publishMode, ...(p.name ? { name: p.name } : {}) };
}

/** The "too long" message for a duration of `v` ms (above Go's time.Duration range, as Docker refuses). */
const tooLong = (what: string, v: number) =>
  `invalid ${what} ${v} ms: longer than the longest duration, ${MAX_DURATION_MS} ms (${MAX_DURATION_TEXT})`;

/**
 * Validates a duration in ms: a number from 0 to {@link MAX_DURATION_MS} (Go's `time.Duration`
 * range, which Docker enforces). @throws InvalidArgument naming `what` and the value.
 */
export function checkDuration(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalidArgument(`invalid ${what} ${JSON.stringify(v)}: must be a duration in ms >= 0`);
  if (v > MAX_DURATION_MS) throw invalidArgument(tooLong(what, v));
  return v;
}

/**
 * Validates an update or rollback config: durations (`delayMs`, `monitorMs`), `parallelism` (a
 * whole number ≥ 0; 0 = all at once), `maxFailureRatio` (0–1), `order` and `failureAction`
 * (`rollback` only for updates, as in Docker).
 * @throws ShoalError InvalidArgument naming the field, the value and what is allowed.
 */
function checkUpdateConfig(kind: 'update' | 'rollback', input: Record<keyof UpdateConfig, unknown>): UpdateConfig {
  const u = input as UpdateConfig;
  checkDuration(`${kind} delay`, u.delayMs);
  checkDuration(`${kind} monitor`, u.monitorMs);
  if (typeof u.parallelism !== 'number' || !Number.isInteger(u.parallelism) || u.parallelism < 0) {
    throw invalidArgument(`invalid ${kind} parallelism ${JSON.stringify(u.parallelism)}: must be a whole number >= 0 (0 = all at once)`);
  }
  if (typeof u.maxFailureRatio !== 'number' || !Number.isFinite(u.maxFailureRatio) || u.maxFailureRatio < 0 || u.maxFailureRatio > 1) {
    throw invalidArgument(`invalid ${kind} max failure ratio ${JSON.stringify(u.maxFailureRatio)}: must be a number from 0 to 1`);
  }
  if (u.order !== 'stop-first' && u.order !== 'start-first') {
    throw invalidArgument(`invalid ${kind} order ${JSON.stringify(u.order)}: must be stop-first or start-first`);
  }
  const actions = kind === 'update' ? ['pause', 'continue', 'rollback'] : ['pause', 'continue'];
  if (!actions.includes(u.failureAction)) {
    throw invalidArgument(`invalid ${kind} failure action ${JSON.stringify(u.failureAction)}: must be ${actions.slice(0, -1).join(', ')} or ${actions.at(-1)}`);
  }
  return u;
}

const HEALTH_TEST_EXAMPLE = 'e.g. ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"]';

/**
 * Validates a health check ({@link HealthConfig}): `test` is `[]` (the image's check), `["NONE"]`
 * alone (disabled; no durations or retries with it), `["CMD", prog, ...args]` or
 * `["CMD-SHELL", command]` with a non-blank command; `intervalMs`, `timeoutMs`, `startPeriodMs`
 * are 0 (the default) or at least 1 ms (the engine's minimum); `retries` a whole number >= 0.
 * @returns a copy with only the known fields. @throws InvalidArgument naming the bad value.
 */
export function checkHealthcheck(h: unknown): HealthConfig {
  if (!h || typeof h !== 'object' || Array.isArray(h)) {
    throw invalidArgument(`invalid healthcheck ${JSON.stringify(h)}: expected an object such as {"test": ["CMD-SHELL", "..."], "intervalMs": 5000}`);
  }
  const hc = h as Partial<Record<keyof HealthConfig, unknown>>;
  const test = hc.test ?? [];
  if (!Array.isArray(test) || test.some((w) => typeof w !== 'string')) {
    throw invalidArgument(`invalid healthcheck test ${JSON.stringify(test)}: must be a list of strings, ${HEALTH_TEST_EXAMPLE}`);
  }
  const shown = JSON.stringify(test);
  const kind = test[0];
  if (kind === 'CMD' && (test.length < 2 || test[1]!.trim() === '')) {
    throw invalidArgument(`invalid healthcheck test ${shown}: CMD needs a program to run, e.g. ["CMD", "wget", "-q", "http://localhost/"]`);
  } else if (kind === 'CMD-SHELL' && test.slice(1).join(' ').trim() === '') {
    throw invalidArgument(`invalid healthcheck test ${shown}: CMD-SHELL needs a shell command, ${HEALTH_TEST_EXAMPLE}`);
  } else if (kind === 'NONE' && test.length > 1) {
    throw invalidArgument(`invalid healthcheck test ${shown}: ["NONE"] disables the check and takes no command`);
  } else if (kind !== undefined && kind !== 'CMD' && kind !== 'CMD-SHELL' && kind !== 'NONE') {
    throw invalidArgument(`invalid healthcheck test ${shown}: the first element must be NONE, CMD or CMD-SHELL, ${HEALTH_TEST_EXAMPLE}`);
  }
  const out: HealthConfig = { test: [...(test as string[])] };
  const durations = [['intervalMs', 'interval'], ['timeoutMs', 'timeout'], ['startPeriodMs', 'start period']] as const;
  for (const [key, what] of durations) {
    const v = hc[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw invalidArgument(`invalid healthcheck ${what} ${JSON.stringify(v)}: must be a duration in ms >= 0 (0 = default)`);
    }
    if (v > 0 && v < 1) throw invalidArgument(`invalid healthcheck ${what} ${v} ms: must be 0 (default) or at least 1 ms`);
    if (v > MAX_DURATION_MS) throw invalidArgument(tooLong(`healthcheck ${what}`, v));
    out[key] = v;
  }
  if (hc.retries !== undefined) {
    if (typeof hc.retries !== 'number' || !Number.isSafeInteger(hc.retries) || hc.retries < 0) {
      throw invalidArgument(`invalid healthcheck retries ${JSON.stringify(hc.retries)}: must be a whole number >= 0 (0 = default 3)`);
    }
    out.retries = hc.retries;
  }
  if (kind === 'NONE' && (out.intervalMs || out.timeoutMs || out.startPeriodMs || out.retries)) {
    throw invalidArgument('invalid healthcheck: test ["NONE"] disables the check; drop its interval, timeout, start period and retries');
  }
  return out;
}

/**
 * Validates a service name ({@link serviceNameProblem}: a DNS label — letters, digits, `-`, `_`,
 * starting and ending with a letter or digit, at most 63 characters, no dots).
 * @throws InvalidArgument naming the value and the rule.
 */
export function checkServiceName(name: unknown): string {
  const problem = serviceNameProblem(name);
  if (problem) throw invalidArgument(problem);
  return name as string;
}

/**
 * Turns client input into a complete, valid ServiceSpec (defaults from Docker where users script
 * against them). On update (`base` given) a name equal to the current one is not checked again,
 * so a service created under older, looser rules stays updatable.
 * @throws ShoalError('InvalidArgument') with a one-line message naming the bad value.
 */
export function normalizeServiceSpec(input: ServiceSpecInput, base?: ServiceSpec): ServiceSpec {
  if (!input || typeof input !== 'object') throw invalidArgument('missing service spec');
  const name = input.name ?? base?.name;
  if (!(base && name === base.name)) checkServiceName(name);
  const image = input.image ?? base?.task.container.image;
  if (typeof image !== 'string' || image.trim() === '' || /\s/.test(image)) {
    throw invalidArgument(`invalid image ${JSON.stringify(image)}: give an image reference such as shoal/busybox:latest`);
  }
  const mode = normalizeMode(input, base, checkReplicaCount);
  const job = isJobMode(mode);
  for (const e of input.env ?? []) {
    if (typeof e !== 'string' || e === '' || e.startsWith('=')) throw invalidArgument(`invalid environment variable ${JSON.stringify(e)}: expected KEY=VALUE`);
  }
  const constraints = input.constraints ?? base?.task.placement.constraints ?? [];
  constraints.forEach(checkConstraint);
  const restartIn = { ...(base?.task.restart ?? DEFAULTS.restart), ...(input.restart ?? {}) };
  if (!['none', 'on-failure', 'any'].includes(restartIn.condition)) {
    throw invalidArgument(`invalid restart condition ${JSON.stringify(restartIn.condition)}: must be none, on-failure or any`);
  }
  const restart: RestartPolicy = {
    condition: restartIn.condition as RestartPolicy['condition'],
    delayMs: checkDuration('restart delay', restartIn.delayMs),
    maxAttempts: checkReplicas(restartIn.maxAttempts),
    windowMs: checkDuration('restart window', restartIn.windowMs),
  };
  const maxReplicas = input.maxReplicasPerNode ?? base?.task.placement.maxReplicas ?? 0;
  checkReplicas(maxReplicas);
  const ports = (input.ports ?? base?.endpoint?.ports ?? []).map(checkPort);
  const seen = new Set<string>();
  for (const p of ports) {
    if (p.publishedPort === 0) continue;
    const k = `${p.publishedPort}/${p.protocol}`;
    if (seen.has(k)) throw invalidArgument(`published port ${k} is given twice`);
    seen.add(k);
  }
  const endpointMode = input.endpointMode ?? base?.endpoint?.mode ?? 'vip';
  if (endpointMode !== 'vip' && endpointMode !== 'dnsrr') throw invalidArgument(`invalid endpoint mode ${JSON.stringify(endpointMode)}: must be vip or dnsrr`);
  if (endpointMode === 'dnsrr' && ports.some((p) => p.publishMode === 'ingress')) {
    throw invalidArgument('port published with ingress mode cannot be used with dnsrr mode; use mode=host');
  }
  const prev = base?.task.container;
  const container: ServiceSpec['task']['container'] = {
    image,
    ...(input.command ?? prev?.command ? { command: input.command ?? prev?.command } : {}),
    ...(input.args ?? prev?.args ? { args: input.args ?? prev?.args } : {}),
    env: input.env ?? prev?.env ?? [],
    labels: input.containerLabels ?? prev?.labels ?? {},
    ...(input.hostname ?? prev?.hostname ? { hostname: input.hostname ?? prev?.hostname } : {}),
    stopGracePeriodMs: checkDuration('stop grace period', input.stopGracePeriodMs ?? prev?.stopGracePeriodMs ?? DEFAULTS.stopGracePeriodMs),
  };
  const healthcheck = input.healthcheck ?? prev?.healthcheck;
  if (healthcheck !== undefined) container.healthcheck = checkHealthcheck(healthcheck);
  // Secret and config references: checked here, resolved to IDs in the write transaction
  // (controlapi resolveFileRefs); until then the source (name or ID) sits in the name field.
  const secrets = input.secrets !== undefined
    ? checkFileRefs('secrets', input.secrets).map((r) => ({ secretId: '', secretName: r.source, file: r.file }))
    : prev?.secrets;
  if (secrets?.length) container.secrets = secrets;
  const configs = input.configs !== undefined
    ? checkFileRefs('configs', input.configs).map((r) => ({ configId: '', configName: r.source, file: r.file }))
    : prev?.configs;
  if (configs?.length) container.configs = configs;
  if (job && (input.update || input.rollback)) {
    throw invalidArgument('update and rollback configuration is not supported for jobs; a job re-runs as a whole on every update');
  }
  if (isGlobalMode(mode) && (input.maxReplicasPerNode ?? 0) > 0) {
    throw invalidArgument('replicas-max-per-node can only be used with replicated or replicated-job mode');
  }
  const update = job ? undefined : checkUpdateConfig('update', { ...DEFAULTS.update, ...(base?.update ?? {}), ...(input.update ?? {}) });
  const rollback = job ? undefined : checkUpdateConfig('rollback', { ...DEFAULTS.update, ...(base?.rollback ?? {}), ...(input.rollback ?? {}) });
  const reservations = {
    nanoCpus: input.reserveNanoCpus ?? base?.task.resources?.reservations?.nanoCpus ?? 0,
    memoryBytes: input.reserveMemoryBytes ?? base?.task.resources?.reservations?.memoryBytes ?? 0,
  };
  const spec: ServiceSpec = {
    name: name as string,
    labels: input.labels ?? base?.labels ?? {},
    mode,
    task: {
      container,
      restart,
      placement: { constraints, maxReplicas },
      networks: input.networks
        ? input.networks.map((n) => (typeof n === 'string' ? { target: n } : { target: n.target, ...(n.aliases?.length ? { aliases: [...n.aliases] } : {}) }))
        : (base?.task.networks.map((n) => ({ ...n })) ?? []),
      resources: { reservations },
      forceUpdate: base?.task.forceUpdate ?? 0,
    },
    ...(update ? { update } : {}),
    ...(rollback ? { rollback } : {}),
    endpoint: { mode: endpointMode, ports },
  };
  return applyRuntimeOptions(input, base, spec);
}
