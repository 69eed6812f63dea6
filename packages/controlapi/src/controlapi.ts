import {
  type Cluster, type Network, type Node, type NodeDescription, type NodeRole, type NodeUpdate, type Service, type ServiceSpec, type ServiceSpecInput,
  type ServiceSummary, type StackDeployInput, type StackDeployResult, type StackRemoved, type StackSummary, type Task, type TaskState,
  DEFAULTS, STACK_LABEL, SUPERSEDED_LABEL, ShoalError, alreadyExists, failedPrecondition, invalidArgument, isJobMode, isTerminal, modeName, newId, notFound, taskStateRank,
} from '@shoal/api';
import type { MemoryStore, ReadTx, Tx } from '@shoal/store';
import { isoNow, systemClock, type Clock } from '@shoal/runtime';
import { checkDuration, checkReplicaCount, checkReplicas, normalizeServiceSpec } from './validate.js';
import {
  type FileTable, checkLabels, inUseMessage, kindOf, matchesFilters, normalizeSecretSpec, redact, resolveFileObject, resolveFileRefs, usersOf,
} from './secrets.js';
import type { Config, SecretCreate, SecretFilters, SecretInfo, SecretSpec } from '@shoal/api';

export type { NodeUpdate, ServiceSpecInput, ServiceSummary };

export interface TaskFilter {
  service?: string;
  node?: string;
  desiredState?: TaskState;
}

/**
 * Context of a write made on behalf of a client: `requestId` makes it exactly-once across leader
 * changes (recorded with the write; a repeat gets the first result — see `MemoryStore.update`).
 */
export interface WriteCtx {
  requestId?: string;
}

/**
 * What the control API may ask of the Raft group (the manager supplies it): the quorum check of a
 * demotion needs the live membership, which the store does not hold.
 */
export interface MembershipView {
  /**
   * Why removing node `nodeId`'s Raft member now would lose quorum (a one-line reason), or
   * undefined when it is safe or the node has no member.
   */
  removalProblem(nodeId: string): string | undefined;
  /** True when node `nodeId` has a member in the Raft group. */
  isMember(nodeId: string): boolean;
}

export interface ControlApiOptions {
  membership?: MembershipView;
  /** Time source of the timestamps it writes (default {@link systemClock}). */
  clock?: Clock;
}

const meta0 = () => ({ version: 0, createdAt: '', updatedAt: '' });

/** ` as <existing>` when an existing name differs from `name` in case only (names are case-insensitive). */
const asExisting = (name: string, existing: string) => (existing === name ? '' : ` as ${existing} (names are case-insensitive)`);

/**
 * The user-facing API of the cluster (SwarmKit `manager/controlapi`): validates requests and
 * writes the store in one transaction each, so a refused request changes nothing. Runs on the
 * leader (writes) — followers forward to it. Errors are ShoalErrors with one-line messages.
 */
export class ControlApi {
  private readonly membership: MembershipView | undefined;
  private readonly clock: Clock;

  constructor(private readonly store: MemoryStore, opts: ControlApiOptions = {}) {
    this.membership = opts.membership;
    this.clock = opts.clock ?? systemClock;
  }

  // ---- services ----------------------------------------------------------------------------

  /**
   * Creates a service. @throws InvalidArgument (bad spec, see {@link normalizeServiceSpec});
   * AlreadyExists when a service has the name in any case (`api` and `API` are the same name).
   */
  async createService(input: ServiceSpecInput, ctx: WriteCtx = {}): Promise<{ id: string }> {
    const spec = normalizeServiceSpec(input);
    const id = newId();
    return this.store.update((tx) => {
      createServiceIn(tx, id, spec, isoNow(this.clock));
      return { id };
    }, { retries: 0, ...req(ctx) });
  }

  getService(ref: string): Service {
    return this.store.view((tx) => resolveService(tx, ref));
  }

  listServices(): ServiceSummary[] {
    return this.store.view((tx) => {
      const nodesUp = new Set(tx.list('nodes').filter((n) => n.status.state === 'ready').map((n) => n.id));
      return tx.list('services')
        .map((service) => {
          let tasks = tx.tasksByService(service.id);
          if (service.jobStatus) tasks = tasks.filter((t) => t.jobIteration === service.jobStatus!.jobIteration);
          const running = tasks.filter((t) => t.status.state === 'running' && t.desiredState === 'running' && nodesUp.has(t.nodeId)).length;
          const mode = service.spec.mode;
          if ('replicatedJob' in mode || 'globalJob' in mode) {
            // SwarmKit's ServiceStatus for jobs: desired = max-concurrent (replicated) or the tasks
            // still to complete (global); completed = tasks of this iteration that completed.
            const completed = tasks.filter((t) => t.status.state === 'complete').length;
            const desired = 'replicatedJob' in mode
              ? mode.replicatedJob.maxConcurrent
              : tasks.filter((t) => t.desiredState === 'running' && t.status.state !== 'complete').length;
            return { service, running, desired, completed };
          }
          const desired = 'replicated' in mode ? mode.replicated.replicas : tasks.filter((t) => t.desiredState === 'running').length;
          return { service, running, desired };
        })
        .sort((a, b) => a.service.spec.name.localeCompare(b.service.spec.name, undefined, { numeric: true }));
    });
  }

