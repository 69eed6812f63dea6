import { isTerminal, taskStateRank, type Node, type Task } from '@shoal/api';

const RUNNING = taskStateRank('running');
const FAILURE_LIMIT = 5;
const FAILURE_WINDOW_MS = 5 * 60_000;

/** What one task takes from a node, as the scheduler counts it. */
interface Contribution {
  serviceId: string;
  /** Counts toward spread and max-replicas: desired state is at most RUNNING. */
  active: boolean;
  nanoCpus: number;
  memoryBytes: number;
  /** Discrete generic resources reserved (`--generic-resource gpu=1`), kind → count. */
  generic?: Record<string, number>;
  /** Host-mode published ports, `tcp/8080`. */
  hostPorts: string[];
}

/**
 * The scheduler's running picture of one node (SwarmKit `nodeinfo.go`): the node object plus
 * the tasks placed on it that have not ended. Updated incrementally from store events; the
 * scheduler also adds its own decisions provisionally until their commit comes back.
 *
 * A task holds resources and host ports until its observed state is terminal; it counts as
 * *active* (spread, max replicas) only while its desired state is at most RUNNING, so a task
 * being shut down never blocks its own replacement.
 */
export class NodeInfo {
  private contrib = new Map<string, Contribution>();
  private byService = new Map<string, number>();
  private ports = new Map<string, number>();
  /** Service ID → times (ms) its tasks failed here, oldest first. */
  private failures = new Map<string, number[]>();
  activeTotal = 0;
  reservedCpus = 0;
  reservedMemory = 0;
  /** Generic resources reserved by the tasks held here, kind → count. */
  private reservedGeneric = new Map<string, number>();

  constructor(public node: Node) {}

  get id(): string {
    return this.node.id;
  }

  /** Active tasks of `serviceId` on this node. */
  activeOf(serviceId: string): number {
    return this.byService.get(serviceId) ?? 0;
  }

  /** Nano-CPUs not yet reserved (node resources minus reservations of the tasks it holds). */
  get freeCpus(): number {
    return (this.node.description?.resources.nanoCpus ?? 0) - this.reservedCpus;
  }

  /** Memory bytes not yet reserved. */
  get freeMemory(): number {
    return (this.node.description?.resources.memoryBytes ?? 0) - this.reservedMemory;
  }

  /**
   * How many of the generic resource `kind` are not yet reserved: what the node advertises
   * (`description.resources.generic`, summed per kind) minus the reservations of its tasks.
   */
  freeGeneric(kind: string): number {
    let total = 0;
    for (const g of this.node.description?.resources.generic ?? []) if (g.kind === kind) total += g.value;
    return total - (this.reservedGeneric.get(kind) ?? 0);
  }

  /** Notes that a task of `serviceId` failed or was rejected on this node at `now` (ms). */
  recordFailure(serviceId: string, now: number): void {
    const list = this.failures.get(serviceId) ?? [];
    list.push(now);
    if (list.length > FAILURE_LIMIT) list.shift();
    this.failures.set(serviceId, list);
  }

  /**
   * True when `serviceId` failed here at least 5 times in the last 5 minutes (SwarmKit's rule):
   * such a node is tried last for that service.
   */
  failingFor(serviceId: string, now: number): boolean {
    const list = this.failures.get(serviceId);
    if (!list || list.length < FAILURE_LIMIT) return false;
    return now - list[0]! <= FAILURE_WINDOW_MS;
  }

  hostPortInUse(key: string): boolean {
    return (this.ports.get(key) ?? 0) > 0;
  }

  hasTask(taskId: string): boolean {
    return this.contrib.has(taskId);
  }

  /**
   * Records the task's current version (it must be on this node). Returns true when what the
   * node holds changed (a task arrived, left, or changed its reservations / activeness).
   */
  setTask(task: Task): boolean {
    const next = contributionOf(task);
    const prev = this.contrib.get(task.id);
    if (prev && next && sameContribution(prev, next)) return false;
    if (!prev && !next) return false;
    if (prev) this.apply(prev, -1);
    if (next) {
      this.contrib.set(task.id, next);
      this.apply(next, +1);
    } else {
      this.contrib.delete(task.id);
    }
    return true;
  }

  /** Forgets a task. Returns true when it was held here. */
  removeTask(taskId: string): boolean {
    const prev = this.contrib.get(taskId);
    if (!prev) return false;
    this.apply(prev, -1);
    this.contrib.delete(taskId);
    return true;
  }

  private apply(c: Contribution, sign: 1 | -1): void {
    if (c.active) {
      this.activeTotal += sign;
      const n = (this.byService.get(c.serviceId) ?? 0) + sign;
      if (n > 0) this.byService.set(c.serviceId, n);
      else this.byService.delete(c.serviceId);
    }
    this.reservedCpus += sign * c.nanoCpus;
    this.reservedMemory += sign * c.memoryBytes;
    for (const [kind, n] of Object.entries(c.generic ?? {})) {
      const v = (this.reservedGeneric.get(kind) ?? 0) + sign * n;
      if (v > 0) this.reservedGeneric.set(kind, v);
      else this.reservedGeneric.delete(kind);
    }
    for (const p of c.hostPorts) {
      const n = (this.ports.get(p) ?? 0) + sign;
      if (n > 0) this.ports.set(p, n);
      else this.ports.delete(p);
    }
  }
}

/** Host-mode published ports a task binds, as `proto/port` keys. */
export function hostPortsOf(task: Task): string[] {
  const out: string[] = [];
  for (const p of task.endpoint?.ports ?? []) {
    if (p.publishMode === 'host' && p.publishedPort > 0) out.push(`${p.protocol}/${p.publishedPort}`);
  }
  return out;
}

function contributionOf(task: Task): Contribution | undefined {
  if (isTerminal(task.status.state)) return undefined;
  const r = task.spec.resources?.reservations;
  const c: Contribution = {
    serviceId: task.serviceId,
    active: taskStateRank(task.desiredState) <= RUNNING,
    nanoCpus: r?.nanoCpus ?? 0,
    memoryBytes: r?.memoryBytes ?? 0,
    hostPorts: hostPortsOf(task),
  };
  if (r?.genericResources?.length) c.generic = Object.fromEntries(r.genericResources.map((g) => [g.kind, g.value]));
  return c;
}

function sameContribution(a: Contribution, b: Contribution): boolean {
  return a.serviceId === b.serviceId && a.active === b.active && a.nanoCpus === b.nanoCpus &&
    a.memoryBytes === b.memoryBytes && a.hostPorts.join() === b.hostPorts.join() && JSON.stringify(a.generic) === JSON.stringify(b.generic);
}
