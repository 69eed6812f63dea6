import type { HealthConfig, PortConfig, Service, ServiceSpecInput as ContractSpecInput, Task } from '@shoal/api';
import { SERVICE_MODES, isGlobalMode, modeName } from '@shoal/api';
import { UsageError } from '../errors.js';
import { prettyService } from '../format/pretty.js';
import { serviceIds, serviceTable } from '../format/tables.js';
import { inspectJson } from '../format/text.js';
import { renderTemplate } from '../format/template.js';
import {
  checkServiceName, parseBytes, parseCount, parseDuration, parseEnv, parseFileRef, parseLabels, parseNanoCpus, parsePublish, parseScaleArg, splitWords,
} from '../parse/values.js';
import { type Args, bool, connect, forEach, list, out, str } from './common.js';
import { waitForService } from './progress.js';
import { runtimeCreateFlags, runtimeUpdateFlags } from './service-options.js';
import { filterTasks, parseTaskFilters, printTasks } from './tasks.js';

/** The service spec fields `service.create` / `service.update` take (the control contract's). */
export type ServiceSpecInput = Partial<ContractSpecInput>;

function oneOf<const T extends string>(v: string, allowed: readonly T[], flagName: string): T {
  if (!(allowed as readonly string[]).includes(v)) {
    throw new UsageError(`invalid ${flagName} value ${JSON.stringify(v)}: use ${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}`);
  }
  return v as T;
}

function ratio(v: string, flagName: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(`invalid ${flagName} value ${JSON.stringify(v)}: must be a number between 0 and 1`);
  return n;
}

/**
 * Reads the flags both `create` and `update` accept (restart, update/rollback config, resources,
 * stop grace period, hostname, endpoint mode, max per node) into `spec`. Pure apart from reading `a`.
 */
export function commonSpecFlags(a: Args, spec: ServiceSpecInput): void {
  const restart: NonNullable<ServiceSpecInput['restart']> = {};
  let v: string | undefined;
  if ((v = str(a, 'restart-condition')) !== undefined) restart.condition = oneOf(v, ['none', 'on-failure', 'any'], '--restart-condition');
  if ((v = str(a, 'restart-delay')) !== undefined) restart.delayMs = parseDuration(v, '--restart-delay');
  if ((v = str(a, 'restart-max-attempts')) !== undefined) restart.maxAttempts = parseCount(v, '--restart-max-attempts');
  if ((v = str(a, 'restart-window')) !== undefined) restart.windowMs = parseDuration(v, '--restart-window');
  if (Object.keys(restart).length) spec.restart = restart;
  for (const kind of ['update', 'rollback'] as const) {
    const u: NonNullable<ServiceSpecInput['update']> = {};
    if ((v = str(a, `${kind}-parallelism`)) !== undefined) u.parallelism = parseCount(v, `--${kind}-parallelism`);
    if ((v = str(a, `${kind}-delay`)) !== undefined) u.delayMs = parseDuration(v, `--${kind}-delay`);
    if ((v = str(a, `${kind}-order`)) !== undefined) u.order = oneOf(v, ['start-first', 'stop-first'], `--${kind}-order`);
    if ((v = str(a, `${kind}-failure-action`)) !== undefined) {
      u.failureAction = oneOf(v, kind === 'update' ? ['pause', 'continue', 'rollback'] : ['pause', 'continue'], `--${kind}-failure-action`);
    }
    if ((v = str(a, `${kind}-monitor`)) !== undefined) u.monitorMs = parseDuration(v, `--${kind}-monitor`);
    if ((v = str(a, `${kind}-max-failure-ratio`)) !== undefined) u.maxFailureRatio = ratio(v, `--${kind}-max-failure-ratio`);
    if (Object.keys(u).length) spec[kind] = u;
  }
  if ((v = str(a, 'replicas-max-per-node')) !== undefined) spec.maxReplicasPerNode = parseCount(v, '--replicas-max-per-node');
  if ((v = str(a, 'stop-grace-period')) !== undefined) spec.stopGracePeriodMs = parseDuration(v, '--stop-grace-period');
  if ((v = str(a, 'hostname')) !== undefined) spec.hostname = v;
  if ((v = str(a, 'entrypoint')) !== undefined) spec.command = splitWords(v);
  if ((v = str(a, 'endpoint-mode')) !== undefined) spec.endpointMode = oneOf(v, ['vip', 'dnsrr'], '--endpoint-mode');
  if ((v = str(a, 'reserve-cpu')) !== undefined) spec.reserveNanoCpus = parseNanoCpus(v, '--reserve-cpu');
  if ((v = str(a, 'reserve-memory')) !== undefined) spec.reserveMemoryBytes = parseBytes(v, '--reserve-memory');
}