  /**
   * Updates a service. `version` (optional) is the `meta.version` the caller read: if the service
   * changed since, the update is refused ("update out of sequence"). `force` redeploys all tasks.
   * `rollback` puts the previous spec back and sets `updateStatus` to `rollback_started` (the
   * orchestrator rolls the tasks back with the rollback config and ends in `rollback_completed`);
   * any other update clears `updateStatus`, so a new rolling update (or a paused one) starts over,
   * as in SwarmKit. `specVersion` goes up (and the orchestrator rolls the tasks) when the task spec
   * or the endpoint (published ports, endpoint mode) changed; replicas and labels alone do not.
   */
  async updateService(ref: string, change: { spec?: Partial<ServiceSpecInput>; version?: number; force?: boolean; rollback?: boolean }, ctx: WriteCtx = {}): Promise<{ id: string }> {
    return this.store.update((tx) => {
      const cur = resolveService(tx, ref);
      if (change.version !== undefined && change.version !== cur.meta.version) {
        throw failedPrecondition(`update out of sequence: service ${cur.spec.name} is at version ${cur.meta.version}, not ${change.version}; inspect it again and retry`);
      }
      let spec;
      if (change.rollback) {
        if (!cur.previousSpec) throw failedPrecondition(`service ${cur.spec.name} has no previous spec to roll back to`);
        spec = cur.previousSpec;
      } else {
        spec = normalizeServiceSpec({ ...(change.spec ?? {}), name: change.spec?.name ?? cur.spec.name } as ServiceSpecInput, cur.spec);
        if (spec.name !== cur.spec.name) throw invalidArgument('renaming a service is not supported');
      }
      if (change.force) spec = { ...spec, task: { ...spec.task, forceUpdate: spec.task.forceUpdate + 1 } };
      applyServiceUpdate(tx, cur, spec, { rollback: !!change.rollback, now: isoNow(this.clock) });
      return { id: cur.id };
    }, { retries: change.version === undefined ? 3 : 0, ...req(ctx) });
  }

  /** Sets the replica count of a replicated service. @throws NotFound / InvalidArgument. */
  async scaleService(ref: string, replicas: number, ctx: WriteCtx = {}): Promise<{ id: string; replicas: number }> {
    checkReplicaCount(replicas);
    return this.store.update((tx) => {
      const cur = resolveService(tx, ref);
      const mode = cur.spec.mode;
      if ('replicatedJob' in mode) {
        // Docker: scaling a replicated job sets its completions (and runs it again, as any update).
        const jobStatus = { jobIteration: (cur.jobStatus?.jobIteration ?? 0) + 1, lastExecution: isoNow(this.clock) };
        tx.update('services', { ...cur, jobStatus, spec: { ...cur.spec, mode: { replicatedJob: { ...mode.replicatedJob, totalCompletions: replicas } } } });
        return { id: cur.id, replicas };
      }
      if (!('replicated' in mode)) throw invalidArgument(`scale can only be used with replicated or replicated-job mode; ${cur.spec.name} is ${modeName(mode)}`);
      tx.update('services', { ...cur, spec: { ...cur.spec, mode: { replicated: { replicas } } } });
      return { id: cur.id, replicas };
    }, req(ctx));
  }

  /**
   * Removes a service: the service object goes at once (its name is free again) and all its tasks
   * get desired state REMOVE in the same transaction; agents stop and remove the containers, and
   * the task reaper deletes the task records once they have stopped.
   */
  async removeService(ref: string, ctx: WriteCtx = {}): Promise<{ id: string }> {
    return this.store.update((tx) => {
      const cur = resolveService(tx, ref);
      removeServiceIn(tx, cur);
      return { id: cur.id };
    }, req(ctx));
  }

  // ---- tasks -------------------------------------------------------------------------------

