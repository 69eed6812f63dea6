/**
 * The control contract: every method a client (the `shoal` CLI, later the Engine API façade) may
 * call on a node's local socket, defined once — name, parameter schema, result type, and where it
 * runs. Everything else is derived from this table:
 *
 * - the typed client call (`Call`, `Params<M>`, `Result<M>` — types only, nothing bundled);
 * - the socket server's routing and its runtime validation of every payload ({@link checkParams});
 * - follower → leader forwarding and the read/write split ({@link MethodDef.kind}):
 *   - `local`: runs on the node that received it (init, join, leave, info — they act on the node);
 *   - `read`: runs on the Raft leader after a ReadIndex barrier (Raft thesis §6.4), so a read
 *     issued after a write that returned sees it, whichever manager the client asked;
 *   - `write`: runs on the Raft leader; a forwarded write carries a request id, recorded in the
 *     replicated state with the write, so a retry that reaches any leader runs it at most once.
 *
 * Schemas are JSON Schema (built with TypeBox, checked with ajv): they check shapes — types,
 * required and unknown fields — and leave value rules (ranges, names, durations) to the control API,
 * whose messages name the value and the fix. Unknown fields are refused, never silently dropped.
 * This module is the only place a method name is written down.
 */
import { Type as T, type Static, type TSchema } from '@sinclair/typebox';
import type { Config, Meta, Network, Node, SecretSpec, Service, Task, TaskState } from './objects.js';

/** Where a method runs (see the file header). */
export type MethodKind = 'local' | 'read' | 'write';

/** One method of the contract: where it runs, its parameter schema, and (as a type only) its result. */
export interface MethodDef<P extends TSchema = TSchema, R = unknown> {
  readonly kind: MethodKind;
  readonly params: P;
  /** Phantom: carries the result type; always undefined at run time. */
  readonly result: R;
  /** One line for docs and errors. */
  readonly summary: string;
}

function def<R>() {
  return <P extends TSchema>(kind: MethodKind, params: P, summary: string): MethodDef<P, R> =>
    ({ kind, params, result: undefined as R, summary });
}

const Str = T.String();
const Num = T.Number();
const Bool = T.Boolean();
const Labels = T.Record(T.String(), T.String());
const Opt = T.Optional;
/** An object whose properties are all checked and no other property is allowed. */
const Obj = <P extends Parameters<typeof T.Object>[0]>(props: P) => T.Object(props, { additionalProperties: false });
const Ref = Obj({ ref: Str });
const Empty = Obj({});
const Role = T.Union([T.Literal('worker'), T.Literal('manager')]);

/** Docker `HealthConfig`, durations in ms (see objects.ts `HealthConfig`). */
export const HealthConfigSchema = Obj({
  test: T.Array(Str),
  intervalMs: Opt(Num),
  timeoutMs: Opt(Num),
  startPeriodMs: Opt(Num),
  retries: Opt(Num),
});

const UpdateConfigInput = Obj({
  parallelism: Opt(Num),
  delayMs: Opt(Num),
  failureAction: Opt(Str),
  monitorMs: Opt(Num),
  maxFailureRatio: Opt(Num),
  order: Opt(Str),
});

/** A filesystem mount (objects.ts `Mount`); values are checked by the control API (`mountProblem`). */
export const MountSchema = Obj({
  type: Str,
  source: Opt(Str),
  target: Opt(Str),
  readOnly: Opt(Bool),
  consistency: Opt(Str),
  bindOptions: Opt(Obj({ propagation: Opt(Str), nonRecursive: Opt(Bool), createMountpoint: Opt(Bool) })),
  volumeOptions: Opt(Obj({
    noCopy: Opt(Bool), labels: Opt(Labels), subpath: Opt(Str),
    driverConfig: Opt(Obj({ name: Str, options: Opt(Labels) })),
  })),
  tmpfsOptions: Opt(Obj({ sizeBytes: Opt(Num), mode: Opt(Num) })),
});