/** The `--health-*` flags as given (undefined: not given); `none` is `--no-healthcheck`. */
interface HealthFlags {
  none: boolean;
  cmd?: string;
  intervalMs?: number;
  timeoutMs?: number;
  startPeriodMs?: number;
  retries?: number;
}

const HEALTH_DURATIONS = [['health-interval', 'intervalMs'], ['health-timeout', 'timeoutMs'], ['health-start-period', 'startPeriodMs']] as const;

/**
 * Reads the health-check flags; undefined when none is given. @throws UsageError for a bad value,
 * or for `--no-healthcheck` together with a `--health-*` flag (Docker refuses that too).
 */
function healthFlags(a: Args): HealthFlags | undefined {
  const none = bool(a, 'no-healthcheck');
  const h: HealthFlags = { none };
  const given: string[] = [];
  let v: string | undefined;
  if ((v = str(a, 'health-cmd')) !== undefined) {
    h.cmd = v;
    given.push('--health-cmd');
  }
  for (const [flagName, key] of HEALTH_DURATIONS) {
    if ((v = str(a, flagName)) === undefined) continue;
    const ms = parseDuration(v, `--${flagName}`);
    // The engine refuses durations below 1 ms (0 means its default).
    if (ms === 0 && /[1-9]/.test(v)) throw new UsageError(`invalid --${flagName} value ${JSON.stringify(v)}: must be 0 (default) or at least 1ms`);
    h[key] = ms;
    given.push(`--${flagName}`);
  }
  if ((v = str(a, 'health-retries')) !== undefined) {
    h.retries = parseCount(v, '--health-retries');
    given.push('--health-retries');
  }
  if (none && given.length) throw new UsageError(`--no-healthcheck conflicts with ${given.join(', ')}; give either --no-healthcheck or --health-* flags`);
  return none || given.length ? h : undefined;
}

/**
 * The health check after applying `h` to `cur` (Docker's rules): `--no-healthcheck` → `['NONE']`;
 * otherwise only the given fields change, a disabled check (`NONE`) is re-enabled with the image's
 * test unless `--health-cmd` gives one, and `--health-cmd ''` goes back to the image's test.
 */
function applyHealth(h: HealthFlags, cur: HealthConfig | undefined): HealthConfig {
  if (h.none) return { test: ['NONE'] };
  const out: HealthConfig = { ...(cur ?? { test: [] }) };
  if (out.test[0] === 'NONE') out.test = [];
  if (h.cmd !== undefined) out.test = h.cmd.trim() === '' ? [] : ['CMD-SHELL', h.cmd];
  for (const key of ['intervalMs', 'timeoutMs', 'startPeriodMs', 'retries'] as const) {
    if (h[key] !== undefined) out[key] = h[key];
  }
  return out;
}

/**
 * A default service name from the image: `shoal/busybox:latest` → `busybox-<5 random chars>`;
 * characters a service name may not have (dots included) become `-`, so the result is always a
 * valid name ({@link checkServiceName}).
 */
export function defaultName(image: string): string {
  const base = image.replace(/@.*$/, '').replace(/:[^/]*$/, '').split('/').pop() ?? 'service';
  const clean = base.replace(/[^a-zA-Z0-9_-]+/g, '-').replace(/^[^a-zA-Z0-9]+/, '').slice(0, 56) || 'service';
  const rand = Math.random().toString(36).slice(2, 7).padEnd(5, '0');
  return `${clean}-${rand}`;
}

/**
 * Builds `service.create`'s params from the command line. Pure (apart from the random default
 * name). Everything after IMAGE is the container's CMD (`args`, Docker semantics; `--entrypoint`
 * sets `command`). @throws UsageError naming a bad value.
 */
