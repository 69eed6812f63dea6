import type Dockerode from 'dockerode';
import type { HealthConfig, PortConfig, Task } from '@shoal/api';
import { DEFAULTS } from '@shoal/api';
import type { ContainerStatus, Controller, HealthStatus, TaskFile } from '@shoal/agent';
import { ContainerNotFoundError, ImageUnavailableError, LABELS, containerName, expandTemplate, normalizeImageRef, taskLabels } from '@shoal/agent';
import type { TemplateContext } from '@shoal/agent';
import { engineMessage, statusCodeOf } from './docker-host.js';
import { applyRuntimeOptions, ensureVolumes } from './options.js';
import type { FileMount, TaskFileMounts } from './files.js';

export interface DockerControllerOptions {
  /** Written to the `shoal.node.id` label (the executor's node, whatever the task says). */
  nodeId: string;
  /** Longest an image pull may take, ms; then the task is REJECTED. Default 120 000. */
  pullTimeoutMs: number;
  /** The node as templates see it (`{{.Node.Hostname}}`, …); called only when a template needs it. */
  node: () => Promise<TemplateContext['node']>;
  /** The node's overlay network, if any (see {@link TaskNetwork}). */
  network?: TaskNetwork;
  /** Where the task's secret and config files are kept in memory (see files.ts); absent: a task with any is REJECTED. */
  taskFiles?: TaskFileMounts;
  /** The task's secret and config files (the agent renders them; see `Executor.controller`). */
  files?: () => TaskFile[];
}

/**
 * The Docker network every task container joins (the node's overlay bridge, docs/NETWORKING.md)
 * and the DNS servers it gets. `ready()` resolves once the network exists (it may wait for the
 * node's overlay subnet) and rejects with a one-line reason when it cannot be set up; the task is
 * then REJECTED.
 */
export interface TaskNetwork {
  /** Docker network name, e.g. `shoal_overlay`. */
  name: string;
  ready(): Promise<{ dns?: string[] }>;
}

/**
 * The {@link Controller} of one task's Docker container, named `<service>.<slot>.<taskId>`
 * (`<service>.<nodeId>.<taskId>` for global services) and found by that name, so a controller made
 * by a restarted agent drives the same container. The container maps the ContainerSpec the way
 * moby's swarm executor does (`daemon/cluster/executor/container/container.go`): `command` replaces
 * the image entrypoint and `args` its cmd; env, labels, hostname, dir, user, stop signal; Docker
 * restart policy "no" (the managers restart tasks, never the engine); mounts, limits and the other
 * runtime options as in options.ts (`applyRuntimeOptions`). Hostname and env values may
 * use Docker's templates (`{{.Node.Hostname}}`, `{{.Task.Slot}}`, …; see `expandTemplate`).
 * Host-mode published ports (`task.endpoint.ports`, publishMode host) become port bindings
 * (published 0 = the engine picks one); `inspect()` reports them as bound. A spec `healthcheck`
 * becomes the container's `Healthcheck` (durations in ns, see {@link engineHealthcheck}); `inspect()`
 * reports the engine's health status while the container runs.
 */
export class DockerController implements Controller {
  readonly name: string;

  constructor(
    private readonly docker: Dockerode,
    private readonly task: Task,
    private readonly opts: DockerControllerOptions,
  ) {
    this.name = containerName(task);
  }