/**
 * Runtime options of a service (issue 9: mounts, limits, jobs and the other `docker service
 * create` flags), spread into {@link ServiceSpecInputSchema}. On update a list or map given here
 * replaces the current one whole (the CLI applies `--*-add`/`--*-rm` to the current value first).
 */
const RuntimeOptionsInput = {
  /** Jobs: `replicated-job` runs `replicas` completions, at most `maxConcurrent` at once (default: replicas). */
  maxConcurrent: Opt(Num),
  mounts: Opt(T.Array(MountSchema)),
  limitNanoCpus: Opt(Num),
  limitMemoryBytes: Opt(Num),
  limitPids: Opt(Num),
  genericResources: Opt(T.Array(Obj({ kind: Str, value: Num }))),
  dir: Opt(Str),
  user: Opt(Str),
  groups: Opt(T.Array(Str)),
  init: Opt(Bool),
  tty: Opt(Bool),
  readOnly: Opt(Bool),
  stopSignal: Opt(Str),
  capAdd: Opt(T.Array(Str)),
  capDrop: Opt(T.Array(Str)),
  sysctls: Opt(Labels),
  ulimits: Opt(T.Array(Obj({ name: Str, soft: Num, hard: Num }))),
  dns: Opt(T.Array(Str)),
  dnsSearch: Opt(T.Array(Str)),
  dnsOptions: Opt(T.Array(Str)),
  /** Extra /etc/hosts lines in SwarmKit's form `IP hostname [aliases...]`. */
  hosts: Opt(T.Array(Str)),
  /** `{name: ''}` (or absent on create) = the engine's default driver. */
  logDriver: Opt(Obj({ name: Str, options: Opt(Labels) })),
  placementPreferences: Opt(T.Array(Obj({ spread: Str }))),
};

/**
 * A service's use of a secret or config (`--secret source=S,target=T,uid=U,gid=G,mode=M`):
 * `source` is the name or ID; the control API fills in the defaults (target = the name; uid and
 * gid `"0"`; mode 0444) and resolves the ID. `mode` is the permission bits as a number (0o400).
 */
export const FileRefInputSchema = Obj({
  source: Str,
  target: Opt(Str),
  uid: Opt(Str),
  gid: Opt(Str),
  mode: Opt(Num),
});
export type FileRefInput = Static<typeof FileRefInputSchema>;

/**
 * What a client sends to create a service (or, every field optional, to update one): a ServiceSpec
 * whose optional parts get Docker's defaults in the control API. Durations in ms, sizes in bytes,
 * CPUs in nano-CPUs (1e9 = one CPU).
 */
export const ServiceSpecInputSchema = Obj({
  name: Str,
  labels: Opt(Labels),
  mode: Opt(Str),
  replicas: Opt(Num),
  image: Str,
  command: Opt(T.Array(Str)),
  args: Opt(T.Array(Str)),
  env: Opt(T.Array(Str)),
  containerLabels: Opt(Labels),
  hostname: Opt(Str),
  stopGracePeriodMs: Opt(Num),
  /** Replaces the whole health check on update (the CLI merges `--health-*` flags into the current one). */
  healthcheck: Opt(HealthConfigSchema),
  restart: Opt(Obj({ condition: Opt(Str), delayMs: Opt(Num), maxAttempts: Opt(Num), windowMs: Opt(Num) })),
  constraints: Opt(T.Array(Str)),
  maxReplicasPerNode: Opt(Num),
  /** Networks by name or ID, or `{target, aliases}` (extra DNS names of the service on that network). */
  networks: Opt(T.Array(T.Union([Str, Obj({ target: Str, aliases: Opt(T.Array(Str)) })]))),
  ports: Opt(T.Array(Obj({ name: Opt(Str), protocol: Opt(Str), targetPort: Opt(Num), publishedPort: Opt(Num), publishMode: Opt(Str) }))),
  endpointMode: Opt(Str),
  update: Opt(UpdateConfigInput),
  rollback: Opt(UpdateConfigInput),
  reserveNanoCpus: Opt(Num),
  reserveMemoryBytes: Opt(Num),
  ...RuntimeOptionsInput,
  /** Secrets for the tasks (`--secret`); replaces the whole list on update. */
  secrets: Opt(T.Array(FileRefInputSchema)),
  /** Configs for the tasks (`--config`); replaces the whole list on update. */
  configs: Opt(T.Array(FileRefInputSchema)),
});
export type ServiceSpecInput = Static<typeof ServiceSpecInputSchema>;

