import type { NodeDescription, PortConfig, Task } from '@shoal/api';
import type { TaskFile } from './files.js';

/**
 * The executor ports: how the agent runs tasks without knowing the container runtime
 * (SwarmKit `agent/exec/executor.go` and `controller.go`). `@shoal/executor-docker` implements
 * them on dockerode; `@shoal/testkit` has an in-memory `FakeExecutor` (tests only).
 *
 * Every container an executor creates carries the labels in {@link LABELS}; `list()` and
 * `removeOrphan()` only ever see or touch containers that carry them for this executor's node.
 */
export interface Executor {
  /** What this node offers (hostname, platform, resources, engine). Rejects when the runtime does not answer. */
  describe(): Promise<NodeDescription>;
  /**
   * A controller for one task. Cheap and synchronous: no runtime call happens until a method of
   * the controller is called. Calling it twice for the same task gives controllers of the same
   * container (the container is found by its deterministic name, {@link containerName}).
   * `files`, when given, yields the task's secret and config files (called at `prepare`; it throws
   * when they cannot be made, and the task is REJECTED): the executor must give them to the
   * container without writing them to the node's disk, and drop them when the task's container is
   * removed (docs/SECURITY.md).
   */
  controller(task: Task, files?: () => TaskFile[]): Controller;
  /** Every container labelled as a Shoal task of this node, running or not. */
  list(): Promise<ManagedContainer[]>;
  /**
   * Kills and removes a labelled container whose task is no longer assigned. Resolves if the
   * container is already gone. Rejects (and touches nothing) if `containerId` does not name a
   * container carrying this node's Shoal labels.
   */
  removeOrphan(containerId: string): Promise<void>;
  /**
   * Drops the in-memory secret and config files of every task for which `keep(taskId)` is false
   * when it is asked (after an agent restart, a crash, or a task removed unseen). Optional:
   * executors without such files omit it.
   */
  pruneTaskFiles?(keep: (taskId: string) => boolean): Promise<void>;
}

/** A container carrying the Shoal labels, as `Executor.list()` reports it. */
export interface ManagedContainer {
  containerId: string;
  /** Container name without the leading `/`, e.g. `web.2.x7c…`. */
  name: string;
  taskId: string;
  serviceId: string;
  serviceName: string;
  slot: number;
  nodeId: string;
  running: boolean;
}

/** What a controller sees of its container right now. */
export interface ContainerStatus {
  /** false: no container with the task's name exists (never created, or removed). */
  exists: boolean;
  containerId?: string;
  running: boolean;
  /** true once the container has been started at least once (Docker `State.StartedAt` set). */
  started: boolean;
  /** Exit code of the last run; present when started and not running. */
  exitCode?: number;
  /** The last run was killed by the kernel's OOM killer (Docker `State.OOMKilled`, e.g. over `--limit-memory`). */
  oomKilled?: boolean;
  /** Main process ID on the host while running (for `/proc/<pid>/ns/net`: network plumbing). */
  pid?: number;
  /** Host-mode published ports as bound while running (`publishedPort` as the engine chose it when the spec left 0). */
  ports?: PortConfig[];
  /** Data-path addresses (CIDR) while running, on the node's overlay network; reported as `TaskStatus.networkAddrs`. */
  addresses?: string[];
  /**
   * The engine's verdict on the container's health check (Docker `State.Health.Status`), present
   * only while running and only when the container has one (the spec's `healthcheck`, or the
   * image's own unless the spec disables it with `['NONE']`): `starting` until the first check
   * passes (failures in the start period do not count), `healthy`, or `unhealthy` after `retries`
   * consecutive failures. The task runner keeps a task STARTING until `healthy` and FAILs it on
   * `unhealthy`.
   */
  health?: HealthStatus;
}

/** A container's health-check status as the engine reports it (see {@link ContainerStatus.health}). */
export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/**
 * Lifecycle of one task's container (SwarmKit `Controller`). The agent's task runner calls the
 * methods in order prepare → start → wait, and shutdown/terminate/remove when the manager asks.
 *
 * Every method is idempotent, so a restarted agent can drive a controller over a container that
 * already exists (adoption): `prepare` on an existing container and `start` on a running one do
 * nothing; `shutdown`/`terminate`/`remove` on a stopped or missing container resolve.
 *
 * Errors: {@link ImageUnavailableError} from `prepare` (the task is REJECTED);
 * {@link ContainerNotFoundError} from `start`/`wait` when the container vanished underneath;
 * any other rejection is a runtime failure (the task FAILs, or is REJECTED before STARTING).
 */
