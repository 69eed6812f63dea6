import type { NodeDescription, Task } from '@shoal/api';
import type { ContainerStatus, Controller, Executor, HealthStatus, ManagedContainer, TaskFile } from '@shoal/agent';
import { ContainerNotFoundError, ImageUnavailableError, LABELS, containerName, managedFromLabels, normalizeImageRef, taskLabels } from '@shoal/agent';

/** One container of the {@link FakeExecutor}'s pretend engine. */
export interface FakeContainer {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  running: boolean;
  started: boolean;
  /** How many times it was started (the agent must never restart one). */
  starts: number;
  exitCode?: number;
  /** The last run ended by the OOM killer ({@link FakeExecutor.exit} with `oomKilled`). */
  oomKilled?: boolean;
  /** Grace period of the last shutdown() call, ms (undefined: the spec default was asked for). */
  lastGraceMs?: number;
  /**
   * Health-check status while running; undefined = no health check. A container whose task spec
   * has a `healthcheck` that runs a command (`CMD`/`CMD-SHELL`) is `starting` after each start;
   * tests move it on with {@link FakeExecutor.setHealth}.
   */
  health?: HealthStatus;
  waiters: Set<(code: number) => void>;
}

/**
 * An in-memory {@link Executor} for tests of the agent and of anything that runs agents
 * (no containers, no dockerd). Containers live in `containers`; tests end them with `exit()`,
 * make them vanish with `vanish()`, and read the operation log in `ops`
 * (`create <name>`, `start <name>`, `shutdown <name>`, `kill <name>`, `remove <name>`).
 * Health checks: a task whose spec runs a `healthcheck` command starts `starting`; tests report
 * the engine's verdict with `setHealth()`.
 */
export class FakeExecutor implements Executor {
  /** By container ID. */
  readonly containers = new Map<string, FakeContainer>();
  /** Images "present locally"; anything else is not pullable. */
  readonly images: Set<string>;
  readonly ops: string[] = [];
  /**
   * The secret and config files each task's container got (by task ID), as a real executor would
   * keep them in memory: set by prepare(), dropped when the container stops or is removed, and by
   * pruneTaskFiles().
   */
  readonly files = new Map<string, TaskFile[]>();
  /** When set, the next prepare() rejects with it (then it is cleared). */
  failNextPrepare: Error | undefined;
  /** While set, every controller's inspect() rejects with it (engine trouble). */
  inspectError: Error | undefined;
  /** When set, running containers report this data-path address (CIDR) for their task. */
  addressOf: ((taskId: string) => string) | undefined;
  /** When set, describe() rejects with it (engine down). */
  describeError: Error | undefined;
  /** Called after a container started (e.g. to make it exit later, as a crashing image does). */
  onStart: ((c: FakeContainer) => void) | undefined;
  private seq = 0;

  constructor(
    readonly nodeId: string,
    opts: { images?: string[]; hostname?: string } = {},
  ) {
    this.images = new Set((opts.images ?? ['shoal/busybox:latest']).map(normalizeImageRef));
    this.hostname = opts.hostname ?? `fake-${nodeId}`;
  }

  private readonly hostname: string;

