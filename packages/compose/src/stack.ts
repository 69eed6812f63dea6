/**
 * A loaded compose project mapped onto a stack: what `stack deploy` sends to the managers. The
 * mapping is Docker's (docker/cli `cli/compose/convert`), unless noted:
 *
 * - services become `STACK_SERVICE`, labelled `com.docker.stack.namespace=STACK` (service and
 *   container labels) and `com.docker.stack.image=IMAGE`; each is reachable by its short name on
 *   every network of the stack (an alias);
 * - networks become `STACK_NAME` (a service without networks joins `STACK_default`); `name:` keeps
 *   a name as written; `external: true` refers to an existing network;
 * - named volumes become volume mounts of `STACK_NAME` (or `name:`, or the external name), with
 *   their driver, options and labels; bind sources are resolved against the project directory;
 * - secrets and configs from `file:` (or a config's `content:`) are created as `STACK_NAME`;
 *   `external:` ones are referenced;
 * - `command` → the container's args, `entrypoint` → its command (Docker's naming);
 * - `deploy:` → mode (incl. jobs), replicas, resources, restart policy, update and rollback
 *   configs, placement, endpoint mode, labels; `restart:` is used when `deploy.restart_policy`
 *   is absent (Docker's conversion).
 * - Shoal goes further than Docker: `build:` is kept (the CLI builds the image and deploys it as
 *   `STACK_SERVICE`, or `image:` when given), and `depends_on` orders the deployment.
 *
 * Pure: file contents are read by the caller (`readFile`), paths are resolved with `path.posix`.
 */
import path from 'node:path';
import type { ServiceSpecInput } from '@shoal/api';
import { ComposeError, joinPath, posOf } from './source.js';
import { parseBytes, parseDuration, type Dependency, type Dict, type FileRef } from './normalize.js';
import { deployWaves, type ComposeProject, type ServiceConfig } from './load.js';

export const NAMESPACE_LABEL = 'com.docker.stack.namespace';
export const IMAGE_LABEL = 'com.docker.stack.image';

/** A network of the stack. */
export interface StackNetwork {
  /** Full name (`STACK_NAME`, or as written with `name:` or `external`). */
  name: string;
  external: boolean;
  driver?: string;
  attachable?: boolean;
  internal?: boolean;
  labels: Record<string, string>;
  options?: Record<string, string>;
  subnet?: string;
}

/** A secret or config of the stack. */
export interface StackFileObject {
  name: string;
  external: boolean;
  /** Content (base64) for objects created by the stack. */
  data?: string;
  labels: Record<string, string>;
  templateDriver?: string;
}

/** How to build a service's image (compose `build:`). */
export interface StackBuild {
  /** Absolute context directory. */
  context: string;
  dockerfile?: string;
  args: Record<string, string>;
  target?: string;
  /** The tag to give the built image. */
  tag: string;
}

export interface StackService {
  /** Short name (the compose key). */
  name: string;
  spec: ServiceSpecInput;
  dependsOn: Record<string, Dependency>;
  build?: StackBuild;
  hasHealthcheck: boolean;
  /** True for jobs (`service_completed_successfully` waits for them to complete). */
  job: boolean;
}

export interface StackPlan {
  name: string;
  /** Deployment order: waves of short service names whose depends_on are in earlier waves. */
  waves: string[][];
  networks: StackNetwork[];
  secrets: StackFileObject[];
  configs: StackFileObject[];
  services: StackService[];
  warnings: string[];
}

export interface StackOptions {
  /** Absolute directory of the first compose file (relative paths in the project are against it). */
  projectDir: string;
  /** The environment, for `environment:` entries without a value. */
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a file (absolute path) as bytes; undefined when it does not exist. */
  readFile(absPath: string): Buffer | undefined;
}