export function createSpec(a: Args, commandWords: readonly string[]): ServiceSpecInput {
  const image = str(a, 'image') ?? '';
  if (image.trim() === '') throw new UsageError('missing IMAGE; usage: shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]');
  const name = str(a, 'name');
  const spec: ServiceSpecInput = { name: name === undefined ? defaultName(image) : checkServiceName(name), image };
  const mode = str(a, 'mode');
  if (mode !== undefined) spec.mode = oneOf(mode, [...SERVICE_MODES], '--mode');
  const replicas = str(a, 'replicas');
  if (replicas !== undefined) {
    if (spec.mode === 'global' || spec.mode === 'global-job') throw new UsageError('--replicas can only be used with replicated or replicated-job mode');
    spec.replicas = parseCount(replicas, 'replicas');
  }
  if (str(a, 'max-concurrent') !== undefined && spec.mode !== 'replicated-job') {
    throw new UsageError('--max-concurrent can only be used with replicated-job mode; add --mode replicated-job');
  }
  if ((spec.mode === 'replicated-job' || spec.mode === 'global-job') && Object.keys(a).some((k) => /^(update|rollback)-/.test(k) && a[k] !== undefined)) {
    throw new UsageError('update and rollback configuration is not supported for jobs');
  }
  if (commandWords.length) spec.args = [...commandWords];
  const env = list(a, 'env').map(parseEnv);
  if (env.length) spec.env = env;
  const labels = list(a, 'label');
  if (labels.length) spec.labels = parseLabels(labels, '--label');
  const cl = list(a, 'container-label');
  if (cl.length) spec.containerLabels = parseLabels(cl, '--container-label');
  const constraints = list(a, 'constraint');
  if (constraints.length) spec.constraints = constraints;
  const nets = list(a, 'network');
  if (nets.length) spec.networks = nets;
  const ports = list(a, 'publish').flatMap(parsePublish);
  if (ports.length) spec.ports = ports;
  const secrets = list(a, 'secret').map((v) => parseFileRef(v, '--secret'));
  if (secrets.length) spec.secrets = secrets;
  const configs = list(a, 'config').map((v) => parseFileRef(v, '--config'));
  if (configs.length) spec.configs = configs;
  const health = healthFlags(a);
  if (health) spec.healthcheck = applyHealth(health, undefined);
  commonSpecFlags(a, spec);
  runtimeCreateFlags(a, spec);
  return spec;
}

/** `service create … IMAGE [COMMAND [ARG…]]`: prints the service ID, then waits unless `-d`. */
export async function create(a: Args, commandWords: readonly string[]): Promise<void> {
  const spec = createSpec(a, commandWords);
  const call = connect(a);
  const { id } = await call('service.create', spec as ContractSpecInput);
  out(`${id}\n`);
  if (!bool(a, 'detach')) await waitForService(call, id, { quiet: bool(a, 'quiet'), action: 'created' });
}

/** `service ls [-q]`. */
export async function ls(a: Args): Promise<void> {
  const items = await connect(a)('service.ls', {});
  out(bool(a, 'quiet') ? serviceIds(items) : serviceTable(items, str(a, 'format')));
}

/** `service ps [-f …] [--no-trunc] [-q] SERVICE…`. */
export async function ps(a: Args): Promise<void> {
  const call = connect(a);
  const filters = parseTaskFilters(list(a, 'filter'), true);
  const tasks: Task[] = [];
  const nodes: Record<string, string> = {};
  let error: unknown;
  try {
    await forEach(list(a, 'services'), async (ref) => {
      const r = await call('service.ps', {
        ref,
        ...(filters.desiredState ? { desiredState: filters.desiredState } : {}),
        ...(filters.node ? { node: filters.node } : {}),
      });
      tasks.push(...r.tasks);
      Object.assign(nodes, r.nodes);
    });
  } catch (e) {
    error = e;
  }
  if (!error || tasks.length) printTasks(a, filterTasks(tasks, filters), nodes);
  if (error) throw error;
}

/** `service inspect [--pretty] SERVICE…`: a JSON array (4-space indent) like `docker service inspect`. */
export async function inspect(a: Args): Promise<void> {
  const call = connect(a);
  const found: Service[] = [];
  try {
    await forEach(list(a, 'services'), async (ref) => {
      found.push(await call('service.inspect', { ref }));
    });
  } finally {
    const format = str(a, 'format');
    if (format !== undefined) out(found.map((s) => `${renderTemplate(format, s)}\n`).join(''));
    else if (bool(a, 'pretty')) out(found.map(prettyService).join('\n'));
    else out(inspectJson(found));
  }
}

