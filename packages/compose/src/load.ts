/**
 * Loading a compose project from one or more files (`stack deploy -c a.yml -c b.yml`): per file,
 * YAML with positions → legacy format → interpolation → type casts → the Compose Specification's
 * schema → short syntaxes to long; then the files merge in order; then the checks across the
 * project (references, `depends_on` cycles, images). Pure: the caller reads the files and the
 * environment and passes them in. Every mistake is one ComposeError naming `file:line:column`, the
 * key path and what was expected; warnings are returned, not printed.
 */
import { parse as parseDotenv } from 'dotenv';
import { ComposeError, joinPath, parseYaml, posOf, type Origins } from './source.js';
import { interpolateTree, type Env } from './interpolate.js';
import { castTypes, validateSchema } from './schema.js';
import { fromLegacy, normalizeFile, type Dependency, type Dict, type FileRef, type PortConfig, type VolumeMount } from './normalize.js';
import { mergeFiles } from './merge.js';

export interface ComposeSource {
  /** Path as the user gave it (shown in errors), e.g. `docker-compose.yml` or `-` for stdin. */
  path: string;
  text: string;
}

export interface LoadOptions {
  /** The environment (`process.env`); it wins over the env file. */
  env: Env;
  /**
   * Contents of the env file: `.env` beside the first compose file, or `--env-file` (the caller
   * reads it). Undefined: none.
   */
  envFile?: { path: string; text: string };
  /**
   * Reads a file named by the project relative to the first compose file's directory (`env_file:`,
   * secrets' and configs' `file:`): returns its text, or undefined when it does not exist.
   */
  readFile?: (path: string) => string | undefined;
}

/** A service as loaded: the compose keys, short syntaxes made long. */
export interface ServiceConfig extends Dict {
  image?: string;
  build?: string | Dict;
  command?: unknown;
  entrypoint?: unknown;
  environment?: Record<string, string | null>;
  labels?: Record<string, string | null>;
  ports?: PortConfig[];
  volumes?: VolumeMount[];
  secrets?: FileRef[];
  configs?: FileRef[];
  depends_on?: Record<string, Dependency>;
  networks?: Record<string, { aliases?: string[] } | null>;
  deploy?: Dict;
  healthcheck?: Dict;
}

export interface ComposeProject {
  name?: string;
  services: Record<string, ServiceConfig>;
  networks: Record<string, Dict | null>;
  volumes: Record<string, Dict | null>;
  secrets: Record<string, Dict>;
  configs: Record<string, Dict>;
  /** Key path → position, for errors found later (e.g. at deploy). */
  origins: Origins;
}

export interface LoadResult {
  project: ComposeProject;
  /** One line each: unset variables, legacy format, keys a swarm ignores. */
  warnings: string[];
}

/** Keys a swarm cannot honour (Docker warns "Ignoring unsupported options: …"). */
const UNSUPPORTED = ['cgroup_parent', 'cgroupns_mode', 'devices', 'domainname', 'external_links', 'ipc', 'mac_address', 'network_mode', 'pid', 'privileged', 'restart', 'security_opt', 'shm_size', 'userns_mode', 'container_name', 'expose', 'links'];
/** Keys Docker refuses outright, with its advice. */
const FORBIDDEN: Record<string, string> = {
  extends: 'support for `extends` is not implemented',
  volume_driver: 'define a volume with a driver under the top-level `volumes:` and use it from the service',
  volumes_from: 'share a volume by defining it under the top-level `volumes:` and using it from each service',
  cpu_quota: 'set resource limits with deploy.resources',
  cpu_shares: 'set resource limits with deploy.resources',
  cpuset: 'set resource limits with deploy.resources',
  mem_limit: 'set resource limits with deploy.resources',
  memswap_limit: 'set resource limits with deploy.resources',
};

/**
 * Loads and checks a project.
 * @throws ComposeError (one line) for the first mistake found; nothing is partially returned.
 */
export function loadProject(sources: ComposeSource[], opts: LoadOptions): LoadResult {
  if (sources.length === 0) throw new ComposeError('no compose file given; pass one with -c FILE');
  const warnings: string[] = [];
  const warn = (m: string) => {
    if (!warnings.includes(m)) warnings.push(m);
  };
  const fileEnv = opts.envFile ? parseEnvFile(opts.envFile.path, opts.envFile.text) : {};
  const env: Env = { ...fileEnv, ...opts.env };
  const files = sources.map((src) => {
    const parsed = parseYaml(src.path, src.text);
    if (parsed.data === null || parsed.data === undefined) throw new ComposeError('the file is empty; a compose file needs at least "services:"', undefined, { file: src.path, line: 1, col: 1 });
    if (typeof parsed.data !== 'object' || Array.isArray(parsed.data)) {
      throw new ComposeError(`the top level must be a mapping (services:, networks:, …), got ${Array.isArray(parsed.data) ? 'a list' : typeof parsed.data}`, undefined, posOf(parsed.origins, ''));
    }
    const legacy = fromLegacy(parsed.data, parsed.origins, warn);
    const data = interpolateTree(legacy.data, env, parsed.origins, warn) as Dict;
    castTypes(data, parsed.origins);
    validateSchema(data, parsed.origins);
    normalizeFile(data, parsed.origins);
    return { data, origins: parsed.origins };
  });
  const { data, origins } = mergeFiles(files);
  const project: ComposeProject = {
    ...(typeof data['name'] === 'string' ? { name: data['name'] } : {}),
    services: (data['services'] ?? {}) as Record<string, ServiceConfig>,
    networks: (data['networks'] ?? {}) as Record<string, Dict | null>,
    volumes: (data['volumes'] ?? {}) as Record<string, Dict | null>,
    secrets: (data['secrets'] ?? {}) as Record<string, Dict>,
    configs: (data['configs'] ?? {}) as Record<string, Dict>,
    origins,
  };
  checkProject(project, warn, opts);
  return { project, warnings };
}