  async describe(): Promise<NodeDescription> {
    if (this.describeError) throw this.describeError;
    return {
      hostname: this.hostname,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 2e9, memoryBytes: 4 * 1024 ** 3 },
      engine: { engineVersion: 'fake', labels: {} },
    };
  }

  controller(task: Task, files?: () => TaskFile[]): Controller {
    return new FakeController(this, task, files);
  }

  async pruneTaskFiles(keep: (taskId: string) => boolean): Promise<void> {
    for (const id of [...this.files.keys()]) if (!keep(id)) this.files.delete(id);
  }

  async list(): Promise<ManagedContainer[]> {
    const out: ManagedContainer[] = [];
    for (const c of this.containers.values()) {
      if (c.labels[LABELS.nodeId] !== this.nodeId) continue;
      const m = managedFromLabels(c.id, c.name, c.labels, c.running);
      if (m) out.push(m);
    }
    return out;
  }

  async removeOrphan(containerId: string): Promise<void> {
    const c = this.containers.get(containerId);
    if (!c) return;
    if (c.labels[LABELS.nodeId] !== this.nodeId || !c.labels[LABELS.taskId]) {
      throw new Error(`container ${containerId} is not a Shoal task of node ${this.nodeId}; refusing to remove it`);
    }
    this.ops.push(`remove ${c.name}`);
    this.stop(c, 137);
    this.containers.delete(c.id);
    const taskId = c.labels[LABELS.taskId];
    if (taskId) this.files.delete(taskId);
  }

  /** Adds a container directly (a leftover of an earlier agent, or a foreign one without labels). */
  addContainer(name: string, labels: Record<string, string>, opts: { running?: boolean; exitCode?: number; image?: string; health?: HealthStatus } = {}): FakeContainer {
    const running = opts.running ?? true;
    const c: FakeContainer = {
      id: `c${++this.seq}`,
      name,
      image: normalizeImageRef(opts.image ?? 'shoal/busybox:latest'),
      labels,
      running,
      started: true,
      starts: 1,
      waiters: new Set(),
    };
    if (!running) c.exitCode = opts.exitCode ?? 0;
    if (opts.health) c.health = opts.health;
    this.containers.set(c.id, c);
    return c;
  }

  /** Adds the container a task would have had (adoption tests). */
  addTaskContainer(task: Task, opts: { running?: boolean; exitCode?: number; health?: HealthStatus } = {}): FakeContainer {
    return this.addContainer(containerName(task), { ...taskLabels(task), [LABELS.nodeId]: this.nodeId }, opts);
  }

  /** The container of a task (by its shoal.task.id label). */
  byTask(taskId: string): FakeContainer | undefined {
    for (const c of this.containers.values()) if (c.labels[LABELS.taskId] === taskId) return c;
    return undefined;
  }

  byName(name: string): FakeContainer | undefined {
    for (const c of this.containers.values()) if (c.name === name) return c;
    return undefined;
  }

  /**
   * The task's container process exits with `code` (as if it ended or was `docker kill`ed);
   * `oomKilled`: the kernel's OOM killer ended it (the engine's `State.OOMKilled`).
   */
  exit(taskId: string, code: number, opts: { oomKilled?: boolean } = {}): void {
    const c = this.byTask(taskId);
    if (!c) throw new Error(`FakeExecutor: no container for task ${taskId}`);
    if (opts.oomKilled) c.oomKilled = true;
    this.stop(c, code);
  }

  /** The engine's health verdict on the task's container changes (`undefined`: no health check). */
  setHealth(taskId: string, health: HealthStatus | undefined): void {
    const c = this.byTask(taskId);
    if (!c) throw new Error(`FakeExecutor: no container for task ${taskId}`);
    if (health === undefined) delete c.health;
    else c.health = health;
  }

  /** The task's container disappears (as if `docker rm -f` ran behind Shoal's back). */
  vanish(taskId: string): void {
    const c = this.byTask(taskId);
    if (!c) throw new Error(`FakeExecutor: no container for task ${taskId}`);
    this.containers.delete(c.id);
    c.running = false;
    for (const w of c.waiters) w(-1);
    c.waiters.clear();
  }

  /** Containers that are running now. */
  running(): FakeContainer[] {
    return [...this.containers.values()].filter((c) => c.running);
  }

  /** @internal */
  stop(c: FakeContainer, code: number): void {
    if (!c.running) return;
    // A stopped task's secret and config files go (as the Docker executor unmounts them).
    const taskId = c.labels[LABELS.taskId];
    if (taskId) this.files.delete(taskId);
    c.running = false;
    c.exitCode = code;
    for (const w of c.waiters) w(code);
    c.waiters.clear();
  }

  /** @internal */
  create(task: Task): FakeContainer {
    const name = containerName(task);
    const c: FakeContainer = {
      id: `c${++this.seq}`,
      name,
      image: normalizeImageRef(task.spec.container.image),
      labels: { ...(task.spec.container.labels ?? {}), ...taskLabels(task), [LABELS.nodeId]: this.nodeId },
      running: false,
      started: false,
      starts: 0,
      waiters: new Set(),
    };
    this.containers.set(c.id, c);
    this.ops.push(`create ${name}`);
    return c;
  }
}

