import {
  DEFAULTS, type Node, type RestartPolicy, type Service, type ServiceSpec, type Task, type TaskState, type UpdateConfig,
  isTerminal, newId, taskStateRank,
} from '@shoal/api';
import type { MemoryStore } from '@shoal/store';
import { FakeClock, newTestStore } from '@shoal/testkit';
import { Orchestrators } from '../src/index.js';

const meta0 = () => ({ version: 0, createdAt: '', updatedAt: '' });

export function node(id: string, o: { state?: Node['status']['state']; availability?: Node['spec']['availability']; labels?: Record<string, string>; role?: Node['role'] } = {}): Node {
  return {
    id, meta: meta0(), role: o.role ?? 'worker',
    spec: { labels: o.labels ?? {}, desiredRole: o.role ?? 'worker', availability: o.availability ?? 'active' },
    description: { hostname: id, platform: { os: 'linux', architecture: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1 << 30 }, engine: { engineVersion: '28', labels: {} } },
    status: { state: o.state ?? 'ready', message: '', addr: '10.0.0.1' },
  };
}

export interface SvcOpts {
  replicas?: number;
  global?: boolean;
  restart?: Partial<RestartPolicy>;
  update?: Partial<UpdateConfig>;
  constraints?: string[];
}

export function serviceSpec(name: string, o: SvcOpts = {}): ServiceSpec {
  return {
    name, labels: {},
    mode: o.global ? { global: {} } : { replicated: { replicas: o.replicas ?? 1 } },
    task: {
      container: { image: 'busybox' },
      restart: { ...DEFAULTS.restart, ...(o.restart ?? {}) },
      placement: { constraints: o.constraints ?? [], maxReplicas: 0 },
      networks: [], forceUpdate: 0,
    },
    ...(o.update ? { update: { ...DEFAULTS.update, ...o.update } } : {}),
  };
}

/**
 * A test cluster: a loopback store, a fake clock, the orchestrators, and *fake* agents/scheduler
 * (named as fakes: they stand in for the allocator, scheduler and dispatcher, which are other
 * components). Every commit is checked against the count rule.
 */
export class FakeCluster {
  readonly store: MemoryStore = newTestStore();
  readonly clock = new FakeClock();
  orch: Orchestrators;
  /** Count-rule violations seen at any commit. */
  readonly violations: string[] = [];
  /** Max desired-running tasks per service seen at any commit. */
  readonly peak = new Map<string, number>();

  constructor(private readonly opts: { removeWaitsForStop?: boolean; drainHandoffMs?: number } = {}) {
    this.orch = new Orchestrators(this.store, { clock: this.clock, ...opts });
    // Services that got new tasks in the entry being applied: only such an entry can push a service
    // over its replica count (a scale-down takes effect one orchestrator pass later).
    const grew = new Set<string>();
    this.store.watch((ev) => {
      if (ev.kind === 'commit') {
        this.checkInvariants(grew);
        grew.clear();
      } else if (ev.kind === 'create' && ev.table === 'tasks') {
        grew.add((ev.object as Task).serviceId);
      }
    });
  }

  async init(nodes: Node[] = [], historyLimit = 5): Promise<this> {
    await this.store.update((tx) => {
      tx.create('clusters', { id: 'c1', meta: meta0(), spec: { ...DEFAULTS.cluster, taskHistoryRetentionLimit: historyLimit } });
      for (const n of nodes) tx.create('nodes', n);
    });
    this.orch.start();
    await this.settle();
    return this;
  }

  /** Simulates a leader change: the old components stop, new ones start over the same store. */
  async newLeader(): Promise<void> {
    this.orch.stop();
    this.orch = new Orchestrators(this.store, { clock: this.clock, ...this.opts });
    this.orch.start();
    await this.settle();
  }