  listTasks(filter: TaskFilter = {}): Task[] {
    return this.store.view((tx) => {
      let tasks: Task[];
      if (filter.service) tasks = tx.tasksByService(resolveService(tx, filter.service).id);
      else if (filter.node) tasks = tx.tasksByNode(resolveNode(tx, filter.node).id);
      else tasks = tx.list('tasks');
      if (filter.node && filter.service) {
        const nodeId = resolveNode(tx, filter.node).id;
        tasks = tasks.filter((t) => t.nodeId === nodeId);
      }
      if (filter.desiredState) tasks = tasks.filter((t) => t.desiredState === filter.desiredState);
      return tasks.sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.slot - b.slot || a.nodeId.localeCompare(b.nodeId)
        || b.meta.createdAt.localeCompare(a.meta.createdAt));
    });
  }

  getTask(ref: string): Task {
    return this.store.view((tx) => {
      const t = tx.get('tasks', ref) ?? uniquePrefix(tx.list('tasks'), ref, 'task');
      if (!t) throw notFound(`no such task: ${ref}`);
      return t;
    });
  }

  // ---- nodes -------------------------------------------------------------------------------

  listNodes(): Node[] {
    return this.store.view((tx) => tx.list('nodes').sort((a, b) =>
      (a.description?.hostname ?? '').localeCompare(b.description?.hostname ?? '', undefined, { numeric: true })));
  }

  getNode(ref: string): Node {
    return this.store.view((tx) => resolveNode(tx, ref));
  }

  /**
   * Changes a node's availability, labels or desired role. A role change only records the desired
   * role (SwarmKit's model): the leader's role manager then carries it out — a promoted node gets
   * a manager certificate and joins the Raft group under a fresh Raft ID; a demoted node's member
   * is removed from Raft, and then its role becomes worker. Asking for the role a node already has
   * is not an error (it cancels an unfinished change the other way).
   * @throws InvalidArgument (bad availability), NotFound (label or node), FailedPrecondition when a
   *   demotion would leave no manager or lose the Raft quorum (SwarmKit controlapi/node.go).
   */
  async updateNode(ref: string, change: NodeUpdate, ctx: WriteCtx = {}): Promise<{ id: string }> {
    if (change.availability && !['active', 'pause', 'drain'].includes(change.availability)) {
      throw invalidArgument(`invalid availability ${JSON.stringify(change.availability)}: must be active, pause or drain`);
    }
    return this.store.update((tx) => {
      const cur = resolveNode(tx, ref);
      const name = cur.description?.hostname ?? cur.id;
      const labels = { ...cur.spec.labels, ...(change.labelAdd ?? {}) };
      for (const k of change.labelRm ?? []) {
        if (!(k in labels)) throw notFound(`label ${k} is not set on node ${name}`);
        delete labels[k];
      }
      if (change.role === 'worker' && cur.spec.desiredRole === 'manager') {
        const managers = tx.list('nodes').filter((n) => n.role === 'manager' && n.spec.desiredRole === 'manager');
        if (managers.length <= 1 && managers[0]?.id === cur.id) {
          throw failedPrecondition(`node ${name} is the last manager of the swarm; demoting it would destroy the cluster`);
        }
        const problem = this.membership?.removalProblem(cur.id);
        if (problem) throw failedPrecondition(`can't demote ${name}: ${problem}`);
      }
      tx.update('nodes', {
        ...cur,
        spec: {
          ...cur.spec, labels,
          availability: (change.availability ?? cur.spec.availability) as Node['spec']['availability'],
          desiredRole: change.role ?? cur.spec.desiredRole,
        },
      });
      return { id: cur.id };
    }, req(ctx));
  }

  /**
   * Removes a node. Without `force` it must be Down. A manager that is a member of the Raft group
   * must be demoted first; a manager entry with no member (one left behind by `swarm init
   * --force-new-cluster`, or one that never finished joining) may be removed like a worker.
   */
  async removeNode(ref: string, force = false, ctx: WriteCtx = {}): Promise<{ id: string }> {
    return this.store.update((tx) => {
      const cur = resolveNode(tx, ref);
      const name = cur.description?.hostname ?? cur.id;
      if (cur.role === 'manager' && (this.membership?.isMember(cur.id) ?? true)) {
        throw failedPrecondition(`node ${name} is a cluster manager and is a member of the raft cluster; demote it before removal`);
      }
      if (!force && cur.status.state === 'ready') throw failedPrecondition(`node ${name} is not down and can't be removed; stop it first or use --force`);
      for (const t of tx.tasksByNode(cur.id)) {
        if (!isTerminal(t.status.state)) tx.update('tasks', { ...t, desiredState: 'remove', status: { ...t.status, state: 'orphaned', message: 'node removed' } });
      }
      const cluster = tx.list('clusters')[0];
      if (cluster) tx.update('clusters', { ...cluster, removedNodes: [...(cluster.removedNodes ?? []), cur.id] });
      tx.delete('nodes', cur.id);
      return { id: cur.id };
    }, req(ctx));
  }

  // ---- membership (called by the manager: the join flow, Raft membership, the role manager) ---

  /**
   * Writes a new cluster's objects: the cluster record and its first manager (`swarm init`).
   * Idempotent: an existing cluster or node is kept.
   */
  async bootstrapCluster(o: { nodeId: string; raftId: string; addr: string; description: NodeDescription; cluster: Partial<Cluster> }): Promise<void> {
    await this.store.update((tx) => {
      if (tx.list('clusters').length === 0) {
        const spec = defaultClusterSpec();
        // `swarm init --autolock`: the cluster starts locked, with the unlock key the node made.
        if (o.cluster.unlockKey) spec.encryption = { autoLockManagers: true };
        tx.create('clusters', { id: newId(), meta: meta0(), spec, ...o.cluster });
      }
      if (!tx.get('nodes', o.nodeId)) {
        tx.create('nodes', {
          id: o.nodeId, meta: meta0(),
          spec: { labels: {}, desiredRole: 'manager', availability: 'active' },
          role: 'manager',
          description: o.description,
          status: { state: 'unknown', message: '', addr: o.addr },
          managerStatus: { leader: true, reachability: 'reachable', addr: o.addr, raftId: o.raftId },
        });
      }
    });
  }

  /**
   * Admits a joining node of `role` (its token's): a new Node object; a manager becomes a Raft
   * member when it asks ({@link recordManager}). @returns the new node ID.
   */
  async admitNode(o: { role: NodeRole; addr: string; hostname?: string }): Promise<{ nodeId: string }> {
    const nodeId = newId();
    await this.store.update((tx) => tx.create('nodes', {
      id: nodeId, meta: meta0(),
      spec: { labels: {}, desiredRole: o.role, availability: 'active' },
      role: o.role,
      ...(o.hostname ? { description: { hostname: o.hostname, platform: { os: 'linux', architecture: '' }, resources: { nanoCpus: 0, memoryBytes: 0 }, engine: { engineVersion: '', labels: {} } } } : {}),
      status: { state: 'unknown', message: 'joining', addr: o.addr },
    }));
    return { nodeId };
  }

  /** Records that node `nodeId` is a manager whose Raft member is `raftId` at `addr` (after it joined Raft). */
  async recordManager(nodeId: string, raftId: string, addr: string): Promise<void> {
    await this.store.update((tx) => {
      const n = tx.get('nodes', nodeId);
      if (!n) return;
      if (n.role === 'manager' && n.managerStatus?.raftId === raftId && n.managerStatus.addr === addr) return;
      tx.update('nodes', { ...n, role: 'manager', managerStatus: { leader: false, reachability: 'reachable', addr, raftId } });
    });
  }

  /**
   * Records that node `nodeId` is a worker now: its Raft member is gone (demoted, removed, or shut
   * out by a force-new-cluster). Its desired role becomes worker too, so its next certificate is
   * a worker's and it is promoted again only when asked. `message` (optional) sets its status message.
   */
  async recordWorker(nodeId: string, o: { down?: string } = {}): Promise<void> {
    await this.store.update((tx) => {
      const n = tx.get('nodes', nodeId);
      if (!n) return;
      if (n.role === 'worker' && n.spec.desiredRole === 'worker' && !n.managerStatus && !o.down) return;
      const { managerStatus: _gone, ...rest } = n;
      tx.update('nodes', {
        ...rest,
        role: 'worker',
        spec: { ...n.spec, desiredRole: 'worker' },
        ...(o.down ? { status: { ...n.status, state: 'down' as const, message: o.down } } : {}),
      });
    });
  }

  /** Sets `role`'s join token (rotation; the manager makes the token). */
  async setJoinToken(role: NodeRole, token: string, ctx: WriteCtx = {}): Promise<void> {
    await this.store.update((tx) => {
      const cur = tx.list('clusters')[0];
      if (!cur?.joinTokens) throw failedPrecondition('this cluster has no join tokens');
      tx.update('clusters', { ...cur, joinTokens: { ...cur.joinTokens, [role]: token } });
    }, req(ctx));
  }

  // ---- cluster -----------------------------------------------------------------------------

  getCluster(): Cluster {
    const c = this.store.view((tx) => tx.list('clusters')[0]);
    if (!c) throw failedPrecondition('this node is not part of a swarm; run `shoal swarm init` or `shoal swarm join`');
    return c;
  }

  /**
   * Changes cluster settings. `autolock` turns manager autolock on or off (`swarm update
   * --autolock`); turning it on needs `unlockKey` (a fresh `SWMKEY-1-…` the manager made), which
   * is stored with it — turning it on when it is on already keeps the current key; turning it off
   * drops the key. @throws InvalidArgument for bad values, FailedPrecondition outside a swarm.
   */
  async updateCluster(change: { taskHistoryLimit?: number; heartbeatPeriodMs?: number; autolock?: boolean; unlockKey?: string }, ctx: WriteCtx = {}): Promise<void> {
    if (change.taskHistoryLimit !== undefined) checkReplicas(change.taskHistoryLimit);
    if (change.heartbeatPeriodMs !== undefined) {
      checkDuration('dispatcher heartbeat period', change.heartbeatPeriodMs);
      if (change.heartbeatPeriodMs <= 0) throw invalidArgument(`invalid dispatcher heartbeat period ${change.heartbeatPeriodMs} ms: must be greater than 0`);
    }
    await this.store.update((tx) => {
      const c = tx.list('clusters')[0];
      if (!c) throw failedPrecondition('this node is not part of a swarm');
      const next: Cluster = {
        ...c,
        spec: {
          ...c.spec,
          taskHistoryRetentionLimit: change.taskHistoryLimit ?? c.spec.taskHistoryRetentionLimit,
          dispatcher: { heartbeatPeriodMs: change.heartbeatPeriodMs ?? c.spec.dispatcher.heartbeatPeriodMs },
        },
      };
      if (change.autolock !== undefined) {
        const was = !!c.spec.encryption?.autoLockManagers;
        next.spec.encryption = { autoLockManagers: change.autolock };
        if (change.autolock && !was) {
          if (!change.unlockKey) throw failedPrecondition('turning autolock on needs a new unlock key');
          next.unlockKey = change.unlockKey;
        } else if (!change.autolock) {
          delete next.unlockKey;
        }
      }
      tx.update('clusters', next);
    }, req(ctx));
  }

  /**
   * Replaces the managers' unlock key (`swarm unlock-key --rotate`); `key` is the new one the
   * manager made. @throws FailedPrecondition when autolock is off (Docker's message).
   */
  async setUnlockKey(key: string, ctx: WriteCtx = {}): Promise<void> {
    await this.store.update((tx) => {
      const c = tx.list('clusters')[0];
      if (!c) throw failedPrecondition('this node is not part of a swarm');
      if (!c.spec.encryption?.autoLockManagers) throw failedPrecondition('cannot rotate because autolock is not turned on');
      tx.update('clusters', { ...c, unlockKey: key });
    }, req(ctx));
  }

  // ---- secrets and configs -----------------------------------------------------------------

  /**
   * Creates a secret (`table` secrets) or config. @throws InvalidArgument (name, labels, data,
   * template driver; see normalizeSecretSpec), AlreadyExists when the name is taken in any case.
   */
  async createSecretLike(table: FileTable, input: SecretCreate, ctx: WriteCtx = {}): Promise<{ id: string }> {
    const spec = normalizeSecretSpec(table, input);
    const id = newId();
    return this.store.update((tx) => {
      const existing = tx.byName(table, spec.name);
      if (existing) throw alreadyExists(`${kindOf(table)} ${spec.name} already exists${asExisting(spec.name, existing.spec.name)}`);
      tx.create(table, { id, meta: meta0(), spec });
      return { id };
    }, { retries: 0, ...req(ctx) });
  }

  /** Secrets or configs matching `filters`, by name, without their data. */
  listSecretLike(table: FileTable, filters?: SecretFilters): SecretInfo[] {
    return this.store.view((tx) => tx.list(table)
      .filter((o) => matchesFilters(o, filters))
      .sort((a, b) => a.spec.name.localeCompare(b.spec.name, undefined, { numeric: true }))
      .map(redact));
  }

  /** One secret without its data. @throws NotFound. */
  getSecret(ref: string): SecretInfo {
    return this.store.view((tx) => redact(resolveFileObject(tx, 'secrets', ref)));
  }

  /** One config with its data (Docker's `config inspect` shows it). @throws NotFound. */
  getConfig(ref: string): Config {
    return this.store.view((tx) => resolveFileObject(tx, 'configs', ref));
  }

  /**
   * Replaces a secret's or config's labels — the only change allowed (SwarmKit: "only updates to
   * Labels are allowed"). `version` (optional) is the `meta.version` read. @throws NotFound,
   * FailedPrecondition (out of sequence), InvalidArgument (bad label).
   */
  async updateSecretLike(table: FileTable, ref: string, change: { labels: Record<string, string>; version?: number }, ctx: WriteCtx = {}): Promise<{ id: string }> {
    checkLabels(change.labels, kindOf(table));
    return this.store.update((tx) => {
      const cur = resolveFileObject(tx, table, ref);
      if (change.version !== undefined && change.version !== cur.meta.version) {
        throw failedPrecondition(`update out of sequence: ${kindOf(table)} ${cur.spec.name} is at version ${cur.meta.version}, not ${change.version}; inspect it again and retry`);
      }
      tx.update(table, { ...cur, spec: { ...cur.spec, labels: { ...change.labels } } });
      return { id: cur.id };
    }, { retries: change.version === undefined ? 3 : 0, ...req(ctx) });
  }

  /**
   * Removes a secret or config. @throws NotFound; InvalidArgument while a service uses it, naming
   * the services (Docker's message), so nothing is removed.
   */
  async removeSecretLike(table: FileTable, ref: string, ctx: WriteCtx = {}): Promise<{ id: string }> {
    return this.store.update((tx) => {
      const cur = resolveFileObject(tx, table, ref);
      const users = usersOf(tx, table, cur.id);
      if (users.length) throw invalidArgument(inUseMessage(table, cur.spec.name, users));
      tx.delete(table, cur.id);
      return { id: cur.id };
    }, req(ctx));
  }

  // ---- stacks --------------------------------------------------------------------------------

  /**
   * Deploys a stack in ONE transaction: external networks must exist (Docker's message otherwise);
   * the stack's networks are created when missing; each service is created, or updated when its
   * spec differs from what runs (a redeploy of the same file changes nothing and restarts
   * nothing; a changed service rolls with its update config); `prune` removes the stack's other
   * services. Every service is normalized and checked first — one bad service deploys nothing.
   * `only` limits which services are written now (the CLI's `depends_on` waves); `dryRun` checks
   * and writes nothing.
   * @throws InvalidArgument / NotFound / AlreadyExists / FailedPrecondition naming the object.
   */
  async deployStack(input: StackDeployInput, ctx: WriteCtx = {}): Promise<StackDeployResult> {
    const stack = input.stack;
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(stack)) throw invalidArgument(`invalid stack name ${JSON.stringify(stack)}: use letters, digits, '_', '.' and '-', starting with a letter or digit`);
    const only = input.only ? new Set(input.only) : undefined;
    for (const n of input.only ?? []) {
      if (!input.services.some((x) => x.name === n)) throw invalidArgument(`stack ${stack}: "only" names ${JSON.stringify(n)}, which is not one of its services`);
    }
    // Normalize every service first: one bad spec deploys nothing.
    const specs = input.services.map((inp) => {
      if (inp.labels?.[STACK_LABEL] !== undefined && inp.labels[STACK_LABEL] !== stack) {
        throw invalidArgument(`service ${inp.name}: label ${STACK_LABEL}=${inp.labels[STACK_LABEL]} does not name stack ${stack}`);
      }
      const labels = { ...(inp.labels ?? {}), [STACK_LABEL]: stack };
      try {
        return normalizeServiceSpec({ ...inp, labels });
      } catch (e) {
        throw e instanceof ShoalError ? new ShoalError(e.code, `service ${inp.name}: ${e.message}`) : e;
      }
    });
    const networks = (input.networks ?? []).map((n) => (n.external ? undefined : checkNetworkInput({
      name: n.name, ...(n.driver ? { driver: n.driver } : {}), ...(n.subnet ? { subnet: n.subnet } : {}), ...(n.attachable !== undefined ? { attachable: n.attachable } : {}),
      labels: { ...(n.labels ?? {}), [STACK_LABEL]: stack },
    })));
    const objects = {
      secrets: (input.secrets ?? []).map((o) => (o.external ? undefined : stackObjectSpec('secrets', o, stack))),
      configs: (input.configs ?? []).map((o) => (o.external ? undefined : stackObjectSpec('configs', o, stack))),
    };
    const run = (tx: Tx): StackDeployResult => {
      const r: StackDeployResult = { created: [], updated: [], unchanged: [], removed: [], networks: [], secrets: [], configs: [] };
      (input.networks ?? []).forEach((n, i) => {
        const existing = tx.byName('networks', n.name);
        if (n.external) {
          if (!existing) throw notFound(`network "${n.name}" is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed`);
          return;
        }
        if (!existing) {
          createNetworkIn(tx, networks[i]!);
          r.networks.push(n.name);
        }
      });
      for (const kind of ['secrets', 'configs'] as const) {
        objects[kind].forEach((spec, i) => {
          const o = input[kind]![i]!;
          if (!spec) {
            if (!tx.byName(kind, o.name)) throw notFound(`${kindOf(kind)} "${o.name}" is declared as external, but could not be found; create it first with \`shoal ${kindOf(kind)} create\``);
            return;
          }
          if (applyStackObjectIn(tx, kind, spec, stack)) r[kind].push(spec.name);
        });
      }
      specs.forEach((spec) => {
        if (only && !only.has(spec.name)) return;
        const cur = tx.byName('services', spec.name);
        if (!cur) {
          createServiceIn(tx, newId(), spec, isoNow(this.clock));
          r.created.push(spec.name);
          return;
        }
        if (modeName(cur.spec.mode) !== modeName(spec.mode)) {
          throw invalidArgument(`service ${spec.name}: its mode cannot change from ${modeName(cur.spec.mode)} to ${modeName(spec.mode)}; remove the service (or the stack) and deploy again`);
        }
        // Compare with what runs (networks as IDs; a forced update's counter is kept).
        const next: ServiceSpec = { ...spec, task: { ...spec.task, forceUpdate: cur.spec.task.forceUpdate, networks: spec.task.networks.map((n) => ({ ...n, target: resolveNetwork(tx, n.target).id })) } };
        resolveFileRefs(tx, next);
        if (JSON.stringify(next) === JSON.stringify(cur.spec)) {
          r.unchanged.push(spec.name);
          return;
        }
        applyServiceUpdate(tx, cur, next, { rollback: false, now: isoNow(this.clock) });
        r.updated.push(spec.name);
      });
      if (input.prune) {
        const keep = new Set(specs.map((x) => x.name));
        for (const svc of tx.list('services')) {
          if (svc.spec.labels[STACK_LABEL] !== stack || keep.has(svc.spec.name)) continue;
          removeServiceIn(tx, svc);
          r.removed.push(svc.spec.name);
        }
        // The stack's secrets and configs the file no longer declares, unless a service still uses
        // them (docker/cli#203 asks for this; Docker's --prune leaves them).
        for (const kind of ['secrets', 'configs'] as const) {
          const declared = new Set((input[kind] ?? []).map((o) => o.name.toLowerCase()));
          for (const obj of tx.list(kind)) {
            if (obj.spec.labels[STACK_LABEL] !== stack || obj.spec.labels[SUPERSEDED_LABEL] || declared.has(obj.spec.name.toLowerCase())) continue;
            if (usersOf(tx, kind, obj.id).length) continue;
            tx.delete(kind, obj.id);
            r.removed.push(obj.spec.name);
          }
        }
      }
      return r;
    };
    if (input.dryRun) return this.store.view((tx) => run(dryTx(tx)));
    return this.store.update(run, { retries: 3, ...req(ctx) });
  }

  /** Stacks: the namespaces of services labelled `com.docker.stack.namespace`. */
  listStacks(): StackSummary[] {
    return this.store.view((tx) => {
      const count = new Map<string, number>();
      for (const s of tx.list('services')) {
        const st = s.spec.labels[STACK_LABEL];
        if (st !== undefined) count.set(st, (count.get(st) ?? 0) + 1);
      }
      return [...count].sort(([a], [b]) => a.localeCompare(b)).map(([name, services]) => ({ name, services }));
    });
  }

  /** The services of stack `stack` (as `service ls` shows them). @throws NotFound naming the stack. */
  stackServices(stack: string): ServiceSummary[] {
    const list = this.listServices().filter((x) => x.service.spec.labels[STACK_LABEL] === stack);
    if (list.length === 0) throw notFound(`Nothing found in stack: ${stack}`);
    return list;
  }

  /** The tasks of stack `stack`. @throws NotFound naming the stack. */
  stackTasks(stack: string, desiredState?: TaskState): Task[] {
    const ids = new Set(this.stackServices(stack).map((x) => x.service.id));
    return this.listTasks(desiredState ? { desiredState } : {}).filter((t) => ids.has(t.serviceId));
  }

  /**
   * Removes stack `stack`: its services (tasks go to REMOVE), then the networks, secrets and
   * configs it created (labelled with it; never external ones, never volumes), in one transaction.
   * @throws NotFound naming the stack.
   */
  async removeStack(stack: string, ctx: WriteCtx = {}): Promise<StackRemoved> {
    return this.store.update((tx) => {
      const r: StackRemoved = { services: [], networks: [], secrets: [], configs: [] };
      for (const svc of tx.list('services')) {
        if (svc.spec.labels[STACK_LABEL] !== stack) continue;
        removeServiceIn(tx, svc);
        r.services.push(svc.spec.name);
      }
      for (const net of tx.list('networks')) {
        if (net.spec.labels[STACK_LABEL] !== stack || net.spec.ingress) continue;
        const users = tx.list('services').filter((s) => s.spec.task.networks.some((n) => n.target === net.id));
        if (users.length) continue; // another stack's service uses it: keep it
        tx.delete('networks', net.id);
        r.networks.push(net.spec.name);
      }
      for (const kind of ['secrets', 'configs'] as const) {
        for (const obj of tx.list(kind)) {
          if (obj.spec.labels[STACK_LABEL] !== stack) continue;
          if (usersOf(tx, kind, obj.id).length) continue; // a service outside the stack uses it: keep it
          tx.delete(kind, obj.id);
          if (!obj.spec.labels[SUPERSEDED_LABEL]) r[kind].push(obj.spec.name);
        }
      }
      if (r.services.length + r.networks.length + r.secrets.length + r.configs.length === 0) throw notFound(`Nothing found in stack: ${stack}`);
      r.services.sort();
      r.networks.sort();
      r.secrets.sort();
      r.configs.sort();
      return r;
    }, req(ctx));
  }

  // ---- networks ----------------------------------------------------------------------------

  async createNetwork(input: NetworkCreateInput, ctx: WriteCtx = {}): Promise<{ id: string }> {
    const net = checkNetworkInput(input);
    return this.store.update((tx) => {
      createNetworkIn(tx, net);
      return { id: net.id };
    }, { retries: 0, ...req(ctx) });
  }

  listNetworks(): Network[] {
    return this.store.view((tx) => tx.list('networks').sort((a, b) => a.spec.name.localeCompare(b.spec.name)));
  }

  getNetwork(ref: string): Network {
    return this.store.view((tx) => resolveNetwork(tx, ref));
  }

  async removeNetwork(ref: string, ctx: WriteCtx = {}): Promise<{ id: string }> {
    return this.store.update((tx) => {
      const net = resolveNetwork(tx, ref);
      if (net.spec.ingress) throw failedPrecondition('the ingress network cannot be removed while services may publish ports');
      const users = tx.list('services').filter((s) => s.spec.task.networks.some((n) => n.target === net.id));
      if (users.length) throw failedPrecondition(`network ${net.spec.name} is in use by service ${users[0]!.spec.name}`);
      tx.delete('networks', net.id);
      return { id: net.id };
    }, req(ctx));
  }
}