class FakeController implements Controller {
  private readonly name: string;

  constructor(
    private readonly engine: FakeExecutor,
    private readonly task: Task,
    private readonly files?: () => TaskFile[],
  ) {
    this.name = containerName(task);
  }

  private find(): FakeContainer | undefined {
    return this.engine.byName(this.name);
  }

  async prepare(): Promise<void> {
    await Promise.resolve();
    const failure = this.engine.failNextPrepare;
    if (failure) {
      this.engine.failNextPrepare = undefined;
      throw failure;
    }
    const files = this.files?.() ?? [];
    if (files.length) this.engine.files.set(this.task.id, files);
    if (this.find()) return;
    const image = normalizeImageRef(this.task.spec.container.image);
    if (!this.engine.images.has(image)) throw new ImageUnavailableError(image, 'fake registry has no such image');
    this.engine.create(this.task);
  }

  async start(): Promise<void> {
    await Promise.resolve();
    const c = this.find();
    if (!c) throw new ContainerNotFoundError(this.name);
    if (c.running) return;
    c.running = true;
    c.started = true;
    c.starts++;
    delete c.exitCode;
    const test = this.task.spec.container.healthcheck?.test ?? [];
    if (test[0] === 'CMD' || test[0] === 'CMD-SHELL') c.health = 'starting';
    this.engine.ops.push(`start ${c.name}`);
    this.engine.onStart?.(c);
  }

  wait(signal?: AbortSignal): Promise<{ exitCode: number; oomKilled?: boolean }> {
    const c = this.find();
    if (!c) return Promise.reject(new ContainerNotFoundError(this.name));
    if (!c.running) return Promise.resolve({ exitCode: c.exitCode ?? 0, ...(c.oomKilled ? { oomKilled: true } : {}) });
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        c.waiters.delete(waiter);
        reject(Object.assign(new Error('wait aborted'), { name: 'AbortError' }));
      };
      const waiter = (code: number): void => {
        signal?.removeEventListener('abort', onAbort);
        if (code === -1) reject(new ContainerNotFoundError(this.name));
        else resolve({ exitCode: code, ...(c.oomKilled ? { oomKilled: true } : {}) });
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort);
      c.waiters.add(waiter);
    });
  }

  async shutdown(gracePeriodMs?: number): Promise<void> {
    await Promise.resolve();
    const c = this.find();
    if (!c) return;
    c.lastGraceMs = gracePeriodMs ?? this.task.spec.container.stopGracePeriodMs;
    if (!c.running) return;
    this.engine.ops.push(`shutdown ${c.name}`);
    this.engine.stop(c, 143);
  }

  async terminate(): Promise<void> {
    await Promise.resolve();
    const c = this.find();
    if (!c || !c.running) return;
    this.engine.ops.push(`kill ${c.name}`);
    this.engine.stop(c, 137);
  }

  async remove(): Promise<void> {
    await Promise.resolve();
    this.engine.files.delete(this.task.id);
    const c = this.find();
    if (!c) return;
    this.engine.ops.push(`remove ${c.name}`);
    this.engine.stop(c, 137);
    this.engine.containers.delete(c.id);
  }

  async inspect(): Promise<ContainerStatus> {
    await Promise.resolve();
    if (this.engine.inspectError) throw this.engine.inspectError;
    const c = this.find();
    if (!c) return { exists: false, running: false, started: false };
    const st: ContainerStatus = { exists: true, containerId: c.id, running: c.running, started: c.started };
    if (c.started && !c.running && c.exitCode !== undefined) st.exitCode = c.exitCode;
    if (c.started && !c.running && c.oomKilled) st.oomKilled = true;
    if (c.running && this.engine.addressOf) st.addresses = [this.engine.addressOf(this.task.id)];
    if (c.running && c.health) st.health = c.health;
    return st;
  }
}