const NodeUpdateSchema = Obj({
  ref: Str,
  availability: Opt(Str),
  labelAdd: Opt(Labels),
  labelRm: Opt(T.Array(Str)),
  role: Opt(Role),
});
/** A node change (`node update`, `promote`, `demote`); absent fields stay as they are. */
export type NodeUpdate = Omit<Static<typeof NodeUpdateSchema>, 'ref'>;

/** A service as `service ls` shows it: the object plus running/desired task counts. */
export interface ServiceSummary {
  service: Service;
  running: number;
  /** Replicas; for global services the tasks desired running; for jobs see `completed`. */
  desired: number;
  /**
   * Jobs only (SwarmKit `ServiceStatus`): tasks of the current iteration that completed. `desired`
   * is then `maxConcurrent` (replicated jobs) or the tasks still to complete (global jobs).
   */
  completed?: number;
}

/** Tasks with the hostnames of the nodes they are on (for `ps` tables). */
export interface TaskList {
  tasks: Task[];
  nodes: Record<string, string>;
}

/**
 * `secret create` / `config create`: `data` is the content, base64-encoded; `templateDriver`
 * `golang` makes it a template rendered per task (see `SecretSpec.templating`).
 */
const SecretCreateSchema = Obj({ name: Str, labels: Opt(Labels), data: Str, templateDriver: Opt(Str) });
export type SecretCreate = Static<typeof SecretCreateSchema>;

/**
 * `secret ls` / `config ls` filters (Docker's): `id` (ID prefixes), `name` (name prefixes), `label`
 * (`KEY` or `KEY=VALUE`); an object matches when it matches one value of every filter given.
 */
const ListFiltersSchema = Obj({ filters: Opt(Obj({ id: Opt(T.Array(Str)), name: Opt(T.Array(Str)), label: Opt(T.Array(Str)) })) });
export type SecretFilters = NonNullable<Static<typeof ListFiltersSchema>['filters']>;

/** A secret as `secret ls` / `secret inspect` show it: everything but the data. */
export interface SecretInfo {
  id: string;
  meta: Meta;
  spec: Omit<SecretSpec, 'data'>;
}

/** `swarm info`: this node's view of the swarm. */
export interface SwarmInfo {
  /**
   * 'inactive' before init/join; 'active' after; 'locked' while an autolocked manager waits for
   * `swarm unlock`; 'error' when this manager was removed or cannot run.
   */
  localNodeState: 'inactive' | 'pending' | 'active' | 'locked' | 'error';
  nodeId: string;
  role?: 'manager' | 'worker';
  isLeader?: boolean;
  leaderId?: string;
  clusterId?: string;
  managers?: { nodeId: string; addr: string; reachable: boolean }[];
  nodes?: number;
  /** Why the node is in state 'error' (e.g. removed from the Raft group), with the way out. */
  error?: string;
}

/** A network of a stack (`stack deploy`): created when missing; `external` ones must exist. */
const StackNetworkSchema = Obj({
  name: Str, external: Bool, driver: Opt(Str), attachable: Opt(Bool), internal: Opt(Bool), labels: Opt(Labels), options: Opt(Labels), subnet: Opt(Str),
});
/** A secret or config of a stack: `data` (base64) for objects the stack creates; `external` ones must exist. */
const StackObjectSchema = Obj({ name: Str, external: Bool, data: Opt(Str), labels: Opt(Labels), templateDriver: Opt(Str) });