/** `KEY=value` lines (dotenv's parser: comments, quotes, `export`). */
export function parseEnvFile(_path: string, text: string): Record<string, string> {
  return parseDotenv(text);
}

function fail(project: ComposeProject, path: (string | number)[], msg: string): never {
  const p = joinPath(path);
  throw new ComposeError(msg, p, posOf(project.origins, p));
}

function checkProject(project: ComposeProject, warn: (m: string) => void, opts: LoadOptions): void {
  const names = Object.keys(project.services);
  if (names.length === 0) fail(project, ['services'], 'no services defined; add at least one under "services:"');
  const unsupported = new Set<string>();
  for (const [name, svc] of Object.entries(project.services)) {
    for (const [k, advice] of Object.entries(FORBIDDEN)) {
      if (k in svc) fail(project, ['services', name, k], `the key ${k} is not supported by swarm stacks: ${advice}`);
    }
    for (const k of UNSUPPORTED) if (k in svc) unsupported.add(k);
    if (!svc.image && !svc.build) fail(project, ['services', name], 'has neither image nor build; give the image to run, or a build context');
    // References.
    for (const dep of Object.keys(svc.depends_on ?? {})) {
      if (!(dep in project.services)) fail(project, ['services', name, 'depends_on', dep], `depends on ${JSON.stringify(dep)}, which is not a service of this file`);
    }
    for (const net of Object.keys(svc.networks ?? {})) {
      if (net !== 'default' && !(net in project.networks)) fail(project, ['services', name, 'networks'], `uses network ${JSON.stringify(net)}, which is not defined under the top-level "networks:"`);
    }
    (svc.volumes ?? []).forEach((v, i) => {
      if (v.type === 'volume' && v.source && !(v.source in project.volumes)) {
        fail(project, ['services', name, 'volumes', i], `uses volume ${JSON.stringify(v.source)}, which is not defined under the top-level "volumes:"`);
      }
    });
    for (const kind of ['secrets', 'configs'] as const) {
      (svc[kind] ?? []).forEach((r, i) => {
        if (!(r.source in project[kind])) fail(project, ['services', name, kind, i], `uses ${kind === 'secrets' ? 'secret' : 'config'} ${JSON.stringify(r.source)}, which is not defined under the top-level "${kind}:"`);
      });
    }
    // env_file: lowest precedence under environment.
    const envFiles = (svc['env_file'] ?? []) as { path: string; required?: boolean }[];
    if (envFiles.length) {
      const merged: Record<string, string | null> = {};
      for (const [i, f] of envFiles.entries()) {
        const text = opts.readFile?.(f.path);
        if (text === undefined) {
          if (f.required === false) continue;
          fail(project, ['services', name, 'env_file', i], `env file ${JSON.stringify(f.path)} not found`);
        }
        Object.assign(merged, parseDotenv(text));
      }
      svc.environment = { ...merged, ...(svc.environment ?? {}) };
      delete svc['env_file'];
    }
  }
  if (unsupported.size) warn(`Ignoring unsupported options: ${[...unsupported].sort().join(', ')}`);
  checkCycles(project);
}

/** A `depends_on` cycle is an error naming it (`a -> b -> a`). */
function checkCycles(project: ComposeProject): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    const s = state.get(n);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(n)), n];
      fail(project, ['services', n, 'depends_on'], `depends_on cycle: ${cycle.join(' -> ')}; remove one of these dependencies`);
    }
    state.set(n, 'visiting');
    stack.push(n);
    for (const d of Object.keys(project.services[n]?.depends_on ?? {})) visit(d);
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of Object.keys(project.services).sort()) visit(n);
}

/**
 * The order to deploy in: waves of services whose dependencies are all in earlier waves
 * (topological, names sorted within a wave).
 */
export function deployWaves(project: ComposeProject): string[][] {
  const done = new Set<string>();
  const left = new Set(Object.keys(project.services));
  const waves: string[][] = [];
  while (left.size) {
    const wave = [...left].filter((n) => Object.keys(project.services[n]!.depends_on ?? {}).every((d) => done.has(d))).sort();
    if (wave.length === 0) throw new ComposeError(`depends_on cycle among ${[...left].sort().join(', ')}`);
    for (const n of wave) {
      left.delete(n);
      done.add(n);
    }
    waves.push(wave);
  }
  return waves;
}