/** `service scale SERVICE=REPLICAS…`: checks every argument first, then scales each. */
export async function scale(a: Args): Promise<void> {
  const pairs = list(a, 'pairs').map(parseScaleArg);
  const call = connect(a);
  const scaled: string[] = [];
  let failed: unknown;
  try {
    await forEach(pairs, async ({ service, replicas }) => {
      const r = await call('service.scale', { ref: service, replicas });
      out(`${service} scaled to ${r.replicas}\n`);
      scaled.push(r.id);
    });
  } catch (e) {
    failed = e;
  }
  if (!bool(a, 'detach')) {
    for (const id of scaled) await waitForService(call, id, { action: 'scaled', specVersionBefore: 'unchanged' });
  }
  if (failed) throw failed;
}

/** Removes `KEY` and `KEY=…` entries of an env list. */
function envWithout(env: readonly string[], keys: readonly string[]): string[] {
  return env.filter((e) => {
    const k = e.includes('=') ? e.slice(0, e.indexOf('=')) : e;
    return !keys.includes(k) && !keys.includes(e);
  });
}

function samePort(p: PortConfig, q: PortConfig): boolean {
  return p.targetPort === q.targetPort && p.protocol === q.protocol && p.publishedPort === q.publishedPort && p.publishMode === q.publishMode;
}

/**
 * Computes `service.update`'s partial spec from `service update` flags and the current service.
 * List flags (`--env-add/--env-rm`, `--label-add/-rm`, `--constraint-add/-rm`, `--publish-add/-rm`,
 * `--network-add/-rm`) are applied to the current values, and so are the `--health-*` flags (only
 * the given fields of the current health check change). Pure. @throws UsageError.
 */
export function updateSpec(a: Args, cur: Service, networkIds: Readonly<Record<string, string>> = {}): ServiceSpecInput {
  const spec: ServiceSpecInput = {};
  const c = cur.spec.task.container;
  let v: string | undefined;
  if ((v = str(a, 'image')) !== undefined) {
    if (v.trim() === '') throw new UsageError('invalid --image value "": give an image reference such as shoal/busybox:latest');
    spec.image = v;
  }
  if ((v = str(a, 'replicas')) !== undefined) {
    if (isGlobalMode(cur.spec.mode)) throw new UsageError(`--replicas can only be used with replicated or replicated-job mode; ${cur.spec.name} is ${modeName(cur.spec.mode)}`);
    spec.replicas = parseCount(v, 'replicas');
  }
  if ((v = str(a, 'args')) !== undefined) spec.args = splitWords(v);
  const envAdd = list(a, 'env-add').map(parseEnv);
  const envRm = list(a, 'env-rm');
  if (envAdd.length || envRm.length) {
    const addKeys = envAdd.map((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e));
    spec.env = [...envWithout(c.env ?? [], [...envRm, ...addKeys]), ...envAdd];
  }
  const labelAdd = list(a, 'label-add');
  const labelRm = list(a, 'label-rm');
  if (labelAdd.length || labelRm.length) {
    const labels = { ...cur.spec.labels };
    for (const k of labelRm) delete labels[k];
    Object.assign(labels, parseLabels(labelAdd, '--label-add'));
    spec.labels = labels;
  }
  const clAdd = list(a, 'container-label-add');
  const clRm = list(a, 'container-label-rm');
  if (clAdd.length || clRm.length) {
    const labels = { ...(c.labels ?? {}) };
    for (const k of clRm) delete labels[k];
    Object.assign(labels, parseLabels(clAdd, '--container-label-add'));
    spec.containerLabels = labels;
  }
  const conAdd = list(a, 'constraint-add');
  const conRm = list(a, 'constraint-rm');
  if (conAdd.length || conRm.length) {
    const norm = (s: string) => s.replace(/\s+/g, '');
    const kept = cur.spec.task.placement.constraints.filter((x) => !conRm.some((r) => norm(r) === norm(x)));
    for (const x of conAdd) if (!kept.some((k) => norm(k) === norm(x))) kept.push(x);
    spec.constraints = kept;
  }
  const pubAdd = list(a, 'publish-add').flatMap(parsePublish);
  const pubRm = list(a, 'publish-rm');
  if (pubAdd.length || pubRm.length) {
    let ports: PortConfig[] = [...(cur.spec.endpoint?.ports ?? [])];
    for (const r of pubRm) {
      if (/^\d+(\/(tcp|udp))?$/.test(r)) {
        const [port, proto] = r.split('/');
        ports = ports.filter((p) => !(p.targetPort === Number(port) && (!proto || p.protocol === proto)));
      } else {
        const rm = parsePublish(r);
        ports = ports.filter((p) => !rm.some((q) => p.targetPort === q.targetPort && p.protocol === q.protocol));
      }
    }
    for (const p of pubAdd) {
      ports = ports.filter((q) => !(p.publishedPort !== 0 && q.publishedPort === p.publishedPort && q.protocol === p.protocol) && !samePort(p, q));
      ports.push(p);
    }
    spec.ports = ports;
  }
  const netAdd = list(a, 'network-add');
  const netRm = list(a, 'network-rm');
  if (netAdd.length || netRm.length) {
    const rmIds = netRm.map((n) => networkIds[n] ?? n);
    const nets = cur.spec.task.networks.map((n) => n.target).filter((id) => !rmIds.includes(id));
    for (const n of netAdd) if (!nets.includes(networkIds[n] ?? n)) nets.push(n);
    spec.networks = nets;
  }
  // Secrets and configs (Docker's getUpdatedSecrets/Configs): remove by name, then append the
  // added ones; the ones kept are sent by ID with their targets, so nothing else changes.
  const secAdd = list(a, 'secret-add').map((v) => parseFileRef(v, '--secret-add'));
  const secRm = list(a, 'secret-rm');
  if (secAdd.length || secRm.length) {
    spec.secrets = [
      ...(c.secrets ?? []).filter((r) => !secRm.includes(r.secretName) && !secRm.includes(r.secretId))
        .map((r) => ({ source: r.secretId, target: r.file.name, uid: r.file.uid, gid: r.file.gid, mode: r.file.mode })),
      ...secAdd,
    ];
  }
  const cfgAdd = list(a, 'config-add').map((v) => parseFileRef(v, '--config-add'));
  const cfgRm = list(a, 'config-rm');
  if (cfgAdd.length || cfgRm.length) {
    spec.configs = [
      ...(c.configs ?? []).filter((r) => !cfgRm.includes(r.configName) && !cfgRm.includes(r.configId))
        .map((r) => ({ source: r.configId, target: r.file.name, uid: r.file.uid, gid: r.file.gid, mode: r.file.mode })),
      ...cfgAdd,
    ];
  }
  const health = healthFlags(a);
  if (health) spec.healthcheck = applyHealth(health, c.healthcheck);
  commonSpecFlags(a, spec);
  runtimeUpdateFlags(a, cur, spec);
  return spec;
}

