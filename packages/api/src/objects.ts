/**
 * Shoal's object model: the records every manager replicates through Raft and every agent reads.
 *
 * Shapes follow SwarmKit's `api/objects.proto` and `api/specs.proto` (renamed to camelCase), so the
 * Docker Engine API façade can map them one to one. Durations are milliseconds (suffix `Ms`) unless a
 * field name says otherwise; sizes are bytes. Times are ISO-8601 strings.
 */

/** Optimistic-concurrency stamp: `version` is the Raft log index of the object's last write. */
export interface Meta {
  version: number;
  createdAt: string;
  updatedAt: string;
}

export type NodeRole = 'manager' | 'worker';
export type NodeAvailability = 'active' | 'pause' | 'drain';
/** Node liveness as seen by the dispatcher (Docker: Ready/Down/Unknown/Disconnected). */
export type NodeState = 'unknown' | 'down' | 'ready' | 'disconnected';
export type Reachability = 'unknown' | 'unreachable' | 'reachable';

export interface NodeSpec {
  name?: string;
  labels: Record<string, string>;
  /** Role the managers should reconcile this node to (promote/demote). */
  desiredRole: NodeRole;
  availability: NodeAvailability;
}

export interface NodeDescription {
  hostname: string;
  platform: { os: string; architecture: string };
  resources: { nanoCpus: number; memoryBytes: number; generic?: GenericResource[] };
  engine: { engineVersion: string; labels: Record<string, string> };
  /** Load-balancer dataplane the node's agent chose (`nftables`, `ipvs`, `userspace`). */
  dataplane?: string;
}

export interface Node {
  id: string;
  meta: Meta;
  spec: NodeSpec;
  /** Current role (what the node's certificate says). */
  role: NodeRole;
  description?: NodeDescription;
  status: { state: NodeState; message: string; addr: string };
  /**
   * This node's share of the routed overlay (docs/NETWORKING.md), set by the allocator when the
   * node first appears: a /24 of the cluster overlay CIDR (`DEFAULTS.overlay.clusterCidr`) for the
   * node's task bridge, and the MAC of its VXLAN endpoint (`02:00:` + the subnet's 4 bytes).
   * The underlay address is the host part of `status.addr`.
   */
  overlay?: { subnet: string; vtepMac: string };
  managerStatus?: { leader: boolean; reachability: Reachability; addr: string; raftId: string };
}

export type RestartCondition = 'none' | 'on-failure' | 'any';

export interface ContainerSpec {
  image: string;
  command?: string[];
  args?: string[];
  env?: string[];
  labels?: Record<string, string>;
  hostname?: string;
  dir?: string;
  user?: string;
  /** ms to wait after the stop signal before SIGKILL. Docker default 10 s. */
  stopGracePeriodMs?: number;
  stopSignal?: string;
  /** Health check; absent = the image's own (if any). See {@link HealthConfig}. */
  healthcheck?: HealthConfig;
  // ---- runtime options (`service create` flags; SwarmKit ContainerSpec) ----
  /** Filesystem mounts (`--mount`), in the order given. See {@link Mount}. */
  mounts?: Mount[];
  /** Supplementary groups (`--group`), names or GIDs. */
  groups?: string[];
  /** Run an init as PID 1 that forwards signals and reaps zombies (`--init`); absent = the engine's default. */
  init?: boolean;
  /** Allocate a pseudo-TTY (`-t/--tty`). */
  tty?: boolean;
  /** Mount the root filesystem read-only (`--read-only`). */
  readOnly?: boolean;
  /** Capabilities added (`--cap-add`), normalized `CAP_NET_ADMIN`, or `ALL`. */
  capabilityAdd?: string[];
  /** Capabilities dropped (`--cap-drop`), normalized like {@link capabilityAdd}. */
  capabilityDrop?: string[];
  /** Namespaced kernel parameters (`--sysctl net.ipv4.ip_forward=1`). */
  sysctls?: Record<string, string>;
  /** Resource limits of the process (`--ulimit nofile=1024:2048`), sorted by name. */
  ulimits?: Ulimit[];
  /**
   * Resolver settings (`--dns`, `--dns-search`, `--dns-option`). The node's service-discovery
   * resolver always comes first in the container's nameservers; these follow it.
   */
  dnsConfig?: DnsConfig;
  /** Extra `/etc/hosts` lines, SwarmKit's form `IP_address hostname [aliases...]` (`--host name:ip`). */
  hosts?: string[];
  /**
   * Secrets given to the container (`--secret`): each appears as a file at `file.name` — a path
   * under `/run/secrets/` when relative (Docker's rule), else as given — kept in memory on the node
   * (docs/SECURITY.md). Resolved by the control API; IDs and names of existing secrets.
   */
  secrets?: SecretReference[];
  /** Configs given to the container (`--config`): files at `file.name` (absolute; default `/<config name>`). */
  configs?: ConfigReference[];
}

