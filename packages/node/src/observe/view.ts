/**
 * What the web view shows (`shoald --ui-addr`): the whiteboard picture of a swarm — nodes as
 * columns, each node's current tasks as cards, the services with their replica counts — computed
 * from a manager's replicated objects. Pure: same objects in, same view out.
 *
 * Only what the picture needs leaves the manager: names, states, counts, addresses, the image
 * name. Never environment values, commands, labels, secrets, certificates or join tokens.
 */
import { isTerminal, taskStateRank, type Node, type Service, type Task, type TaskState } from '@shoal/api';

/** How a card is coloured (the legend of the page). */
export type TaskCategory = 'running' | 'starting' | 'pending' | 'stopping' | 'failed' | 'stopped';

export interface ViewNode {
  id: string;
  hostname: string;
  role: 'manager' | 'worker';
  leader: boolean;
  /** Manager reachability from the Raft view (managers only). */
  reachability?: string;
  availability: string;
  /** ready, down, unknown, disconnected. */
  status: string;
  /** Why it is down, if it is (e.g. "heartbeat failure"). */
  message: string;
  /** The node's address (host part). */
  addr: string;
  engine: string;
  dataplane: string;
  cpus: number;
  memoryBytes: number;
}

export interface ViewService {
  id: string;
  name: string;
  image: string;
  mode: 'replicated' | 'global';
  /** Desired replicas (replicated services); null for global ones. */
  replicas: number | null;
  /** Tasks running and wanted running. */
  running: number;
  /** Published ports as `published:target/protocol`. */
  ports: string[];
  /** Rolling update state, if one ran (`updating`, `paused`, `completed`, …). */
  update?: string;
  /** Hue of the service's stripe on its cards (see {@link huesOf}). */
  hue: number;
}

export interface ViewTask {
  id: string;
  serviceId: string;
  service: string;
  /** Replica slot; 0 for global services. */
  slot: number;
  /** `''` while unassigned (pending). */
  nodeId: string;
  state: TaskState;
  desiredState: TaskState;
  category: TaskCategory;
  /** Why it is pending or failed (status.err), else the status message. */
  message: string;
  /** ISO-8601 time of the last state change. */
  since: string;
}

export interface ClusterView {
  /** Set when this node cannot show the swarm (not a manager, not in a swarm). */
  error?: string;
  leaderId: string;
  nodes: ViewNode[];
  services: ViewService[];
  /** The tasks on the picture: each slot's current task, plus older ones still stopping. */
  tasks: ViewTask[];
}

const RUNNING = taskStateRank('running');
const PENDING = taskStateRank('pending');

/** The card colour of a task: by observed state, and for a running task by whether it is still wanted. */
export function categoryOf(t: Pick<Task, 'status' | 'desiredState'>): TaskCategory {
  const s = t.status.state;
  if (s === 'failed' || s === 'rejected' || s === 'orphaned') return 'failed';
  if (isTerminal(s)) return 'stopped';
  if (s === 'running') return taskStateRank(t.desiredState) > RUNNING ? 'stopping' : 'running';
  if (taskStateRank(s) <= PENDING) return 'pending';
  return 'starting';
}

/**
 * Hues of service stripes: blues, purples, pinks and cyans — never the green, amber or red of the
 * task states, so a stripe is never mistaken for a state.
 */
const SERVICE_HUES = [205, 262, 318, 188, 236, 290, 340, 220, 276, 198, 250, 305] as const;

/** FNV-1a of a name: where its hue search starts in {@link SERVICE_HUES}. */
function hashOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A hue per service: services in creation order each take the first free hue from the one their
 * name hashes to, so up to 12 services never share a colour, and a service keeps its colour when
 * others are added.
 */
export function huesOf(services: readonly Service[]): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  const ordered = [...services].sort((a, b) => (a.meta.createdAt < b.meta.createdAt ? -1 : a.meta.createdAt > b.meta.createdAt ? 1 : a.id < b.id ? -1 : 1));
  for (const s of ordered) {
    const n = SERVICE_HUES.length;
    const start = hashOf(s.spec.name) % n;
    let i = 0;
    while (i < n && used.has((start + i) % n)) i++;
    const slot = i < n ? (start + i) % n : start; // more services than hues: share
    used.add(slot);
    out.set(s.id, SERVICE_HUES[slot]!);
  }
  return out;
}

const byCreated = (a: Task, b: Task): number =>
  a.meta.createdAt < b.meta.createdAt ? 1 : a.meta.createdAt > b.meta.createdAt ? -1 : a.meta.version < b.meta.version ? 1 : a.meta.version > b.meta.version ? -1 : a.id < b.id ? 1 : -1;