/**
 * A stack's secret or config as a create request would make it: the stack's label added.
 * @throws InvalidArgument naming the stack and the object (name, data, template driver).
 */
function stackObjectSpec(kind: FileTable, o: { name: string; data?: string; labels?: Record<string, string>; templateDriver?: string }, stack: string): SecretSpec {
  if (o.labels?.[STACK_LABEL] !== undefined && o.labels[STACK_LABEL] !== stack) {
    throw invalidArgument(`${kindOf(kind)} ${o.name}: label ${STACK_LABEL}=${o.labels[STACK_LABEL]} does not name stack ${stack}`);
  }
  try {
    return normalizeSecretSpec(kind, {
      name: o.name, data: o.data ?? '', labels: { ...(o.labels ?? {}), [STACK_LABEL]: stack },
      ...(o.templateDriver ? { templateDriver: o.templateDriver } : {}),
    });
  } catch (e) {
    throw e instanceof ShoalError ? new ShoalError(e.code, `stack ${stack}: ${e.message}`) : e;
  }
}

/**
 * Creates or updates a stack's secret or config in `tx`; returns whether anything was written.
 * - absent: created;
 * - same content and template driver: its labels are updated if they differ, else nothing;
 * - other content (the file changed): objects are immutable (SwarmKit allows label changes only),
 *   so the current one is renamed `<name>.<first 12 of its ID>` and labelled
 *   {@link SUPERSEDED_LABEL}, and a new object takes the name. The services that use it by name
 *   then resolve to the new ID — a task change, rolled out like any other update (moby/moby#35048
 *   asks for exactly this); the old object goes once nothing uses it (orchestrator).
 * @throws InvalidArgument when an object of that name exists but belongs to no stack or another one.
 */