/**
 * Where a secret or config appears in a task's container (SwarmKit `FileTarget`): the path, its
 * owner (numeric uid and gid as strings, Docker's default `"0"`), and its permission bits
 * (Docker's default 0444).
 */
export interface FileTarget {
  name: string;
  uid: string;
  gid: string;
  mode: number;
}

/** A task's use of a secret (SwarmKit `SecretReference`). */
export interface SecretReference {
  secretId: string;
  secretName: string;
  file: FileTarget;
}

/** A task's use of a config (SwarmKit `ConfigReference`). */
export interface ConfigReference {
  configId: string;
  configName: string;
  file: FileTarget;
}

/** Mount types Shoal runs (Docker's `--mount type=`); `npipe` is Windows-only, `cluster` (CSI) is not supported. */
export type MountType = 'volume' | 'bind' | 'tmpfs';

/**
 * One filesystem mount of a task's container (SwarmKit `api.Mount`, Docker `mount.Mount`).
 * - `volume`: a named volume (`source` = its name) or, without source, an anonymous one. Named
 *   volumes live on the node that runs the task: the node's engine creates them on first use
 *   (driver `local` unless `volumeOptions.driverConfig` says otherwise) and they outlive the task,
 *   its replacements and `shoald` restarts; Shoal never removes them. Anonymous volumes are
 *   removed with their container.
 * - `bind`: a path of the node (`source`, absolute) that must already exist there.
 * - `tmpfs`: memory-backed, no source; size and mode in `tmpfsOptions`.
 * `source` and `target` may use the task templates (`{{.Task.Slot}}`, `{{.Node.Hostname}}`, …).
 */
export interface Mount {
  type: MountType;
  /** Volume name, bind path on the node; empty for tmpfs and anonymous volumes. */
  source?: string;
  /** Absolute path in the container. */
  target: string;
  readOnly?: boolean;
  /** `default`, `consistent`, `cached` or `delegated` (no effect on Linux). */
  consistency?: string;
  /** Bind mounts only. `propagation`: private, rprivate (default), shared, rshared, slave, rslave. */
  bindOptions?: { propagation?: string; nonRecursive?: boolean; createMountpoint?: boolean };
  /** Volume mounts only: `noCopy` skips copying the image's files into a new volume; labels and driver apply when the volume is created. */
  volumeOptions?: { noCopy?: boolean; labels?: Record<string, string>; driverConfig?: { name: string; options?: Record<string, string> }; subpath?: string };
  /** Tmpfs mounts only: `sizeBytes` (0 = unlimited), `mode` (file mode bits, e.g. 0o1777 = 1023). */
  tmpfsOptions?: { sizeBytes?: number; mode?: number };
}

/** A process resource limit (`setrlimit`), Docker's `Ulimit`; `hard` -1 = unlimited. */
export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/** Resolver settings of a container (SwarmKit `ContainerSpec.DNSConfig`). */
export interface DnsConfig {
  /** IP addresses of name servers, after the node's own resolver. */
  nameservers?: string[];
  search?: string[];
  /** resolv.conf options, e.g. `ndots:2`. */
  options?: string[];
}

/**
 * A discrete generic resource (`--generic-resource gpu=2`): reserved by a task like CPU or memory;
 * nodes advertise theirs through the engine (`node-generic-resources` in daemon.json).
 */