/** Docker's stack name rule (`docker stack deploy`: a valid network name prefix). */
export function checkStackName(name: string): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
    throw new ComposeError(`invalid stack name ${JSON.stringify(name)}: use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
}

const str = (v: unknown) => (v === undefined || v === null ? undefined : String(v));
const labelsOf = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  if (!v) return out;
  if (Array.isArray(v)) {
    for (const x of v) {
      const s = String(x);
      const i = s.indexOf('=');
      out[i < 0 ? s : s.slice(0, i)] = i < 0 ? '' : s.slice(i + 1);
    }
    return out;
  }
  for (const [k, x] of Object.entries(v as Dict)) out[k] = x === null || x === undefined ? '' : String(x);
  return out;
};

/**
 * Maps a loaded project onto stack `name`.
 * @throws ComposeError at the offending key (an unreadable secret file, a bad duration, …).
 */
export function toStack(project: ComposeProject, name: string, o: StackOptions): StackPlan {
  checkStackName(name);
  const warnings: string[] = [];
  const scope = (n: string) => `${name}_${n}`;
  const fail = (p: (string | number)[], msg: string): never => {
    const jp = joinPath(p);
    throw new ComposeError(msg, jp, posOf(project.origins, jp));
  };
  const dur = (v: unknown, p: (string | number)[]): number | undefined => {
    if (v === undefined || v === null) return undefined;
    try {
      return parseDuration(v as string);
    } catch (e) {
      return fail(p, (e as Error).message);
    }
  };
  const bytes = (v: unknown, p: (string | number)[]): number | undefined => {
    if (v === undefined || v === null) return undefined;
    try {
      return parseBytes(v as string);
    } catch (e) {
      return fail(p, (e as Error).message);
    }
  };
  const nsLabels = (l: Record<string, string>) => ({ ...l, [NAMESPACE_LABEL]: name });

  // Networks: those services use, plus `default` when a service has none.
  const usesDefault = Object.values(project.services).some((s) => !s.networks || Object.keys(s.networks).length === 0 || 'default' in s.networks);
  const netNames = new Set(Object.keys(project.networks));
  if (usesDefault) netNames.add('default');
  const networks: StackNetwork[] = [];
  const netFull = new Map<string, string>();
  for (const key of [...netNames].sort()) {
    const n = (project.networks[key] ?? {}) as Dict;
    const external = n['external'] === true || (typeof n['external'] === 'object' && n['external'] !== null);
    const extName = typeof n['external'] === 'object' && n['external'] !== null ? str((n['external'] as Dict)['name']) : undefined;
    const full = str(n['name']) ?? extName ?? (external ? key : scope(key));
    netFull.set(key, full);
    const ipam = n['ipam'] as Dict | undefined;
    const subnet = Array.isArray(ipam?.['config']) ? str(((ipam!['config'] as Dict[])[0] ?? {})['subnet']) : undefined;
    networks.push({
      name: full, external,
      ...(n['driver'] ? { driver: String(n['driver']) } : {}),
      ...(n['attachable'] !== undefined ? { attachable: !!n['attachable'] } : {}),
      ...(n['internal'] !== undefined ? { internal: !!n['internal'] } : {}),
      labels: external ? {} : nsLabels(labelsOf(n['labels'])),
      ...(n['driver_opts'] ? { options: labelsOf(n['driver_opts']) } : {}),
      ...(subnet ? { subnet } : {}),
    });
  }

  const fileObjects = (kind: 'secrets' | 'configs'): [StackFileObject[], Map<string, string>] => {
    const out: StackFileObject[] = [];
    const names = new Map<string, string>();
    for (const [key, obj] of Object.entries(project[kind]).sort(([a], [b]) => a.localeCompare(b))) {
      const d = obj ?? {};
      const external = d['external'] === true || (typeof d['external'] === 'object' && d['external'] !== null);
      const full = str(d['name']) ?? (external ? key : scope(key));
      names.set(key, full);
      if (external) {
        out.push({ name: full, external: true, labels: {} });
        continue;
      }
      let data: Buffer | undefined;
      if (typeof d['file'] === 'string') {
        const abs = path.resolve(o.projectDir, d['file']);
        data = o.readFile(abs);
        if (data === undefined) fail([kind, key, 'file'], `${kind === 'secrets' ? 'secret' : 'config'} file ${JSON.stringify(d['file'])} not found (${abs})`);
      } else if (typeof d['content'] === 'string') data = Buffer.from(d['content']);
      else if (typeof d['environment'] === 'string') {
        const v = o.env[d['environment']];
        if (v === undefined) fail([kind, key, 'environment'], `variable ${d['environment']} is not set`);
        data = Buffer.from(v!);
      } else fail([kind, key], `has no source: give file:, ${kind === 'configs' ? 'content:, ' : ''}environment: or external: true`);
      out.push({
        name: full, external: false, data: data!.toString('base64'), labels: nsLabels(labelsOf(d['labels'])),
        ...(d['template_driver'] ? { templateDriver: String(d['template_driver']) } : {}),
      });
    }
    return [out, names];
  };
  const [secrets, secretNames] = fileObjects('secrets');
  const [configs, configNames] = fileObjects('configs');

  const services: StackService[] = [];
  for (const [short, svc] of Object.entries(project.services).sort(([a], [b]) => a.localeCompare(b))) {
    services.push(mapService(short, svc));
  }
  return { name, waves: deployWaves(project), networks, secrets, configs, services, warnings };

  function mapService(short: string, s: ServiceConfig): StackService {
    const at = (...p: (string | number)[]) => ['services', short, ...p];
    const deploy = (s.deploy ?? {}) as Dict;
    const fullName = scope(short);
    let image = s.image;
    let build: StackBuild | undefined;
    if (s.build !== undefined) {
      const b = typeof s.build === 'string' ? { context: s.build } : (s.build as Dict);
      const tag = image ?? fullName;
      build = {
        context: path.resolve(o.projectDir, String(b['context'] ?? '.')),
        ...(b['dockerfile'] ? { dockerfile: String(b['dockerfile']) } : {}),
        args: Object.fromEntries(Object.entries(labelsOf(b['args']))),
        ...(b['target'] ? { target: String(b['target']) } : {}),
        tag,
      };
      image = tag;
    }
    const spec: ServiceSpecInput = { name: fullName, image: image! };
    // Mode and replicas (jobs: replicated-job takes replicas as completions).
    const mode = str(deploy['mode']) ?? 'replicated';
    if (!['replicated', 'global', 'replicated-job', 'global-job'].includes(mode)) {
      fail(at('deploy', 'mode'), `mode ${JSON.stringify(mode)} is not one of replicated, global, replicated-job, global-job`);
    }
    spec.mode = mode;
    const replicas = deploy['replicas'] ?? s['scale'];
    if (replicas !== undefined && (mode === 'replicated' || mode === 'replicated-job')) spec.replicas = Number(replicas);
    // Labels.
    spec.labels = { ...nsLabels(labelsOf(deploy['labels'])), [IMAGE_LABEL]: s.image ?? image! };
    spec.containerLabels = nsLabels(Object.fromEntries(Object.entries(s.labels ?? {}).map(([k, v]) => [k, v ?? ''])));
    // Process.
    if (s.entrypoint !== undefined && s.entrypoint !== null) spec.command = s.entrypoint as string[];
    if (s.command !== undefined && s.command !== null) spec.args = s.command as string[];
    const env: string[] = [];
    for (const [k, v] of Object.entries(s.environment ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
      const val = v ?? o.env[k];
      if (val !== undefined) env.push(`${k}=${val}`);
    }
    if (env.length) spec.env = env;
    if (s['hostname']) spec.hostname = String(s['hostname']);
    if (s['working_dir']) spec.dir = String(s['working_dir']);
    if (s['user']) spec.user = String(s['user']);
    if (s['group_add']) spec.groups = (s['group_add'] as unknown[]).map(String);
    if (s['stop_grace_period'] !== undefined) spec.stopGracePeriodMs = dur(s['stop_grace_period'], at('stop_grace_period'))!;
    if (s['stop_signal']) spec.stopSignal = String(s['stop_signal']);
    if (s['tty'] !== undefined) spec.tty = !!s['tty'];
    if (s['init'] !== undefined) spec.init = !!s['init'];
    if (s['read_only'] !== undefined) spec.readOnly = !!s['read_only'];
    if (s['cap_add']) spec.capAdd = (s['cap_add'] as unknown[]).map(String);
    if (s['cap_drop']) spec.capDrop = (s['cap_drop'] as unknown[]).map(String);
    if (s['sysctls'] && Object.keys(s['sysctls'] as Dict).length) spec.sysctls = labelsOf(s['sysctls']);
    if (s['ulimits']) {
      spec.ulimits = Object.entries(s['ulimits'] as Dict).map(([k, v]) => typeof v === 'number'
        ? { name: k, soft: v, hard: v }
        : { name: k, soft: Number((v as Dict)['soft']), hard: Number((v as Dict)['hard']) });
    }
    if ((s['dns'] as string[] | undefined)?.length) spec.dns = s['dns'] as string[];
    if ((s['dns_search'] as string[] | undefined)?.length) spec.dnsSearch = s['dns_search'] as string[];
    if (s['dns_opt']) spec.dnsOptions = (s['dns_opt'] as unknown[]).map(String);
    if ((s['extra_hosts'] as string[] | undefined)?.length) {
      spec.hosts = (s['extra_hosts'] as string[]).map((h) => {
        const i = h.indexOf(':');
        return i < 0 ? h : `${h.slice(i + 1)} ${h.slice(0, i)}`;
      });
    }
    const logging = s['logging'] as Dict | undefined;
    if (logging) spec.logDriver = { name: String(logging['driver'] ?? ''), ...(logging['options'] ? { options: labelsOf(logging['options']) } : {}) };
    // Health check.
    const hc = s.healthcheck;
    if (hc) {
      if (hc['disable'] === true) spec.healthcheck = { test: ['NONE'] };
      else {
        spec.healthcheck = {
          test: (hc['test'] as string[] | undefined) ?? [],
          ...(hc['interval'] !== undefined ? { intervalMs: dur(hc['interval'], at('healthcheck', 'interval'))! } : {}),
          ...(hc['timeout'] !== undefined ? { timeoutMs: dur(hc['timeout'], at('healthcheck', 'timeout'))! } : {}),
          ...(hc['start_period'] !== undefined ? { startPeriodMs: dur(hc['start_period'], at('healthcheck', 'start_period'))! } : {}),
          ...(hc['retries'] !== undefined ? { retries: Number(hc['retries']) } : {}),
        };
      }
    }
    // Restart policy: deploy.restart_policy, else `restart:` (Docker's conversion).
    const rp = deploy['restart_policy'] as Dict | undefined;
    if (rp) {
      spec.restart = {
        ...(rp['condition'] ? { condition: String(rp['condition']) } : {}),
        ...(rp['delay'] !== undefined ? { delayMs: dur(rp['delay'], at('deploy', 'restart_policy', 'delay'))! } : {}),
        ...(rp['max_attempts'] !== undefined ? { maxAttempts: Number(rp['max_attempts']) } : {}),
        ...(rp['window'] !== undefined ? { windowMs: dur(rp['window'], at('deploy', 'restart_policy', 'window'))! } : {}),
      };
    } else if (typeof s['restart'] === 'string') {
      const [policy, max] = String(s['restart']).split(':');
      if (policy === 'always' || policy === 'unless-stopped') spec.restart = { condition: 'any', ...(max ? { maxAttempts: Number(max) } : {}) };
      else if (policy === 'on-failure') spec.restart = { condition: 'on-failure', ...(max ? { maxAttempts: Number(max) } : {}) };
      else if (policy === 'no') spec.restart = { condition: 'none' };
    }
    // Update and rollback configs.
    for (const [key, field] of [['update_config', 'update'], ['rollback_config', 'rollback']] as const) {
      const u = deploy[key] as Dict | undefined;
      if (!u) continue;
      spec[field] = {
        ...(u['parallelism'] !== undefined ? { parallelism: Number(u['parallelism']) } : {}),
        ...(u['delay'] !== undefined ? { delayMs: dur(u['delay'], at('deploy', key, 'delay'))! } : {}),
        ...(u['failure_action'] ? { failureAction: String(u['failure_action']) } : {}),
        ...(u['monitor'] !== undefined ? { monitorMs: dur(u['monitor'], at('deploy', key, 'monitor'))! } : {}),
        ...(u['max_failure_ratio'] !== undefined ? { maxFailureRatio: Number(u['max_failure_ratio']) } : {}),
        ...(u['order'] ? { order: String(u['order']) } : {}),
      };
    }
    // Placement.
    const pl = deploy['placement'] as Dict | undefined;
    if (pl?.['constraints']) spec.constraints = (pl['constraints'] as unknown[]).map(String);
    if (pl?.['preferences']) spec.placementPreferences = (pl['preferences'] as Dict[]).map((p) => ({ spread: String(p['spread']) }));
    if (pl?.['max_replicas_per_node'] !== undefined) spec.maxReplicasPerNode = Number(pl['max_replicas_per_node']);
    if (deploy['endpoint_mode']) spec.endpointMode = String(deploy['endpoint_mode']);
    // Resources.
    const res = deploy['resources'] as Dict | undefined;
    const lim = res?.['limits'] as Dict | undefined;
    const rsv = res?.['reservations'] as Dict | undefined;
    const cpus = (v: unknown, p: (string | number)[]) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) fail(p, `${JSON.stringify(v)} is not a number of CPUs`);
      return Math.round(n * 1e9);
    };
    if (lim?.['cpus'] !== undefined) spec.limitNanoCpus = cpus(lim['cpus'], at('deploy', 'resources', 'limits', 'cpus'));
    if (lim?.['memory'] !== undefined) spec.limitMemoryBytes = bytes(lim['memory'], at('deploy', 'resources', 'limits', 'memory'))!;
    if (lim?.['pids'] !== undefined) spec.limitPids = Number(lim['pids']);
    if (rsv?.['cpus'] !== undefined) spec.reserveNanoCpus = cpus(rsv['cpus'], at('deploy', 'resources', 'reservations', 'cpus'));
    if (rsv?.['memory'] !== undefined) spec.reserveMemoryBytes = bytes(rsv['memory'], at('deploy', 'resources', 'reservations', 'memory'))!;
    // Ports.
    if (s.ports?.length) {
      spec.ports = s.ports.map((p) => ({
        targetPort: p.target, protocol: p.protocol, publishMode: p.mode,
        ...(p.published !== undefined ? { publishedPort: p.published } : {}), ...(p.name ? { name: p.name } : {}),
      }));
    }
    // Networks, with the short name as an alias on each (how services of a stack find each other).
    const nets = s.networks && Object.keys(s.networks).length ? s.networks : { default: null };
    spec.networks = Object.entries(nets).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => ({
      target: netFull.get(k)!,
      aliases: [...new Set([...(v?.aliases ?? []), short])],
    }));
    // Mounts: volumes and tmpfs.
    const mounts: NonNullable<ServiceSpecInput['mounts']> = [];
    (s.volumes ?? []).forEach((v, i) => {
      if (v.type === 'volume') {
        const def = v.source ? ((project.volumes[v.source] ?? {}) as Dict) : {};
        const external = def['external'] === true || (typeof def['external'] === 'object' && def['external'] !== null);
        const source = v.source ? (str(def['name']) ?? (external ? v.source : scope(v.source))) : undefined;
        mounts.push({
          type: 'volume', target: v.target, ...(source ? { source } : {}), ...(v.read_only ? { readOnly: true } : {}),
          ...(external || !v.source ? (v.volume?.nocopy ? { volumeOptions: { noCopy: true } } : {}) : {
            volumeOptions: {
              labels: nsLabels(labelsOf(def['labels'])),
              ...(v.volume?.nocopy ? { noCopy: true } : {}),
              ...(def['driver'] ? { driverConfig: { name: String(def['driver']), ...(def['driver_opts'] ? { options: labelsOf(def['driver_opts']) } : {}) } } : {}),
            },
          }),
        });
      } else if (v.type === 'bind') {
        const src = v.source ?? '';
        const abs = src.startsWith('~') ? src : path.resolve(o.projectDir, src);
        mounts.push({ type: 'bind', source: abs, target: v.target, ...(v.read_only ? { readOnly: true } : {}), ...(v.bind?.propagation ? { bindOptions: { propagation: v.bind.propagation } } : {}) });
      } else if (v.type === 'tmpfs') {
        mounts.push({
          type: 'tmpfs', target: v.target,
          ...(v.tmpfs ? { tmpfsOptions: { ...(v.tmpfs.size !== undefined ? { sizeBytes: bytes(v.tmpfs.size, at('volumes', i, 'tmpfs', 'size'))! } : {}), ...(v.tmpfs.mode !== undefined ? { mode: v.tmpfs.mode } : {}) } } : {}),
        });
      } else fail(at('volumes', i), `volume type ${JSON.stringify(v.type)} is not supported by swarm services; use volume, bind or tmpfs`);
    });
    for (const t of (s['tmpfs'] as string[] | undefined) ?? []) {
      const [target, opts] = t.split(':');
      const size = /size=([^,]+)/.exec(opts ?? '')?.[1];
      mounts.push({ type: 'tmpfs', target: target!, ...(size ? { tmpfsOptions: { sizeBytes: bytes(size, at('tmpfs'))! } } : {}) });
    }
    if (mounts.length) spec.mounts = mounts;
    // Secrets and configs.
    const refs = (list: FileRef[] | undefined, names: Map<string, string>) => (list ?? []).map((r) => ({
      source: names.get(r.source) ?? scope(r.source),
      target: r.target ?? r.source,
      ...(r.uid !== undefined ? { uid: r.uid } : {}),
      ...(r.gid !== undefined ? { gid: r.gid } : {}),
      ...(r.mode !== undefined ? { mode: r.mode } : {}),
    }));
    if (s.secrets?.length) (spec as Dict)['secrets'] = refs(s.secrets, secretNames);
    if (s.configs?.length) (spec as Dict)['configs'] = refs(s.configs, configNames).map((r, i) => ({ ...r, target: s.configs![i]!.target ?? `/${s.configs![i]!.source}` }));
    return {
      name: short, spec, dependsOn: s.depends_on ?? {}, ...(build ? { build } : {}),
      hasHealthcheck: !!hc && hc['disable'] !== true, job: mode.endsWith('-job'),
    };
  }
}