function applyStackObjectIn(tx: Tx, kind: FileTable, spec: SecretSpec, stack: string): boolean {
  const cur = tx.byName(kind, spec.name);
  if (!cur) {
    tx.create(kind, { id: newId(), meta: meta0(), spec });
    return true;
  }
  if (cur.spec.labels[STACK_LABEL] !== stack) {
    throw invalidArgument(`${kindOf(kind)} ${spec.name} exists and is not part of stack ${stack}; remove it, or declare it \`external: true\` in the compose file`);
  }
  if (cur.spec.data === spec.data && (cur.spec.templating?.name ?? '') === (spec.templating?.name ?? '')) {
    if (JSON.stringify(cur.spec.labels) === JSON.stringify(spec.labels)) return false;
    tx.update(kind, { ...cur, spec: { ...cur.spec, labels: spec.labels } });
    return true;
  }
  const id = newId();
  const renamed = `${cur.spec.name}.${cur.id.slice(0, 12)}`;
  tx.update(kind, { ...cur, spec: { ...cur.spec, name: renamed, labels: { ...cur.spec.labels, [SUPERSEDED_LABEL]: id } } });
  tx.create(kind, { id, meta: meta0(), spec });
  return true;
}

/** Deletes service `cur` and gives its tasks desired state REMOVE, in `tx`. */
function removeServiceIn(tx: Tx, cur: Service): void {
  for (const t of tx.tasksByService(cur.id)) {
    if (taskStateRank(t.desiredState) < taskStateRank('remove')) tx.update('tasks', { ...t, desiredState: 'remove' });
  }
  tx.delete('services', cur.id);
}