export interface GenericResource {
  kind: string;
  value: number;
}

/** A placement preference (`--placement-pref spread=node.labels.zone`): spread tasks evenly over the label's values. */
export interface PlacementPreference {
  /** `node.labels.<name>` or `engine.labels.<name>`. */
  spread: string;
}

/** The log driver of a task's container (`--log-driver`, `--log-opt`); absent = the engine's default. */
export interface LogDriver {
  name: string;
  options: Record<string, string>;
}

/**
 * A container health check (Docker `HealthConfig`; `service create --health-*`). A task with a
 * health check is STARTING until the engine reports it healthy, then RUNNING (only then a load
 * balancer backend); unhealthy while starting or running makes it FAILED ("task: unhealthy
 * container"), so its restart policy replaces it. Durations in ms; 0 or absent = Docker's default
 * (interval 30 s, timeout 30 s, start period 0, retries 3).
 */
export interface HealthConfig {
  /**
   * `[]`: inherit the image's check; `['NONE']`: disable it; `['CMD', prog, ...args]`: exec;
   * `['CMD-SHELL', 'shell command']`: run with the container's shell.
   */
  test: string[];
  intervalMs?: number;
  timeoutMs?: number;
  startPeriodMs?: number;
  retries?: number;
}

export interface RestartPolicy {
  condition: RestartCondition;
  /** Delay before a replacement task starts. Default 5000 ms (Docker's). */
  delayMs: number;
  /** 0 = unlimited. */
  maxAttempts: number;
  /** Window in which restarts are counted; 0 = unbounded. */
  windowMs: number;
}

export interface Placement {
  /** `key==value` / `key!=value` expressions, all ANDed (SwarmKit constraint language). */
  constraints: string[];
  /** Maximum tasks of this service per node; 0 = unlimited. */
  maxReplicas: number;
  /** Spread preferences, applied in order (a tree: each level splits by one label's values). */
  preferences?: PlacementPreference[];
}

export interface TaskSpec {
  container: ContainerSpec;
  restart: RestartPolicy;
  placement: Placement;
  /** Networks (IDs) to attach; the allocator fills in addresses. */
  networks: { target: string; aliases?: string[] }[];
  resources?: {
    reservations?: { nanoCpus?: number; memoryBytes?: number; genericResources?: GenericResource[] };
    /** Enforced by the engine (cgroups); the scheduler ignores them. `pids` 0 = unlimited. */
    limits?: { nanoCpus?: number; memoryBytes?: number; pids?: number };
  };
  /** The container's log driver (`--log-driver`); absent = the engine's default. */
  logDriver?: LogDriver;
  /** Bumped by `service update --force` to redeploy all tasks. */
  forceUpdate: number;
}

/**
 * How many tasks a service runs. Services run until removed; jobs (`replicatedJob`, `globalJob`)
 * run their tasks to completion: `totalCompletions` successful tasks, at most `maxConcurrent` at
 * once, or one successful task per eligible node (also on nodes that join later).
 */
export type ServiceMode =
  | { replicated: { replicas: number } }
  | { global: Record<string, never> }
  | { replicatedJob: { maxConcurrent: number; totalCompletions: number } }
  | { globalJob: Record<string, never> };

export interface PortConfig {
  name?: string;
  protocol: 'tcp' | 'udp';
  targetPort: number;
  /** 0 = let the allocator choose from 30000–32767 (ingress mode). */
  publishedPort: number;
  publishMode: 'ingress' | 'host';
}

export interface EndpointSpec {
  mode: 'vip' | 'dnsrr';
  ports: PortConfig[];
}

export interface UpdateConfig {
  parallelism: number;
  delayMs: number;
  failureAction: 'pause' | 'continue' | 'rollback';
  monitorMs: number;
  maxFailureRatio: number;
  order: 'stop-first' | 'start-first';
}

export interface ServiceSpec {
  name: string;
  labels: Record<string, string>;
  task: TaskSpec;
  mode: ServiceMode;
  update?: UpdateConfig;
  rollback?: UpdateConfig;
  endpoint?: EndpointSpec;
}