  /**
   * Pulls the image only when it is missing, creates the task's named volumes that do not exist yet
   * ({@link ensureVolumes}), then creates the container (nothing if it exists). A mount the engine
   * refuses (e.g. a bind source missing on this node) rejects with the engine's own words,
   * `invalid mount config for type "bind": bind source path does not exist: /path`.
   * The task's secrets and configs are put on its tmpfs first — also for an existing container
   * (after an agent restart), whose bind mounts need them.
   */
  async prepare(): Promise<void> {
    const exists = (await this.inspect()).exists;
    const mounts = await this.fileMounts();
    if (exists) return;
    await this.ensureImage();
    const ctx = await this.templateContext();
    await ensureVolumes(this.docker, this.task, ctx);
    try {
      await this.docker.createContainer(await this.createOptions(ctx, mounts));
    } catch (err) {
      // 409: created meanwhile under the same name (a concurrent prepare); adopt it if it is ours.
      if (statusCodeOf(err) === 409 && (await this.inspect()).exists) return;
      if (statusCodeOf(err) === 404) throw new ImageUnavailableError(normalizeImageRef(this.task.spec.container.image), engineMessage(err));
      // The engine's reason says what is wrong with the spec on this node (mount, sysctl, log driver…).
      if (statusCodeOf(err) === 400) throw new Error(engineMessage(err));
      throw new Error(`create container ${this.name}: ${engineMessage(err)}`);
    }
  }

  async start(): Promise<void> {
    try {
      await this.container().start();
    } catch (err) {
      const code = statusCodeOf(err);
      if (code === 304) return; // already running
      if (code === 404) throw new ContainerNotFoundError(this.name);
      throw new Error(`start container ${this.name}: ${engineMessage(err)}`);
    }
  }

  /** Waits for the container to stop; `oomKilled` from a look at `State.OOMKilled` afterwards. */
  async wait(signal?: AbortSignal): Promise<{ exitCode: number; oomKilled?: boolean }> {
    let exitCode: number;
    try {
      const opts: Dockerode.ContainerWaitOptions = { condition: 'not-running' };
      if (signal) opts.abortSignal = signal;
      const res = (await this.container().wait(opts)) as { StatusCode?: number };
      exitCode = res.StatusCode ?? -1;
      await this.releaseFiles();
    } catch (err) {
      if (statusCodeOf(err) === 404) throw new ContainerNotFoundError(this.name);
      throw err;
    }
    return (await this.oomKilled(exitCode)) ? { exitCode, oomKilled: true } : { exitCode };
  }