  /** Lets the orchestrators finish every pass they have due (timers wait for the clock). */
  async settle(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      await this.orch.idle();
      await new Promise((r) => setImmediate(r));
      if (!this.orch.busy) return;
    }
  }

  /** Advances the fake clock by `ms` and settles. */
  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    await this.settle();
  }

  /** Lets the reaper run its batch. */
  async reap(): Promise<void> {
    await this.settle();
    this.clock.advance(250);
    await this.settle();
  }

  async createService(name: string, o: SvcOpts = {}): Promise<string> {
    const id = newId();
    await this.store.update((tx) => tx.create('services', { id, meta: meta0(), spec: serviceSpec(name, o), specVersion: 1 }));
    await this.settle();
    return id;
  }

  /** Like controlapi's update: `change` edits a copy of the spec; a task-spec change bumps specVersion. */
  async updateService(id: string, change: (s: Service) => void): Promise<void> {
    await this.store.update((tx) => {
      const s = tx.get('services', id)!;
      const before = JSON.stringify(s.spec.task);
      const prev = structuredClone(s.spec);
      change(s);
      if (JSON.stringify(s.spec.task) !== before) {
        s.specVersion++;
        s.previousSpec = prev;
      }
      tx.update('services', s);
    });
    await this.settle();
  }

  async scale(id: string, replicas: number): Promise<void> {
    await this.updateService(id, (s) => { s.spec.mode = { replicated: { replicas } }; });
  }

  async forceUpdate(id: string): Promise<void> {
    await this.updateService(id, (s) => { s.spec.task.forceUpdate++; });
  }

  async updateNode(id: string, change: (n: Node) => void): Promise<void> {
    await this.store.update((tx) => {
      const n = tx.get('nodes', id)!;
      change(n);
      tx.update('nodes', n);
    });
    await this.settle();
  }

  async addNode(n: Node): Promise<void> {
    await this.store.update((tx) => tx.create('nodes', n));
    await this.settle();
  }

  tasks(serviceId?: string): Task[] {
    return this.store.view((tx) => (serviceId ? tx.tasksByService(serviceId) : tx.list('tasks')));
  }

  /** Desired-running tasks of a service (desired state ≤ RUNNING), by slot. */
  desiredRunning(serviceId: string): Task[] {
    return this.tasks(serviceId).filter((t) => taskStateRank(t.desiredState) <= taskStateRank('running')).sort((a, b) => a.slot - b.slot || a.nodeId.localeCompare(b.nodeId));
  }

  service(id: string): Service | undefined {
    return this.store.view((tx) => tx.get('services', id));
  }

  /**
   * Fake scheduler + agents, one step: unassigned desired-running tasks go to the ready, active node
   * with the fewest desired-running tasks; assigned ones start RUNNING; tasks whose desired state is
   * SHUTDOWN stop (status SHUTDOWN) unless their node is down. Tasks with desired REMOVE are left
   * alone, as the real dispatcher drops them from the agent's set (with `removeWaitsForStop`, the
   * fake agents stop them too). Returns whether anything changed.
   */
  async runAgents(): Promise<boolean> {
    const changed = await this.store.update((tx) => {
      let n = 0;
      const nodes = tx.list('nodes').filter((x) => x.status.state === 'ready' && x.spec.availability === 'active');
      const load = new Map(nodes.map((x) => [x.id, tx.tasksByNode(x.id).filter((t) => taskStateRank(t.desiredState) <= taskStateRank('running')).length]));
      const all = tx.list('tasks').sort((a, b) => a.slot - b.slot);
      for (const t of all) {
        const nd = t.nodeId ? tx.get('nodes', t.nodeId) : undefined;
        if (t.nodeId && (!nd || nd.status.state === 'down')) continue;
        if (taskStateRank(t.desiredState) >= taskStateRank('remove') && !this.opts.removeWaitsForStop) continue;
        if (taskStateRank(t.desiredState) > taskStateRank('running')) {
          if (!isTerminal(t.status.state)) {
            tx.update('tasks', { ...t, status: { ...t.status, state: 'shutdown', message: 'shutdown' } });
            n++;
          }
          continue;
        }
        if (isTerminal(t.status.state) || t.status.state === 'running') continue;
        if (!t.nodeId) {
          const best = [...load.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0];
          if (!best) continue;
          load.set(best[0], best[1] + 1);
          tx.update('tasks', { ...t, nodeId: best[0], status: { ...t.status, state: 'running', message: 'started', timestamp: new Date(this.clock.now()).toISOString() } });
        } else {
          tx.update('tasks', { ...t, status: { ...t.status, state: 'running', message: 'started', timestamp: new Date(this.clock.now()).toISOString() } });
        }
        n++;
      }
      return n;
    });
    await this.settle();
    return changed > 0;
  }

  /** Runs agents and orchestrators until nothing changes (no clock movement). */
  async converge(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      await this.settle();
      if (!(await this.runAgents())) break;
    }
    await this.settle();
  }

  /** The agent reports that `taskId` ended with `state` (default FAILED, exit 1). */
  async end(taskId: string, state: TaskState = 'failed', exitCode = 1, err = 'task: non-zero exit (1)'): Promise<void> {
    await this.store.update((tx) => {
      const t = tx.get('tasks', taskId)!;
      tx.update('tasks', { ...t, status: { ...t.status, state, exitCode, timestamp: new Date(this.clock.now()).toISOString(), ...(state === 'complete' ? {} : { err }) } });
    });
    await this.settle();
  }

  /** The desired-running task in `slot`. */
  inSlot(serviceId: string, slot: number): Task | undefined {
    return this.desiredRunning(serviceId).find((t) => t.slot === slot);
  }

  /** Per slot at most one desired-running task; per service at most `replicas` after any entry that created tasks. */
  private checkInvariants(grew: ReadonlySet<string>): void {
    this.store.view((tx) => {
      for (const s of tx.list('services')) {
        const run = tx.tasksByService(s.id).filter((t) => taskStateRank(t.desiredState) <= taskStateRank('running'));
        this.peak.set(s.id, Math.max(this.peak.get(s.id) ?? 0, run.length));
        if (s.spec.update?.order === 'start-first') continue; // two per slot during a replacement, by definition
        const per = new Map<string, number>();
        for (const t of run) {
          const k = 'global' in s.spec.mode ? t.nodeId : String(t.slot);
          per.set(k, (per.get(k) ?? 0) + 1);
        }
        for (const [k, c] of per) if (c > 1) this.violations.push(`${s.spec.name}: ${c} desired-running tasks in slot ${k}`);
        if (grew.has(s.id) && 'replicated' in s.spec.mode && run.length > s.spec.mode.replicated.replicas) {
          this.violations.push(`${s.spec.name}: ${run.length} desired-running tasks > ${s.spec.mode.replicated.replicas} replicas`);
        }
      }
    });
  }
}