export { STACK_LABEL };

/**
 * A transaction over a read view that checks but writes nothing (a stack's dry run): creations and
 * updates are checked for name clashes against what is visible, then dropped.
 */
function dryTx(r: ReadTx): Tx {
  const made = new Map<string, string>();
  return {
    ...r,
    byName: (t, name) => r.byName(t, name) ?? (made.has(`${t}/${name.toLowerCase()}`) ? ({ id: made.get(`${t}/${name.toLowerCase()}`), spec: { name } } as never) : undefined),
    create: (t, o) => {
      const name = (o as { spec?: { name?: string } }).spec?.name;
      if (name) made.set(`${t}/${name.toLowerCase()}`, o.id);
    },
    update: () => undefined,
    delete: () => undefined,
  };
}

// ---- writes inside a transaction (shared by the single-object methods and stacks) --------------

/** What `network.create` (and a stack's network) asks for. */
export interface NetworkCreateInput {
  name: string;
  driver?: string;
  subnet?: string;
  attachable?: boolean;
  labels?: Record<string, string>;
}

/** Checks a network request and builds its object. @throws InvalidArgument naming the value. */
function checkNetworkInput(input: NetworkCreateInput): Network {
  if (!input?.name || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(input.name)) throw invalidArgument(`invalid network name ${JSON.stringify(input?.name)}`);
  const driver = input.driver ?? 'overlay';
  if (driver !== 'overlay') throw invalidArgument(`invalid driver ${JSON.stringify(driver)}: only overlay networks are swarm-scoped`);
  if (input.subnet !== undefined && !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(input.subnet)) throw invalidArgument(`invalid subnet ${JSON.stringify(input.subnet)}: expected CIDR like 10.1.0.0/24`);
  return {
    id: newId(), meta: meta0(),
    spec: { name: input.name, labels: input.labels ?? {}, driver, attachable: !!input.attachable, ingress: false, ...(input.subnet ? { subnet: input.subnet } : {}) },
  };
}