/**
 * `stack deploy`: every object of a stack, applied in ONE store transaction — all of it or nothing.
 * `only` (full service names) deploys just those services now and leaves the others of the stack as
 * they are (the CLI deploys `depends_on` in waves); every service is still checked. `prune` removes
 * the stack's services that are not in `services`. `dryRun` checks everything and writes nothing.
 */
const StackDeploySchema = Obj({
  stack: Str,
  networks: T.Array(StackNetworkSchema),
  secrets: Opt(T.Array(StackObjectSchema)),
  configs: Opt(T.Array(StackObjectSchema)),
  services: T.Array(ServiceSpecInputSchema),
  only: Opt(T.Array(Str)),
  prune: Opt(Bool),
  dryRun: Opt(Bool),
});
export type StackDeployInput = Static<typeof StackDeploySchema>;

/** What `stack deploy` did (full names). */
export interface StackDeployResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
  networks: string[];
  secrets: string[];
  configs: string[];
}

/** A stack as `stack ls` shows it. */
export interface StackSummary {
  name: string;
  services: number;
}

/** What `stack rm` removed, in order. */
export interface StackRemoved {
  services: string[];
  networks: string[];
  secrets: string[];
  configs: string[];
}

/**
 * The local control methods. Keys are the wire names (`POST /shoal/v1/<name>` on the socket,
 * `control.call` on the cluster port).
 */