  /**
   * Whether the engine says the OOM killer ended the container. The engine may record the OOM
   * event just after the exit (on a loaded host, up to a second later), so a SIGKILL exit (137) is
   * looked at again every 100 ms for up to 1 s.
   */
  private async oomKilled(exitCode: number): Promise<boolean> {
    for (let i = 0; ; i++) {
      const oom = await this.container().inspect().then((info) => info.State.OOMKilled, () => false);
      if (oom || exitCode !== 137 || i >= 10) return oom;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * `docker stop`: the stop signal, then SIGKILL after the grace period (rounded up to whole
   * seconds, the Engine API's unit). Default: the spec's `stopGracePeriodMs`, else 10 s.
   */
  async shutdown(gracePeriodMs?: number): Promise<void> {
    const ms = gracePeriodMs ?? this.task.spec.container.stopGracePeriodMs ?? DEFAULTS.stopGracePeriodMs;
    try {
      await this.container().stop({ t: Math.max(0, Math.ceil(ms / 1000)) });
    } catch (err) {
      const code = statusCodeOf(err);
      // 304/404: already stopped / gone
      if (code !== 304 && code !== 404) throw new Error(`stop container ${this.name}: ${engineMessage(err)}`);
    }
    await this.releaseFiles();
  }

  async terminate(): Promise<void> {
    try {
      await this.container().kill();
    } catch (err) {
      const code = statusCodeOf(err);
      // 404/409: gone / not running
      if (code !== 404 && code !== 409) throw new Error(`kill container ${this.name}: ${engineMessage(err)}`);
    }
    await this.releaseFiles();
  }

  /**
   * The container stopped: its secret and config files go (moby cleans its secrets directory up
   * when a container stops, too). The agent never starts a stopped task container again.
   */
  private async releaseFiles(): Promise<void> {
    if (!this.opts.files) return;
    await this.opts.taskFiles?.release(this.task.id);
  }

  /**
   * Removes the container and its anonymous volumes (`docker rm -fv`; named volumes stay), then
   * the task's secret and config files (unmounting their tmpfs).
   */
  async remove(): Promise<void> {
    try {
      await this.container().remove({ force: true, v: true });
    } catch (err) {
      const code = statusCodeOf(err);
      if (!(code === 404 || (code === 409 && /already in progress/.test(engineMessage(err))))) {
        throw new Error(`remove container ${this.name}: ${engineMessage(err)}`);
      }
    }
    await this.opts.taskFiles?.release(this.task.id);
  }

  /** The bind mounts of the task's secret and config files, put on its tmpfs (none without files). */
  private async fileMounts(): Promise<FileMount[]> {
    const files = this.opts.files?.() ?? [];
    if (files.length === 0) return [];
    if (!this.opts.taskFiles) throw new Error('this node cannot give tasks secrets or configs (no place to keep them in memory)');
    return this.opts.taskFiles.ensure(this.task.id, files);
  }

  /** Throws if a container of this name exists but is not this task's (no matching `shoal.task.id` label). */
  async inspect(): Promise<ContainerStatus> {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.container().inspect();
    } catch (err) {
      if (statusCodeOf(err) === 404) return { exists: false, running: false, started: false };
      throw new Error(`inspect container ${this.name}: ${engineMessage(err)}`);
    }
    if (info.Config?.Labels?.[LABELS.taskId] !== this.task.id) {
      throw new Error(`container name ${this.name} is taken by a container Shoal does not manage (${info.Id.slice(0, 12)}); remove or rename it`);
    }
    const started = !!info.State.StartedAt && !info.State.StartedAt.startsWith('0001-');
    const status: ContainerStatus = { exists: true, containerId: info.Id, running: info.State.Running, started };
    if (started && !info.State.Running) {
      status.exitCode = info.State.ExitCode;
      if (info.State.OOMKilled) status.oomKilled = true;
    }
    if (info.State.Running) {
      if (info.State.Pid > 0) status.pid = info.State.Pid;
      const net = this.opts.network ? info.NetworkSettings?.Networks?.[this.opts.network.name] : undefined;
      if (net?.IPAddress) status.addresses = [`${net.IPAddress}/${net.IPPrefixLen || 32}`];
      const ports = this.boundPorts(info.NetworkSettings?.Ports as Record<string, { HostIp: string; HostPort: string }[] | null> | undefined);
      if (ports.length > 0) status.ports = ports;
      const health = info.State.Health?.Status;
      if (health === 'starting' || health === 'healthy' || health === 'unhealthy') status.health = health satisfies HealthStatus;
    }
    return status;
  }

  private container(): Dockerode.Container {
    return this.docker.getContainer(this.name);
  }

  private async ensureImage(): Promise<void> {
    const image = this.task.spec.container.image;
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch (err) {
      if (statusCodeOf(err) !== 404) throw new Error(`inspect image ${image}: ${engineMessage(err)}`);
    }
    const ref = normalizeImageRef(image);
    try {
      await this.pull(ref);
    } catch (err) {
      throw new ImageUnavailableError(ref, engineMessage(err));
    }
  }

  /** `docker pull`, resolved when the progress stream ends; stream errors reject. */
  private async pull(ref: string): Promise<void> {
    const signal = AbortSignal.timeout(this.opts.pullTimeoutMs);
    const stream = (await this.docker.pull(ref, { abortSignal: signal })) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(stream, (err: Error | null, events: { error?: string; errorDetail?: { message?: string } }[]) => {
        if (err) return reject(err);
        const failed = events.find((e) => e.error || e.errorDetail);
        if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error ?? 'pull failed'));
        resolve();
      });
    });
  }

  /** Host-mode ports of the task (`endpoint.ports` with publishMode host). */
  private hostPorts(): PortConfig[] {
    return (this.task.endpoint?.ports ?? []).filter((p) => p.publishMode === 'host');
  }

  /** The task's host-mode ports with the published port the engine bound (0 if not bound). */
  private boundPorts(bindings: Record<string, { HostIp: string; HostPort: string }[] | null> | undefined): PortConfig[] {
    return this.hostPorts().map((p) => {
      const b = bindings?.[`${p.targetPort}/${p.protocol}`]?.[0];
      return { ...p, publishedPort: b ? Number(b.HostPort) : p.publishedPort };
    });
  }

  /** The template context of this task; the node is looked up only when a template needs it. */
  private async templateContext(): Promise<TemplateContext> {
    const spec = this.task.spec.container;
    const mounts = (spec.mounts ?? []).flatMap((m) => [m.source ?? '', m.target]);
    const needsNode = [spec.hostname ?? '', ...(spec.env ?? []), ...mounts].some((v) => v.includes('{{'));
    return { task: this.task, node: needsNode ? await this.opts.node() : { hostname: '' } };
  }

  private async createOptions(ctx: TemplateContext, fileMounts: FileMount[] = []): Promise<Dockerode.ContainerCreateOptions> {
    const spec = this.task.spec.container;
    const labels = { ...(spec.labels ?? {}), ...taskLabels(this.task), [LABELS.nodeId]: this.opts.nodeId };
    const o: Dockerode.ContainerCreateOptions = {
      name: this.name,
      Image: spec.image,
      Labels: labels,
      HostConfig: { RestartPolicy: { Name: 'no' } },
    };
    let serviceDns: string[] = [];
    if (this.opts.network) {
      const { dns } = await this.opts.network.ready();
      o.HostConfig!.NetworkMode = this.opts.network.name;
      serviceDns = dns ?? [];
    }
    if (spec.command && spec.command.length > 0) {
      o.Entrypoint = spec.command;
      o.Cmd = spec.args ?? [];
    } else if (spec.args && spec.args.length > 0) {
      o.Cmd = spec.args;
    }
    if (spec.env) o.Env = spec.env.map((e) => expandTemplate(e, ctx));
    if (spec.hostname) o.Hostname = expandTemplate(spec.hostname, ctx);
    if (spec.dir) o.WorkingDir = spec.dir;
    if (spec.user) o.User = spec.user;
    if (spec.stopSignal) o.StopSignal = spec.stopSignal;
    o.StopTimeout = Math.ceil((spec.stopGracePeriodMs ?? DEFAULTS.stopGracePeriodMs) / 1000);
    if (spec.healthcheck) o.Healthcheck = engineHealthcheck(spec.healthcheck);
    applyRuntimeOptions(o, this.task, ctx, serviceDns);
    const ports = this.hostPorts();
    if (ports.length > 0) {
      o.ExposedPorts = {};
      o.HostConfig!.PortBindings = {};
      for (const p of ports) {
        const key = `${p.targetPort}/${p.protocol}`;
        o.ExposedPorts[key] = {};
        o.HostConfig!.PortBindings[key] = [{ HostPort: p.publishedPort > 0 ? String(p.publishedPort) : '' }];
      }
    }
    // Secrets and configs: read-only binds of single files from the task's tmpfs (files.ts).
    if (fileMounts.length) o.HostConfig!.Mounts = [...(o.HostConfig!.Mounts ?? []), ...fileMounts];
    return o;
  }
}

/**
 * The Engine API `Healthcheck` of a spec health check (moby's swarm executor does the same):
 * `Test` as given (`[]` inherits the image's check, `['NONE']` disables it), `Interval`, `Timeout`,
 * `StartPeriod` converted from ms to nanoseconds, `Retries`; 0 or absent fields are sent as 0, the
 * engine's "default" (30 s, 30 s, 0 s, 3 — or the image's values).
 */
export function engineHealthcheck(h: HealthConfig): Dockerode.HealthConfig {
  const ns = (ms: number | undefined) => Math.round((ms ?? 0) * 1e6);
  return {
    Test: [...h.test],
    Interval: ns(h.intervalMs),
    Timeout: ns(h.timeoutMs),
    StartPeriod: ns(h.startPeriodMs),
    Retries: h.retries ?? 0,
  };
}