/** Creates network `net` in `tx`. @throws AlreadyExists when the name is taken (in any case). */
function createNetworkIn(tx: Tx, net: Network): void {
  const existing = tx.byName('networks', net.spec.name);
  if (existing) throw alreadyExists(`network with name ${net.spec.name} already exists${asExisting(net.spec.name, existing.spec.name)}`);
  tx.create('networks', net);
}

/**
 * Creates service `id` with the normalized `spec` in `tx`: networks, secrets and configs resolved
 * to IDs, published ports checked against other services. @throws AlreadyExists, NotFound (a network), InvalidArgument.
 */
function createServiceIn(tx: Tx, id: string, spec: ServiceSpec, now: string): void {
  const existing = tx.byName('services', spec.name);
  if (existing) throw alreadyExists(`service ${spec.name} already exists${asExisting(spec.name, existing.spec.name)}; use another name or update it`);
  spec.task.networks = spec.task.networks.map((n) => ({ ...n, target: resolveNetwork(tx, n.target).id }));
  // Also on rollback: the previous spec may name a secret removed since (refused, not REJECTED tasks).
  resolveFileRefs(tx, spec);
  checkPortConflicts(tx, spec.name, spec.endpoint?.ports ?? []);
  const jobStatus = isJobMode(spec.mode) ? { jobStatus: { jobIteration: 0, lastExecution: now } } : {};
  tx.create('services', { id, meta: meta0(), spec, specVersion: 1, ...jobStatus });
}