export const METHODS = {
  'swarm.init': def<{ nodeId: string }>()('local', Obj({
    advertiseAddr: Opt(Str), listenAddr: Opt(Str), forceNewCluster: Opt(Bool), taskHistoryLimit: Opt(Num),
    autolock: Opt(Bool),
  }), 'create a swarm with this node as its first manager, or force a new cluster from this manager\'s state'),
  'swarm.join': def<{ nodeId: string; role: 'manager' | 'worker' }>()('local', Obj({
    token: Str, remoteAddr: Str, advertiseAddr: Opt(Str), listenAddr: Opt(Str),
  }), 'join a swarm with a join token'),
  'swarm.leave': def<{ message?: string }>()('local', Obj({ force: Opt(Bool) }), 'leave the swarm'),
  'swarm.info': def<SwarmInfo>()('local', Empty, 'this node\'s view of the swarm'),
  'swarm.joinToken': def<{ token: string; managerAddr: string }>()('read', Obj({ role: Role }), 'the join token for a role'),
  'swarm.rotateJoinToken': def<{ token: string; managerAddr: string }>()('write', Obj({ role: Role }), 'replace the join token of a role'),
  'swarm.update': def<Record<string, never>>()('write', Obj({
    taskHistoryLimit: Opt(Num), heartbeatPeriodMs: Opt(Num), autolock: Opt(Bool),
  }), 'change cluster settings'),
  'swarm.unlock': def<Record<string, never>>()('local', Obj({ key: Str }), 'unlock this locked manager with the swarm\'s unlock key'),
  'swarm.unlockKey': def<{ key: string }>()('read', Empty, 'the managers\' unlock key (empty when autolock is off)'),
  'swarm.rotateUnlockKey': def<{ key: string }>()('write', Empty, 'replace the managers\' unlock key; every manager re-wraps its keys with the new one'),
  'service.create': def<{ id: string }>()('write', ServiceSpecInputSchema, 'create a service'),
  'service.ls': def<ServiceSummary[]>()('read', Empty, 'list services with task counts'),
  'service.inspect': def<Service>()('read', Ref, 'one service by ID, name or unique ID prefix'),
  'service.ps': def<TaskList>()('read', Obj({ ref: Str, desiredState: Opt(Str), node: Opt(Str) }), 'the tasks of a service'),
  'service.update': def<{ id: string }>()('write', Obj({
    ref: Str, spec: Opt(T.Partial(ServiceSpecInputSchema)), version: Opt(Num), force: Opt(Bool), rollback: Opt(Bool),
  }), 'update a service (optimistic: `version` is the meta.version read)'),
  'service.scale': def<{ id: string; replicas: number }>()('write', Obj({ ref: Str, replicas: Num }), 'set the replica count'),
  'service.rm': def<{ id: string }>()('write', Ref, 'remove a service'),
  'node.ls': def<{ nodes: Node[]; selfId: string }>()('read', Empty, 'list nodes (manager status from the leader\'s Raft view)'),
  'node.inspect': def<Node>()('read', Ref, 'one node by ID, hostname or unique ID prefix'),
  'node.update': def<{ id: string }>()('write', NodeUpdateSchema, 'change availability, labels or role'),
  'node.rm': def<{ id: string }>()('write', Obj({ ref: Str, force: Opt(Bool) }), 'remove a node'),
  'node.ps': def<TaskList>()('read', Ref, 'the tasks on a node'),
  'network.create': def<{ id: string }>()('write', Obj({
    name: Str, driver: Opt(Str), subnet: Opt(Str), attachable: Opt(Bool), labels: Opt(Labels),
  }), 'create an overlay network'),
  'network.ls': def<Network[]>()('read', Empty, 'list networks'),
  'network.inspect': def<Network>()('read', Ref, 'one network'),
  'network.rm': def<{ id: string }>()('write', Ref, 'remove a network'),
  'task.inspect': def<Task>()('read', Ref, 'one task by ID or unique ID prefix'),
  'stack.deploy': def<StackDeployResult>()('write', StackDeploySchema, 'create or update a stack\'s networks, secrets, configs and services in one transaction'),
  'stack.ls': def<StackSummary[]>()('read', Empty, 'list stacks (services labelled com.docker.stack.namespace)'),
  'stack.services': def<ServiceSummary[]>()('read', Obj({ stack: Str }), 'the services of a stack'),
  'stack.ps': def<TaskList>()('read', Obj({ stack: Str, desiredState: Opt(Str) }), 'the tasks of a stack'),
  'stack.rm': def<StackRemoved>()('write', Obj({ stack: Str }), 'remove a stack\'s services, networks, secrets and configs (not volumes, not external objects)'),
  'secret.create': def<{ id: string }>()('write', SecretCreateSchema, 'create a secret'),
  'secret.ls': def<SecretInfo[]>()('read', ListFiltersSchema, 'list secrets (without their data)'),
  'secret.inspect': def<SecretInfo>()('read', Ref, 'one secret by ID, name or unique ID prefix (without its data)'),
  'secret.update': def<{ id: string }>()('write', Obj({ ref: Str, version: Opt(Num), labels: Labels }), 'replace a secret\'s labels (the data never changes)'),
  'secret.rm': def<{ id: string }>()('write', Ref, 'remove a secret no service uses'),
  'config.create': def<{ id: string }>()('write', SecretCreateSchema, 'create a config'),
  'config.ls': def<SecretInfo[]>()('read', ListFiltersSchema, 'list configs (without their data)'),
  'config.inspect': def<Config>()('read', Ref, 'one config by ID, name or unique ID prefix, with its data'),
  'config.update': def<{ id: string }>()('write', Obj({ ref: Str, version: Opt(Num), labels: Labels }), 'replace a config\'s labels (the data never changes)'),
  'config.rm': def<{ id: string }>()('write', Ref, 'remove a config no service uses'),
} as const;

export type Methods = typeof METHODS;
export type Method = keyof Methods;
export type Params<M extends Method> = Static<Methods[M]['params']>;
export type Result<M extends Method> = Methods[M]['result'];
/** A typed call of the contract (what a client offers). */
export type Call = <M extends Method>(method: M, params: Params<M>) => Promise<Result<M>>;
/** An implementation of every method (what a server offers); checked by the compiler to be complete. */
export type Handlers = { [M in Method]: (params: Params<M>) => Promise<Result<M>> | Result<M> };

export function isMethod(name: unknown): name is Method {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(METHODS, name);
}

/** `read` | `write` | `local` for a method. */
export function kindOf(m: Method): MethodKind {
  return METHODS[m].kind;
}

/** Task states a `service.ps` filter may name (re-exported for clients). */
export type DesiredStateFilter = TaskState;
