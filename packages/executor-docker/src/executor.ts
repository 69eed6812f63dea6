import path from 'node:path';
import Dockerode from 'dockerode';
import type { NodeDescription, Task } from '@shoal/api';
import type { Controller, Executor, ManagedContainer, TaskFile } from '@shoal/agent';
import { LABELS, managedFromLabels } from '@shoal/agent';
import { DockerController, type TaskNetwork } from './controller.js';
import { defaultDockerHost, dockerOptions, engineMessage, statusCodeOf } from './docker-host.js';
import { TaskFileMounts } from './files.js';

export interface DockerExecutorOptions {
  /** This node's ID: the `shoal.node.id` label of the containers it creates, lists and removes. */
  nodeId: string;
  /** Engine address, `unix:///path` or `tcp://host:port`. Default `$DOCKER_HOST`, else `unix:///var/run/docker.sock`. */
  dockerHost?: string;
  /** Reported instead of the engine's hostname (shoald `--hostname`). */
  hostname?: string;
  /** Longest an image pull may take, ms (then the task is REJECTED). Default 120 000. */
  pullTimeoutMs?: number;
  /**
   * The node's overlay network: every task container joins it (with its DNS servers) and reports
   * its address there as `networkAddrs`. Absent: containers use the engine's default bridge.
   */
  network?: TaskNetwork;
  /**
   * Directory for the node's runtime state (shoald `--exec-root`): task secrets and configs are
   * kept on one tmpfs per task under `<execRoot>/tasks/<nodeId>/` (files.ts). Default `/run/shoal`.
   */
  execRoot?: string;
}

/**
 * {@link Executor} on a Docker engine via dockerode (the role of moby's
 * `daemon/cluster/executor/container`). Every container it creates carries the Shoal labels
 * (`shoal.service.id`, `shoal.service.name`, `shoal.task.id`, `shoal.task.slot`, `shoal.node.id`);
 * `list()` and `removeOrphan()` only see and touch containers labelled with this node's ID.
 */
export class DockerExecutor implements Executor {
  /** The dockerode client (for diagnostics and tests). */
  readonly docker: Dockerode;
  readonly nodeId: string;
  readonly dockerHost: string;
  private readonly hostname: string | undefined;
  private readonly pullTimeoutMs: number;
  private readonly network: TaskNetwork | undefined;
  /** The node's in-memory secret and config files (one tmpfs per task). */
  readonly taskFiles: TaskFileMounts;
  private node: Promise<{ hostname: string; os: string; architecture: string }> | undefined;

  /** Throws a one-line error when `nodeId` is empty or `dockerHost` is not a unix:// or tcp:// address. */
  constructor(opts: DockerExecutorOptions) {
    if (!opts.nodeId) throw new Error('DockerExecutor: nodeId is empty; pass the node ID the managers know this node by');
    this.nodeId = opts.nodeId;
    this.dockerHost = opts.dockerHost || defaultDockerHost();
    this.docker = new Dockerode(dockerOptions(this.dockerHost));
    this.hostname = opts.hostname;
    this.pullTimeoutMs = opts.pullTimeoutMs ?? 120_000;
    this.network = opts.network;
    this.taskFiles = new TaskFileMounts(path.join(opts.execRoot ?? '/run/shoal', 'tasks', this.nodeId));
  }