export interface Controller {
  /** Makes sure the image is present (pulling only when missing) and creates the container, not started. */
  prepare(): Promise<void>;
  /** Starts the prepared container. Resolves once the runtime reports it started. */
  start(): Promise<void>;
  /**
   * Resolves with the exit code when the started container stops (at once if it already has), and
   * `oomKilled` when the kernel's OOM killer ended it.
   * Rejects with an `AbortError` when `signal` fires; the container keeps running.
   */
  wait(signal?: AbortSignal): Promise<{ exitCode: number; oomKilled?: boolean }>;
  /**
   * Stops the container: the stop signal (spec `stopSignal`, default SIGTERM), then SIGKILL after
   * `gracePeriodMs` (default: the spec's `stopGracePeriodMs`, else 10 000 ms). Resolves when it has stopped.
   */
  shutdown(gracePeriodMs?: number): Promise<void>;
  /** Kills the container at once (SIGKILL). */
  terminate(): Promise<void>;
  /** Removes the container (killing it if it still runs). */
  remove(): Promise<void>;
  /** The container's current status. */
  inspect(): Promise<ContainerStatus>;
}

/** The image is neither present locally nor pullable; the task is REJECTED with this message. */
export class ImageUnavailableError extends Error {
  constructor(readonly image: string, reason?: string) {
    super(`No such image: ${image} (not present locally and could not be pulled${reason ? `: ${reason}` : ''})`);
    this.name = 'ImageUnavailableError';
  }
}

/** The task's container does not exist (removed behind the agent's back, or never created). */
export class ContainerNotFoundError extends Error {
  constructor(readonly container: string) {
    super(`container ${container} not found (removed outside Shoal?)`);
    this.name = 'ContainerNotFoundError';
  }
}

/** Labels on every container Shoal runs (SwarmKit uses `com.docker.swarm.*` for the same roles). */
export const LABELS = {
  serviceId: 'shoal.service.id',
  serviceName: 'shoal.service.name',
  taskId: 'shoal.task.id',
  slot: 'shoal.task.slot',
  nodeId: 'shoal.node.id',
} as const;

/**
 * The container name of a task: `<serviceName>.<slot>.<taskId>`, or `<serviceName>.<nodeId>.<taskId>`
 * for global-service tasks (slot 0) — SwarmKit `api/naming`.
 */
export function containerName(task: Pick<Task, 'id' | 'serviceName' | 'slot' | 'nodeId'>): string {
  const middle = task.slot > 0 ? String(task.slot) : task.nodeId;
  return `${task.serviceName}.${middle}.${task.id}`;
}

/** The Shoal labels of a task's container (user labels from the spec are merged under these). */
export function taskLabels(task: Pick<Task, 'id' | 'serviceId' | 'serviceName' | 'slot' | 'nodeId'>): Record<string, string> {
  return {
    [LABELS.serviceId]: task.serviceId,
    [LABELS.serviceName]: task.serviceName,
    [LABELS.taskId]: task.id,
    [LABELS.slot]: String(task.slot),
    [LABELS.nodeId]: task.nodeId,
  };
}

/** Reads a {@link ManagedContainer} from a container's labels; undefined when it lacks the task label. */
export function managedFromLabels(
  containerId: string,
  name: string,
  labels: Record<string, string> | undefined,
  running: boolean,
): ManagedContainer | undefined {
  const taskId = labels?.[LABELS.taskId];
  if (!labels || !taskId) return undefined;
  return {
    containerId,
    name: name.replace(/^\//, ''),
    taskId,
    serviceId: labels[LABELS.serviceId] ?? '',
    serviceName: labels[LABELS.serviceName] ?? '',
    slot: Number(labels[LABELS.slot] ?? 0) || 0,
    nodeId: labels[LABELS.nodeId] ?? '',
    running,
  };
}

/**
 * An image reference as Docker resolves it for `create`: a missing tag means `:latest`
 * (`foo` → `foo:latest`, `reg:5000/foo` → `reg:5000/foo:latest`); digests are kept as given.
 */
export function normalizeImageRef(image: string): string {
  if (image.includes('@')) return image;
  const lastSlash = image.lastIndexOf('/');
  return image.slice(lastSlash + 1).includes(':') ? image : `${image}:latest`;
}
