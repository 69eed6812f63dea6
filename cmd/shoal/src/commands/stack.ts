import fs from 'node:fs';
import path from 'node:path';
import type { Call, StackDeployInput, StackDeployResult, Service, Task } from '@shoal/api';
import { ComposeError, loadProject, parseEnvFile, toStack, type ComposeSource, type StackPlan, type StackService } from '@shoal/compose';
import { UsageError } from '../errors.js';
import { formatRows, serviceIds, serviceTable } from '../format/tables.js';
import { formatTable } from '../format/table.js';
import { type Args, bool, connect, err, forEach, list, out, str } from './common.js';
import { filterTasks, parseTaskFilters, printTasks } from './tasks.js';

/** How long `stack deploy` waits for one `depends_on` condition, ms. */
const DEPENDS_TIMEOUT_MS = 5 * 60_000;

/** Reads `-c` files (`-` is standard input). @throws UsageError naming a file that cannot be read. */
function readSources(files: string[]): ComposeSource[] {
  if (files.length === 0) throw new UsageError('stack deploy needs a compose file: pass -c docker-compose.yml (or -c - for standard input)');
  return files.map((f) => {
    if (f === '-') return { path: '-', text: fs.readFileSync(0, 'utf8') };
    try {
      return { path: f, text: fs.readFileSync(f, 'utf8') };
    } catch (e) {
      throw new UsageError(`cannot read compose file ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  });
}

/**
 * Loads the files into a stack plan: interpolation with the environment over `.env` beside the
 * first file (or `--env-file`), the Compose Specification's checks, Docker's mapping.
 * @throws UsageError with the compose error (file:line:column, key path, what was expected).
 */
export function planStack(a: Args, name: string, log: (line: string) => void): StackPlan {
  const files = list(a, 'compose-file');
  const sources = readSources(files);
  const first = files[0]!;
  const projectDir = path.resolve(first === '-' ? '.' : path.dirname(first));
  const envFileFlag = str(a, 'env-file');
  const envPath = envFileFlag ?? path.join(projectDir, '.env');
  let envFile: { path: string; text: string } | undefined;
  if (fs.existsSync(envPath)) {
    envFile = { path: envPath, text: fs.readFileSync(envPath, 'utf8') };
    log(`Reading environment from ${envFileFlag ?? path.relative(process.cwd(), envPath) ?? envPath}`);
  } else if (envFileFlag) throw new UsageError(`cannot read --env-file ${envFileFlag}: no such file`);
  try {
    const loaded = loadProject(sources, {
      env: process.env,
      ...(envFile ? { envFile } : {}),
      readFile: (p) => {
        const abs = path.resolve(projectDir, p);
        return fs.existsSync(abs) ? fs.readFileSync(abs, 'utf8') : undefined;
      },
    });
    for (const w of loaded.warnings) log(w);
    const env = { ...(envFile ? parseEnvFile(envFile.path, envFile.text) : {}), ...process.env };
    const plan = toStack(loaded.project, name, {
      projectDir, env,
      readFile: (p) => (fs.existsSync(p) ? fs.readFileSync(p) : undefined),
    });
    for (const w of plan.warnings) log(w);
    return plan;
  } catch (e) {
    if (e instanceof ComposeError) throw new UsageError(e.message);
    throw e;
  }
}

function deployInput(plan: StackPlan, only: string[] | undefined, extra: Partial<StackDeployInput> = {}): StackDeployInput {
  return {
    stack: plan.name,
    networks: plan.networks.map((n) => ({ ...n })),
    secrets: plan.secrets.map((s) => ({ ...s })),
    configs: plan.configs.map((c) => ({ ...c })),
    services: plan.services.map((s) => s.spec),
    ...(only ? { only } : {}),
    ...extra,
  };
}

function report(r: StackDeployResult, say: (l: string) => void): void {
  for (const n of r.networks) say(`Creating network ${n}`);
  for (const n of r.secrets) say(`Creating secret ${n}`);
  for (const n of r.configs) say(`Creating config ${n}`);
  for (const n of r.created) say(`Creating service ${n}`);
  for (const n of r.updated) say(`Updating service ${n}`);
  for (const n of r.removed) say(`Removing service ${n}`);
}

/** Waits until `dep` (full name) meets `condition`, printing what it waits for. */
async function waitFor(call: Call, dep: StackService, full: string, condition: string, quiet: boolean): Promise<void> {
  const deadline = Date.now() + DEPENDS_TIMEOUT_MS;
  let last = '';
  for (;;) {
    const svc = await call('service.inspect', { ref: full });
    const { tasks } = await call('service.ps', { ref: full });
    const state = conditionState(svc, tasks, condition, dep.hasHealthcheck);
    if (state.done) return;
    if (state.failed) throw new Error(`service ${full} failed before it was ${condition.replace('service_', '')}: ${state.failed}`);
    if (!quiet && state.text !== last) {
      err(`Waiting for ${full} (${condition}): ${state.text}\n`);
      last = state.text;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${full} to be ${condition.replace('service_', '')} after ${DEPENDS_TIMEOUT_MS / 60_000} min (${state.text})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Whether the service meets a depends_on condition (Compose's conditions). */
export function conditionState(svc: Service, tasks: readonly Task[], condition: string, hasHealthcheck: boolean): { done: boolean; text: string; failed?: string } {
  const current = tasks.filter((t) => t.specVersion === svc.specVersion && (!svc.jobStatus || t.jobIteration === svc.jobStatus.jobIteration));
  const mode = svc.spec.mode;
  if (condition === 'service_completed_successfully') {
    const want = 'replicatedJob' in mode ? mode.replicatedJob.totalCompletions : 'replicated' in mode ? mode.replicated.replicas : current.filter((t) => t.desiredState !== 'shutdown').length;
    const done = current.filter((t) => t.status.state === 'complete' && (t.status.exitCode ?? 0) === 0).length;
    const bad = current.find((t) => (t.status.state === 'failed' || t.status.state === 'rejected') && 'replicated' in mode);
    return { done: done >= want && want > 0, text: `${done}/${want} completed`, ...(bad ? { failed: bad.status.err ?? bad.status.message } : {}) };
  }
  const want = 'replicated' in mode ? mode.replicated.replicas : current.filter((t) => t.desiredState === 'running').length;
  const running = current.filter((t) => t.status.state === 'running' && t.desiredState === 'running').length;
  // RUNNING already means healthy for a service with a health check (the agent reports STARTING
  // until the engine says healthy), so both conditions read the same count.
  const what = condition === 'service_healthy' && hasHealthcheck ? 'healthy' : 'running';
  return { done: running >= want, text: `${running}/${want} ${what}` };
}

/** `stack deploy -c FILE [-c FILE…] [--prune] [--detach[=false]] STACK`. */
export async function deploy(a: Args): Promise<void> {
  const name = str(a, 'stack') ?? '';
  const quiet = bool(a, 'quiet');
  const plan = planStack(a, name, (l) => err(`${l}\n`));
  for (const s of plan.services) {
    if (s.build) throw new UsageError(`service ${s.name}: build: is not supported by this shoal yet; build the image (docker build -t ${s.build.tag} ${s.build.context}) and give it as image:`);
  }
  const call = connect(a);
  // Everything is checked first, against the cluster: nothing is deployed if anything is wrong.
  await call('stack.deploy', deployInput(plan, undefined, { dryRun: true }));
  const detach = a['detach'];
  const waitDeps = detach !== true; // `--detach` skips the depends_on waits too
  const byName = new Map(plan.services.map((s) => [s.name, s]));
  const full = (short: string) => byName.get(short)!.spec.name;
  const waves = waitDeps ? plan.waves : [plan.services.map((s) => s.name)];
  for (const [i, wave] of waves.entries()) {
    const last = i === waves.length - 1;
    const r = await call('stack.deploy', deployInput(plan, wave.map(full), last && bool(a, 'prune') ? { prune: true } : {}));
    report(r, (l) => out(`${l}\n`));
    if (last) break;
    // Before the next wave: what it depends on must be ready.
    const next = waves.slice(i + 1).flat();
    const conditions = new Map<string, string>();
    for (const svc of next) {
      for (const [dep, d] of Object.entries(byName.get(svc)!.dependsOn)) {
        if (!wave.includes(dep)) continue;
        const cur = conditions.get(dep);
        // The strictest condition asked wins.
        const rank = (c?: string) => ['service_started', 'service_healthy', 'service_completed_successfully'].indexOf(c ?? 'service_started');
        if (rank(d.condition) >= rank(cur)) conditions.set(dep, d.condition);
      }
    }
    for (const [dep, cond] of conditions) await waitFor(call, byName.get(dep)!, full(dep), cond, quiet);
  }
  if (detach === false) {
    for (const s of plan.services) await waitFor(call, s, s.spec.name, s.job ? 'service_completed_successfully' : 'service_started', quiet);
  }
}

/** `stack ls`. */
export async function ls(a: Args): Promise<void> {
  const stacks = await connect(a)('stack.ls', {});
  const format = str(a, 'format');
  const rows = stacks.map((s) => ({ Name: s.name, Services: String(s.services) }));
  if (format !== undefined) out(formatRows(rows, format, { Name: 'NAME', Services: 'SERVICES' }));
  else out(formatTable([['NAME', 'SERVICES'], ...rows.map((r) => [r.Name, r.Services])]));
}

/** `stack services [-q] [--format] STACK`. */
export async function services(a: Args): Promise<void> {
  const items = await connect(a)('stack.services', { stack: str(a, 'stack') ?? '' });
  out(bool(a, 'quiet') ? serviceIds(items) : serviceTable(items, str(a, 'format')));
}

/** `stack ps [-f …] [--no-trunc] [-q] [--format] STACK`. */
export async function ps(a: Args): Promise<void> {
  const filters = parseTaskFilters(list(a, 'filter'), true);
  const { tasks, nodes } = await connect(a)('stack.ps', { stack: str(a, 'stack') ?? '' });
  printTasks(a, filterTasks(tasks, filters), nodes);
}

/** `stack rm STACK…`: removes each stack's services, then its networks, secrets and configs. */
export async function rm(a: Args): Promise<void> {
  const call = connect(a);
  await forEach(list(a, 'stacks'), async (stack) => {
    const r = await call('stack.rm', { stack });
    for (const n of r.services) out(`Removing service ${n}\n`);
    for (const n of r.secrets) out(`Removing secret ${n}\n`);
    for (const n of r.configs) out(`Removing config ${n}\n`);
    for (const n of r.networks) out(`Removing network ${n}\n`);
  });
}