/** `service update [flags] SERVICE`: prints the service name, then waits unless `-d`. */
export async function update(a: Args): Promise<void> {
  const ref = str(a, 'service') ?? '';
  const call = connect(a);
  const cur = await call('service.inspect', { ref });
  const networkIds: Record<string, string> = {};
  for (const n of list(a, 'network-rm')) {
    try {
      networkIds[n] = (await call('network.inspect', { ref: n })).id;
    } catch {
      // Not a known network name: treat it as an ID.
    }
  }
  const rollback = bool(a, 'rollback');
  const spec = rollback ? {} : updateSpec(a, cur, networkIds);
  await call('service.update', {
    ref: cur.id,
    version: cur.meta.version,
    ...(Object.keys(spec).length ? { spec } : {}),
    ...(bool(a, 'force') ? { force: true } : {}),
    ...(rollback ? { rollback: true } : {}),
  });
  out(`${ref}\n`);
  if (!bool(a, 'detach')) await waitForService(call, cur.id, { quiet: bool(a, 'quiet'), action: rollback ? 'rolled back' : 'updated', specVersionBefore: cur.specVersion });
}

/** `service rollback SERVICE`: reverts to the previous spec. */
export async function rollback(a: Args): Promise<void> {
  const ref = str(a, 'service') ?? '';
  const call = connect(a);
  const { id } = await call('service.update', { ref, rollback: true });
  out(`${ref}\n`);
  if (!bool(a, 'detach')) await waitForService(call, id, { quiet: bool(a, 'quiet'), action: 'rolled back' });
}

/** `service rm SERVICE…`: prints each removed service as given. */
export async function rm(a: Args): Promise<void> {
  const call = connect(a);
  await forEach(list(a, 'services'), async (ref) => {
    await call('service.rm', { ref });
    out(`${ref}\n`);
  });
}

