import type { Task } from '@shoal/api';
import { matchConstraints, parseConstraints, type Constraint } from './constraint.js';
import { hostPortsOf, type NodeInfo } from './nodeinfo.js';

/**
 * One stage of the placement pipeline (SwarmKit `manager/scheduler/filter.go`, same contract).
 * `setTask` prepares the filter for a task and returns false when the filter does not apply to
 * it (then it is skipped); `check` says whether a node can take the task; `explain(n)` is the
 * reason shown to users when the filter rejected `n` nodes.
 */
export interface Filter {
  readonly name: string;
  setTask(task: Task): boolean;
  check(node: NodeInfo): boolean;
  explain(nFailed: number): string;
}

const nodes = (n: number) => (n === 1 ? '1 node' : `${n} nodes`);

/** Node must be READY (its agent holds a session with the dispatcher). */
export class ReadyFilter implements Filter {
  readonly name = 'ready';
  setTask(): boolean {
    return true;
  }
  check(n: NodeInfo): boolean {
    return n.node.status.state === 'ready';
  }
  explain(k: number): string {
    return `${nodes(k)} not ready`;
  }
}

/** Node availability must be `active`: paused and drained nodes take no new tasks. */
export class AvailabilityFilter implements Filter {
  readonly name = 'availability';
  setTask(): boolean {
    return true;
  }
  check(n: NodeInfo): boolean {
    return n.node.spec.availability === 'active';
  }
  explain(k: number): string {
    return `${nodes(k)} not available for new tasks`;
  }
}

/** `placement.constraints`, ANDed. A constraint that does not parse matches no node. */
export class ConstraintFilter implements Filter {
  readonly name = 'constraint';
  private constraints: Constraint[] = [];
  private error = '';
  setTask(t: Task): boolean {
    const exprs = t.spec.placement.constraints;
    if (exprs.length === 0) return false;
    try {
      this.constraints = parseConstraints(exprs);
      this.error = '';
    } catch (e) {
      this.constraints = [];
      this.error = (e as Error).message;
    }
    return true;
  }
  check(n: NodeInfo): boolean {
    return !this.error && matchConstraints(this.constraints, n.node);
  }
  explain(k: number): string {
    return this.error ? this.error : `scheduling constraints not satisfied on ${nodes(k)}`;
  }
}

/**
 * Reservations (`resources.reservations`: CPUs, memory and discrete generic resources such as
 * `gpu=1`) must fit in what the node has not reserved yet.
 */
export class ResourceFilter implements Filter {
  readonly name = 'resources';
  private cpus = 0;
  private memory = 0;
  private generic: { kind: string; value: number }[] = [];
  setTask(t: Task): boolean {
    const r = t.spec.resources?.reservations;
    this.cpus = r?.nanoCpus ?? 0;
    this.memory = r?.memoryBytes ?? 0;
    this.generic = r?.genericResources ?? [];
    return this.cpus > 0 || this.memory > 0 || this.generic.length > 0;
  }
  check(n: NodeInfo): boolean {
    return n.freeCpus >= this.cpus && n.freeMemory >= this.memory && this.generic.every((g) => n.freeGeneric(g.kind) >= g.value);
  }
  explain(k: number): string {
    return `insufficient resources on ${nodes(k)}`;
  }
}

/** Host-mode published ports must be free on the node. */
export class HostPortFilter implements Filter {
  readonly name = 'hostport';
  private ports: string[] = [];
  setTask(t: Task): boolean {
    this.ports = hostPortsOf(t);
    return this.ports.length > 0;
  }
  check(n: NodeInfo): boolean {
    return !this.ports.some((p) => n.hostPortInUse(p));
  }
  explain(k: number): string {
    return `host-mode port already in use on ${nodes(k)}`;
  }
}

/** `placement.maxReplicas`: at most that many active tasks of the service per node. */
export class MaxReplicasFilter implements Filter {
  readonly name = 'maxreplicas';
  private max = 0;
  private serviceId = '';
  setTask(t: Task): boolean {
    this.max = t.spec.placement.maxReplicas;
    this.serviceId = t.serviceId;
    return this.max > 0;
  }
  check(n: NodeInfo): boolean {
    return n.activeOf(this.serviceId) < this.max;
  }
  explain(k: number): string {
    return `max replicas per node limit exceed on ${nodes(k)}`;
  }
}

/** The default pipeline, in SwarmKit's order (cheap liveness checks first). */
export function defaultFilters(): Filter[] {
  return [new ReadyFilter(), new AvailabilityFilter(), new ResourceFilter(), new ConstraintFilter(), new HostPortFilter(), new MaxReplicasFilter()];
}

/**
 * Runs the enabled filters over nodes for one task, counting which filter rejected each node
 * (only the first failing filter counts, as in SwarmKit).
 */
export class Pipeline {
  private enabled: Filter[] = [];
  private failures = new Map<Filter, number>();

  constructor(private readonly filters: Filter[] = defaultFilters()) {}

  /** Prepares every filter for `task` and clears the failure counts. */
  setTask(task: Task): void {
    this.enabled = this.filters.filter((f) => f.setTask(task));
    this.failures.clear();
  }

  /** True when `node` passes every enabled filter; otherwise counts the first failure. */
  check(node: NodeInfo): boolean {
    for (const f of this.enabled) {
      if (!f.check(node)) {
        this.failures.set(f, (this.failures.get(f) ?? 0) + 1);
        return false;
      }
    }
    return true;
  }

  /** Like {@link check} without counting. */
  passes(node: NodeInfo): boolean {
    for (const f of this.enabled) if (!f.check(node)) return false;
    return true;
  }

  resetCounts(): void {
    this.failures.clear();
  }

  /** `"scheduling constraints not satisfied on 2 nodes; 1 node not ready"`, in pipeline order. */
  explain(): string {
    return this.enabled.filter((f) => this.failures.has(f)).map((f) => f.explain(this.failures.get(f)!)).join('; ');
  }
}

/** The task error for an unplaceable task: `no suitable node (<explanations>)`. */
export function noSuitableNode(explanation: string): string {
  return explanation ? `no suitable node (${explanation})` : 'no suitable node';
}