/**
 * Replaces service `cur`'s spec with `spec` (normalized; its networks resolved here). A new task
 * spec or a new endpoint (published ports, endpoint mode) replaces the tasks through a rolling
 * update: the endpoint decides a task's network attachments (an ingress port adds the ingress
 * network), so SwarmKit counts it as a task change too (orchestrator.IsTaskDirty compares
 * Spec.Endpoint with the task's endpoint). A job runs again on every update (SwarmKit bumps
 * JobIteration). `rollback` marks a manual rollback; any other update clears `updateStatus`.
 */
function applyServiceUpdate(tx: Tx, cur: Service, spec: ServiceSpec, o: { rollback: boolean; now: string }): void {
  spec.task.networks = spec.task.networks.map((n) => ({ ...n, target: resolveNetwork(tx, n.target).id }));
  // Also on rollback: the previous spec may name a secret removed since (refused, not REJECTED tasks).
  resolveFileRefs(tx, spec);
  checkPortConflicts(tx, spec.name, spec.endpoint?.ports ?? []);
  const taskChanged = JSON.stringify(spec.task) !== JSON.stringify(cur.spec.task)
    || JSON.stringify(spec.endpoint ?? null) !== JSON.stringify(cur.spec.endpoint ?? null);
  const { updateStatus: _old, ...rest } = cur;
  const jobStatus = cur.jobStatus ? { jobStatus: { jobIteration: cur.jobStatus.jobIteration + 1, lastExecution: o.now } } : {};
  tx.update('services', {
    ...rest,
    ...jobStatus,
    spec,
    previousSpec: cur.spec,
    specVersion: taskChanged ? cur.specVersion + 1 : cur.specVersion,
    ...(o.rollback ? { updateStatus: { state: 'rollback_started', startedAt: o.now, message: 'manually requested rollback' } } : {}),
  });
}

// ---- resolution helpers (Docker: full ID, then exact name, then unique ID prefix) -------------

function uniquePrefix<T extends { id: string }>(list: T[], ref: string, what: string): T | undefined {
  if (ref.length === 0) return undefined;
  const hits = list.filter((o) => o.id.startsWith(ref));
  if (hits.length > 1) throw invalidArgument(`${what} ${ref} is ambiguous (${hits.length} matches); give more of the ID`);
  return hits[0];
}

export function resolveService(tx: ReadTx, ref: string): Service {
  const s = tx.get('services', ref) ?? tx.byName('services', ref) ?? uniquePrefix(tx.list('services'), ref, 'service');
  if (!s) throw notFound(`service ${ref} not found`);
  return s;
}

/**
 * A node by full ID, then hostname (or spec name), then unique ID prefix (Docker's order). A name
 * that several nodes have is refused rather than guessed (Docker: "node X is ambiguous"): after a
 * node rejoins, its old entry keeps the same hostname.
 * @throws NotFound; InvalidArgument naming the matches when ambiguous.
 */
export function resolveNode(tx: ReadTx, ref: string): Node {
  const byId = tx.get('nodes', ref);
  if (byId) return byId;
  const named = tx.list('nodes').filter((x) => x.description?.hostname === ref || x.spec.name === ref);
  if (named.length > 1) {
    throw invalidArgument(`node ${ref} is ambiguous (${named.length} matches found: ${named.map((n) => n.id).sort().join(', ')}); use the node ID`);
  }
  const n = named[0] ?? uniquePrefix(tx.list('nodes'), ref, 'node');
  if (!n) throw notFound(`node ${ref} not found`);
  return n;
}

export function resolveNetwork(tx: ReadTx, ref: string): Network {
  const n = tx.get('networks', ref) ?? tx.byName('networks', ref) ?? uniquePrefix(tx.list('networks'), ref, 'network');
  if (!n) throw notFound(`network ${ref} not found`);
  return n;
}

/** Refuses a published (ingress) port another service already uses. */
function checkPortConflicts(tx: ReadTx, name: string, ports: { publishedPort: number; protocol: string; publishMode: string }[]): void {
  for (const p of ports) {
    if (p.publishedPort === 0 || p.publishMode !== 'ingress') continue;
    for (const other of tx.list('services')) {
      if (other.spec.name === name) continue;
      const used = [...(other.spec.endpoint?.ports ?? []), ...(other.endpoint?.ports ?? [])];
      if (used.some((q) => q.publishMode === 'ingress' && q.publishedPort === p.publishedPort && q.protocol === p.protocol)) {
        throw invalidArgument(`port ${p.publishedPort}/${p.protocol} is already in use by service ${other.spec.name}; pick another published port`);
      }
    }
  }
}

export const defaultClusterSpec = () => structuredClone(DEFAULTS.cluster) as Cluster['spec'];

/** The store's request options for a client write (see {@link WriteCtx}). */
function req(ctx: WriteCtx): { requestId?: string } {
  return ctx.requestId !== undefined ? { requestId: ctx.requestId } : {};
}