export interface Service {
  id: string;
  meta: Meta;
  spec: ServiceSpec;
  /** Incremented on every spec change; tasks remember the spec version they were made from. */
  specVersion: number;
  previousSpec?: ServiceSpec;
  /** Allocated endpoint: ports with their published port chosen, and a VIP per network. */
  endpoint?: { ports: PortConfig[]; virtualIps: { networkId: string; addr: string }[] };
  updateStatus?: { state: 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed'; startedAt?: string; completedAt?: string; message: string };
  /**
   * Jobs only: the current run (SwarmKit `JobStatus`). `jobIteration` starts at 0 and goes up by one
   * on every `service update` (a re-run); only tasks of the current iteration count.
   */
  jobStatus?: { jobIteration: number; lastExecution: string };
}

/**
 * Task states in lifecycle order (SwarmKit `api/types.proto` TaskState). States only move forward;
 * compare with {@link taskStateRank}. NEW→PENDING→ASSIGNED are set by managers (allocator,
 * scheduler), the rest by the agent.
 */
export const TASK_STATES = [
  'new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running',
  'complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

const RANK: Record<TaskState, number> = {
  new: 0, pending: 64, assigned: 192, accepted: 256, preparing: 320, ready: 384, starting: 448,
  running: 512, complete: 576, shutdown: 640, failed: 704, rejected: 768, remove: 800, orphaned: 832,
};

/** Numeric order of a task state (SwarmKit's enum values). */
export function taskStateRank(s: TaskState): number {
  return RANK[s];
}

/** True once a task can no longer run: COMPLETE, SHUTDOWN, FAILED, REJECTED, REMOVE or ORPHANED. */
export function isTerminal(s: TaskState): boolean {
  return RANK[s] > RANK.running;
}

export interface TaskStatus {
  state: TaskState;
  timestamp: string;
  message: string;
  /** Error text shown in the ERROR column of `service ps`. */
  err?: string;
  containerId?: string;
  exitCode?: number;
  /** Ports bound on the node for host-mode publishing. */
  ports?: PortConfig[];
  /**
   * The container's data-path addresses (CIDR, e.g. `10.97.2.5/24`) on its node's overlay bridge,
   * as reported by the agent once the container runs. In the routed overlay a task has one address
   * that serves every swarm network it is attached to (docs/NETWORKING.md).
   */
  networkAddrs?: string[];
}

export interface NetworkAttachment {
  networkId: string;
  /** CIDR addresses, e.g. `10.0.1.5/24`. */
  addresses: string[];
}

export interface Task {
  id: string;
  meta: Meta;
  serviceId: string;
  /** Service name at task creation, for naming containers `<service>.<slot>.<taskid>`. */
  serviceName: string;
  /** Replica slot (1..N) for replicated services; 0 for global services (which use nodeId). */
  slot: number;
  /** Set only by the scheduler (or the global orchestrator). Empty until assigned. */
  nodeId: string;
  spec: TaskSpec;
  /** The `Service.specVersion` this task was built from (rolling updates compare it). */
  specVersion: number;
  desiredState: TaskState;
  status: TaskStatus;
  networks: NetworkAttachment[];
  endpoint?: { ports: PortConfig[]; virtualIps: { networkId: string; addr: string }[] };
  /**
   * Graceful hand-over of this task's slot (drain of a start-first service; docs/ARCHITECTURE.md).
   * Set by the replicated orchestrator, in the same transaction that gives this task desired
   * SHUTDOWN and creates task `to` (the replacement) in its slot: this task keeps its container
   * running and keeps serving until `to` is RUNNING, `to` has ended, stopped being wanted or been
   * deleted, or the time `until` (ISO-8601) has passed — whichever comes first.
   * Read by the dispatcher, through {@link handoffPending}: while it holds, the node is sent this
   * task with desired state RUNNING (the store keeps SHUTDOWN, so the desired-running count never
   * exceeds the replicas) and the network view keeps it an `active` backend. Never changed after.
   */
  handoff?: { to: string; until: string };
  /** Jobs only: the `Service.jobStatus.jobIteration` this task was made for. */
  jobIteration?: number;
}

export interface NetworkSpec {
  name: string;
  labels: Record<string, string>;
  driver: string;
  attachable: boolean;
  ingress: boolean;
  /** CIDR; empty = allocator picks one from the default pool. */
  subnet?: string;
}

export interface Network {
  id: string;
  meta: Meta;
  spec: NetworkSpec;
  /** Allocated IPAM: subnet and gateway. */
  ipam?: { subnet: string; gateway: string };
  /** VXLAN network identifier. */
  vni?: number;
}

export interface ClusterSpec {
  name: string;
  /** Old tasks kept per slot besides the current one (Docker default 5). */
  taskHistoryRetentionLimit: number;
  dispatcher: { heartbeatPeriodMs: number };
  caConfig: { nodeCertExpiryMs: number };
  /**
   * Encryption at rest (Docker `EncryptionConfig`): with `autoLockManagers` every manager's keys are
   * wrapped by the unlock key ({@link Cluster.unlockKey}), and a restarted manager stays locked
   * until it is given that key (`swarm unlock`). Absent = off. See docs/SECURITY.md.
   */
  encryption?: { autoLockManagers: boolean };
}

export interface Cluster {
  id: string;
  meta: Meta;
  spec: ClusterSpec;
  /** PEM of the root CA certificate(s). */
  rootCaCert?: string;
  /** PEM private key of the root CA (replicated to managers only). */
  rootCaKey?: string;
  joinTokens?: { worker: string; manager: string };
  /** Node IDs whose certificates are revoked (`node rm`). */
  removedNodes?: string[];
  /**
   * The managers' unlock key (`SWMKEY-1-…`) while `spec.encryption.autoLockManagers` is on; absent
   * otherwise. Replicated to managers only (encrypted at rest in their Raft logs), shown only by
   * `swarm unlock-key`. Managers re-wrap their keys with it when it changes (docs/SECURITY.md).
   */
  unlockKey?: string;
}

/**
 * What `secret create` / `config create` store (SwarmKit `SecretSpec` / `ConfigSpec`). The data is
 * immutable: only the labels of an existing secret or config may change.
 */
export interface SecretSpec {
  name: string;
  labels: Record<string, string>;
  /** The content, base64-encoded (binary-safe). Never returned by `inspect`/`ls` of a secret. */
  data: string;
  /**
   * `{ name: 'golang' }`: the data is a Go template, rendered per task on its node
   * (`{{ .Service.Name }}`, `{{ .Task.Slot }}`, `{{ .Node.Hostname }}`, `{{ env "X" }}`,
   * `{{ secret "target" }}`, …; `--template-driver golang`). Absent: the data is used as it is.
   */
  templating?: { name: string };
}

/** Sensitive data for tasks (`secret create`): encrypted at rest, sent only to nodes that run a task using it. */
export interface Secret {
  id: string;
  meta: Meta;
  spec: SecretSpec;
}

/** The label Docker puts on every object of a stack (`docker stack deploy`): the stack's name. */
export const STACK_LABEL = 'com.docker.stack.namespace';

/**
 * On a stack's secret or config whose content a redeploy changed: the ID of the object that took
 * its name (the old one is renamed `<name>.<first 12 of its ID>`). Such an object is deleted by the
 * leader once no service spec and no unfinished task uses it (orchestrator `SupersededReaper`).
 */
export const SUPERSEDED_LABEL = 'com.shoal.stack.superseded-by';

/** Configuration files for tasks (`config create`): like secrets, but shown by `config inspect`. */
export interface Config {
  id: string;
  meta: Meta;
  spec: SecretSpec;
}

/** Every replicated table and its object type. */
export interface Tables {
  nodes: Node;
  services: Service;
  tasks: Task;
  networks: Network;
  clusters: Cluster;
  secrets: Secret;
  configs: Config;
}
export type TableName = keyof Tables;
export const TABLE_NAMES: readonly TableName[] = ['nodes', 'services', 'tasks', 'networks', 'clusters', 'secrets', 'configs'];
export type AnyObject = Tables[TableName];