/**
 * The tasks on the picture. Per slot (per node for global services) the newest task is shown when
 * it is wanted, still running or stopping, or when it ended and the slot is still wanted (a failed
 * task waiting for its restart delay shows red until its replacement appears); older tasks of the
 * slot are shown only while they still run (a start-first update, a drain handoff).
 */
export function currentTasks(services: readonly Service[], tasks: readonly Task[]): Task[] {
  const byId = new Map(services.map((s) => [s.id, s]));
  const slots = new Map<string, Task[]>();
  for (const t of tasks) {
    const key = t.slot > 0 ? `${t.serviceId}/${t.slot}` : `${t.serviceId}/node/${t.nodeId}`;
    const list = slots.get(key) ?? [];
    list.push(t);
    slots.set(key, list);
  }
  const out: Task[] = [];
  for (const list of slots.values()) {
    list.sort(byCreated);
    const [newest, ...older] = list as [Task, ...Task[]];
    const svc = byId.get(newest.serviceId);
    const wanted = taskStateRank(newest.desiredState) <= RUNNING;
    const live = !isTerminal(newest.status.state);
    const slotWanted = !!svc && ('replicated' in svc.spec.mode ? newest.slot <= svc.spec.mode.replicated.replicas : true);
    if (wanted || live || slotWanted) out.push(newest);
    for (const t of older) if (!isTerminal(t.status.state) && t.status.state !== 'new' && t.status.state !== 'pending') out.push(t);
  }
  return out;
}

function viewNode(n: Node, leaderId: string): ViewNode {
  const d = n.description;
  return {
    id: n.id,
    hostname: d?.hostname || n.spec.name || n.id,
    role: n.role,
    leader: !!n.managerStatus?.leader || (leaderId !== '' && n.id === leaderId),
    ...(n.managerStatus ? { reachability: n.managerStatus.reachability } : {}),
    availability: n.spec.availability,
    status: n.status.state,
    message: n.status.state === 'ready' ? '' : n.status.message,
    addr: n.status.addr.replace(/:\d+$/, ''),
    engine: d?.engine.engineVersion ?? '',
    dataplane: d?.dataplane ?? '',
    cpus: d ? d.resources.nanoCpus / 1e9 : 0,
    memoryBytes: d?.resources.memoryBytes ?? 0,
  };
}

function viewService(s: Service, running: number, hue: number): ViewService {
  const ports = (s.endpoint?.ports ?? s.spec.endpoint?.ports ?? []).map((p) => `${p.publishedPort}:${p.targetPort}/${p.protocol}`);
  return {
    id: s.id,
    name: s.spec.name,
    image: s.spec.task.container.image,
    mode: 'replicated' in s.spec.mode ? 'replicated' : 'global',
    replicas: 'replicated' in s.spec.mode ? s.spec.mode.replicated.replicas : null,
    running,
    ports,
    ...(s.updateStatus ? { update: s.updateStatus.state } : {}),
    hue,
  };
}

const nodeOrder = (a: ViewNode, b: ViewNode): number =>
  Number(b.leader) - Number(a.leader) || (a.role === b.role ? 0 : a.role === 'manager' ? -1 : 1) || a.hostname.localeCompare(b.hostname) || a.id.localeCompare(b.id);

/** The whole picture from a manager's objects. */
export function clusterView(o: { nodes: readonly Node[]; services: readonly Service[]; tasks: readonly Task[]; leaderId: string }): ClusterView {
  const names = new Map(o.services.map((s) => [s.id, s.spec.name]));
  const shown = currentTasks(o.services, o.tasks);
  const hues = huesOf(o.services);
  const running = new Map<string, number>();
  for (const t of o.tasks) {
    if (t.status.state === 'running' && taskStateRank(t.desiredState) <= RUNNING) running.set(t.serviceId, (running.get(t.serviceId) ?? 0) + 1);
  }
  const tasks: ViewTask[] = shown.map((t) => ({
    id: t.id,
    serviceId: t.serviceId,
    service: names.get(t.serviceId) ?? t.serviceName,
    slot: t.slot,
    nodeId: t.nodeId,
    state: t.status.state,
    desiredState: t.desiredState,
    category: categoryOf(t),
    message: t.status.err || t.status.message,
    since: t.status.timestamp,
  }));
  tasks.sort((a, b) => a.service.localeCompare(b.service) || a.slot - b.slot || a.id.localeCompare(b.id));
  return {
    leaderId: o.leaderId,
    nodes: o.nodes.map((n) => viewNode(n, o.leaderId)).sort(nodeOrder),
    services: o.services.map((s) => viewService(s, running.get(s.id) ?? 0, hues.get(s.id)!)).sort((a, b) => a.name.localeCompare(b.name)),
    tasks,
  };
}

/** The picture of a node that cannot show the swarm, with the reason. */
export function unavailableView(error: string): ClusterView {
  return { error, leaderId: '', nodes: [], services: [], tasks: [] };
}