  /**
   * From `docker info` and `docker version`: hostname (engine `Name`), OS/architecture as the
   * engine reports them (`linux`/`x86_64`, like `docker node inspect`), NCPU × 10⁹ nano-CPUs,
   * MemTotal bytes, generic resources (`node-generic-resources` in daemon.json; named ones counted
   * per kind), engine version and engine labels. Rejects when the engine does not answer.
   */
  async describe(): Promise<NodeDescription> {
    let info: Record<string, unknown>;
    let version: Record<string, unknown>;
    try {
      [info, version] = (await Promise.all([this.docker.info(), this.docker.version()])) as unknown as [Record<string, unknown>, Record<string, unknown>];
    } catch (err) {
      throw new Error(`Docker engine at ${this.dockerHost} does not answer (${engineMessage(err)}); start it (scripts/dockerd.sh) or pass --docker-host`);
    }
    const labels: Record<string, string> = {};
    for (const kv of (info['Labels'] as string[] | null) ?? []) {
      const i = kv.indexOf('=');
      if (i > 0) labels[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const generic = genericResources(info['GenericResources']);
    return {
      hostname: this.hostname ?? String(info['Name'] ?? ''),
      platform: { os: String(info['OSType'] ?? 'linux'), architecture: String(info['Architecture'] ?? '') },
      resources: { nanoCpus: Number(info['NCPU'] ?? 0) * 1e9, memoryBytes: Number(info['MemTotal'] ?? 0), ...(generic.length ? { generic } : {}) },
      engine: { engineVersion: String(version['Version'] ?? info['ServerVersion'] ?? ''), labels },
    };
  }

  /** The node as task templates see it, from `describe()` (cached after the first success). */
  private templateNode(): Promise<{ hostname: string; os: string; architecture: string }> {
    this.node ??= this.describe().then(
      (d) => ({ hostname: d.hostname, os: d.platform.os, architecture: d.platform.architecture }),
      (err: unknown) => {
        this.node = undefined;
        throw err;
      },
    );
    return this.node;
  }

  controller(task: Task, files?: () => TaskFile[]): Controller {
    return new DockerController(this.docker, task, {
      nodeId: this.nodeId, pullTimeoutMs: this.pullTimeoutMs, node: () => this.templateNode(), ...(this.network ? { network: this.network } : {}),
      taskFiles: this.taskFiles, ...(files ? { files } : {}),
    });
  }

  /** Unmounts the secret and config files of every task `keep` does not name. */
  pruneTaskFiles(keep: (taskId: string) => boolean): Promise<void> {
    return this.taskFiles.prune(keep);
  }

  async list(): Promise<ManagedContainer[]> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [LABELS.taskId, `${LABELS.nodeId}=${this.nodeId}`] },
    });
    const out: ManagedContainer[] = [];
    for (const c of containers) {
      const m = managedFromLabels(c.Id, c.Names?.[0] ?? '', c.Labels, c.State === 'running');
      if (m && m.nodeId === this.nodeId) out.push(m);
    }
    return out;
  }

  async removeOrphan(containerId: string): Promise<void> {
    const container = this.docker.getContainer(containerId);
    let labels: Record<string, string> | undefined;
    try {
      labels = (await container.inspect()).Config?.Labels ?? undefined;
    } catch (err) {
      if (statusCodeOf(err) === 404) return;
      throw err;
    }
    if (!labels?.[LABELS.taskId] || labels[LABELS.nodeId] !== this.nodeId) {
      throw new Error(`container ${containerId} is not a Shoal task of node ${this.nodeId}; refusing to remove it`);
    }
    try {
      await container.remove({ force: true, v: true }); // anonymous volumes go with the container
    } catch (err) {
      const code = statusCodeOf(err);
      if (code !== 404 && code !== 409) throw new Error(`remove container ${containerId}: ${engineMessage(err)}`);
    }
    await this.taskFiles.release(labels[LABELS.taskId]!);
  }
}

/**
 * The engine's generic resources (`docker info` `GenericResources`: discrete `{Kind, Value}` and
 * named `{Kind, Value: "<id>"}` entries) as counts per kind, sorted by kind.
 */
export function genericResources(raw: unknown): { kind: string; value: number }[] {
  const counts = new Map<string, number>();
  for (const r of Array.isArray(raw) ? raw as Record<string, { Kind?: string; Value?: unknown } | undefined>[] : []) {
    const d = r['DiscreteResourceSpec'];
    const n = r['NamedResourceSpec'];
    if (d?.Kind) counts.set(d.Kind, (counts.get(d.Kind) ?? 0) + Number(d.Value ?? 0));
    else if (n?.Kind) counts.set(n.Kind, (counts.get(n.Kind) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([kind, value]) => ({ kind, value }));
}
