import type { Network, Node, Service, Task } from '@shoal/api';
import { humanDuration } from './duration.js';
import { servicePorts, taskPorts } from './ports.js';
import { formatTable } from './table.js';
import { renderTemplate } from './template.js';
import { ellipsis, naturalCompare, prettyEnum, stripDigest, truncId } from './text.js';

/**
 * Renderers for the list commands. Pure: they take the daemon's answer (and the current time where
 * ages are shown) and return the text to print, in Docker's layout (docker/cli v28 formatters).
 * Each table is built from row contexts whose field names are Docker's, so `--format` templates
 * written for the docker CLI (`{{.Name}}`, `table {{.ID}}\t{{.Replicas}}`) work the same way.
 */

// ---- nodes -----------------------------------------------------------------------------------

/** One `node ls` row (docker/cli `node/formatter.go` fields). */
export interface NodeRow {
  ID: string;
  Self: boolean;
  Hostname: string;
  Status: string;
  Availability: string;
  ManagerStatus: string;
  EngineVersion: string;
}

const NODE_HEADERS: Record<string, string> = {
  ID: 'ID', Self: '', Hostname: 'HOSTNAME', Status: 'STATUS', Availability: 'AVAILABILITY', ManagerStatus: 'MANAGER STATUS', EngineVersion: 'ENGINE VERSION',
};

export function hostnameOf(n: Node): string {
  return n.description?.hostname ?? n.spec.name ?? '';
}

/** MANAGER STATUS: `Leader`, else the capitalized reachability; empty for workers. */
export function managerStatus(n: Node): string {
  if (!n.managerStatus) return '';
  if (n.managerStatus.leader) return 'Leader';
  return prettyEnum(n.managerStatus.reachability);
}

/** Node rows sorted by hostname, natural order. */
export function nodeRows(nodes: readonly Node[], selfId: string): NodeRow[] {
  return [...nodes].sort((a, b) => naturalCompare(hostnameOf(a), hostnameOf(b))).map((n) => ({
    ID: n.id,
    Self: n.id === selfId,
    Hostname: hostnameOf(n),
    Status: prettyEnum(n.status.state),
    Availability: prettyEnum(n.spec.availability),
    ManagerStatus: managerStatus(n),
    EngineVersion: n.description?.engine.engineVersion ?? '',
  }));
}

/** `node ls`: ID (full, ` *` for the local node), HOSTNAME, STATUS, AVAILABILITY, MANAGER STATUS, ENGINE VERSION. */
export function nodeTable(nodes: readonly Node[], selfId: string, format?: string): string {
  const rows = nodeRows(nodes, selfId);
  if (format) return formatRows(rows, format, NODE_HEADERS);
  return formatTable([
    ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ENGINE VERSION'],
    ...rows.map((r) => [`${r.ID} ${r.Self ? '*' : ' '}`, r.Hostname, r.Status, r.Availability, r.ManagerStatus, r.EngineVersion]),
  ]);
}

/** `node ls -q`: node IDs, same order as the table. */
export function nodeIds(nodes: readonly Node[]): string {
  return nodeRows(nodes, '').map((r) => `${r.ID}\n`).join('');
}

// ---- services --------------------------------------------------------------------------------

/** One row of `service.ls`'s answer. */
export interface ServiceSummary {
  service: Service;
  running: number;
  desired: number;
}

/** One `service ls` row (docker/cli `service/formatter.go` fields). */
export interface ServiceRow {
  ID: string;
  Name: string;
  Mode: string;
  Replicas: string;
  Image: string;
  Ports: string;
}

const SERVICE_HEADERS: Record<string, string> = { ID: 'ID', Name: 'NAME', Mode: 'MODE', Replicas: 'REPLICAS', Image: 'IMAGE', Ports: 'PORTS' };

/** Service rows sorted by name, natural order. */
export function serviceRows(items: readonly ServiceSummary[]): ServiceRow[] {
  return [...items].sort((a, b) => naturalCompare(a.service.spec.name, b.service.spec.name)).map(({ service: s, running, desired }) => {
    const global = 'global' in s.spec.mode;
    const max = s.spec.task.placement.maxReplicas;
    return {
      ID: truncId(s.id),
      Name: s.spec.name,
      Mode: global ? 'global' : 'replicated',
      Replicas: `${running}/${desired}` + (!global && max > 0 ? ` (max ${max} per node)` : ''),
      Image: stripDigest(s.spec.task.container.image),
      Ports: servicePorts(s.endpoint?.ports ?? s.spec.endpoint?.ports),
    };
  });
}

/** `service ls`: ID, NAME, MODE, REPLICAS, IMAGE, PORTS; sorted by name, natural order. */
export function serviceTable(items: readonly ServiceSummary[], format?: string): string {
  const rows = serviceRows(items);
  if (format) return formatRows(rows, format, SERVICE_HEADERS);
  return formatTable([['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS'], ...rows.map((r) => [r.ID, r.Name, r.Mode, r.Replicas, r.Image, r.Ports])]);
}

/** `service ls -q`: service IDs (12 characters, like Docker), same order as the table. */
export function serviceIds(items: readonly ServiceSummary[]): string {
  return serviceRows(items).map((r) => `${r.ID}\n`).join('');
}

// ---- tasks -----------------------------------------------------------------------------------

export interface TaskTableOptions {
  /** Truncate IDs to 12 characters and errors to 30 (default true; `--no-trunc` turns it off). */
  trunc?: boolean;
  /** "Now" for the CURRENT STATE ages, ms since the epoch. */
  now: number;
  /** A `--format` template (Docker's task fields); default: the table. */
  format?: string;
}

/** One `service ps` row (docker/cli `task/formatter.go` fields). */
export interface TaskRow {
  ID: string;
  Name: string;
  Image: string;
  Node: string;
  DesiredState: string;
  CurrentState: string;
  Error: string;
  Ports: string;
}

const TASK_HEADERS: Record<string, string> = {
  ID: 'ID', Name: 'NAME', Image: 'IMAGE', Node: 'NODE', DesiredState: 'DESIRED STATE', CurrentState: 'CURRENT STATE', Error: 'ERROR', Ports: 'PORTS',
};

/**
 * Task name as Docker shows it: `<service>.<slot>` for replicated services, `<service>.<nodeID>`
 * for global ones (slot 0).
 */
export function taskName(t: Task): string {
  return t.slot !== 0 ? `${t.serviceName}.${t.slot}` : `${t.serviceName}.${t.nodeId}`;
}

/**
 * Sorts tasks the way `service ps` lists them: by name in natural order, then newest first
 * (by `meta.createdAt`). Stable.
 */
export function sortTasks(tasks: readonly Task[]): Task[] {
  return tasks
    .map((t, i) => ({ t, i, name: taskName(t) }))
    .sort((a, b) => naturalCompare(a.name, b.name) || cmpDesc(a.t.meta.createdAt, b.t.meta.createdAt) || a.i - b.i)
    .map((x) => x.t);
}

function cmpDesc(a: string, b: string): number {
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (Number.isNaN(ta) || Number.isNaN(tb) || ta === tb) return 0;
  return tb - ta;
}

/** CURRENT STATE: `Running 5 seconds ago` (capitalized state, lower-case human duration). */
export function currentState(t: Task, now: number): string {
  const ts = Date.parse(t.status.timestamp);
  const age = Number.isNaN(ts) ? 0 : now - ts;
  return `${prettyEnum(t.status.state)} ${humanDuration(age).toLowerCase()} ago`;
}

/**
 * Task rows in `service ps` order; older tasks of a slot follow the newest one, their name
 * indented as ` \_ web.1` (only in tables, as Docker does).
 * @param nodes node ID → hostname (the daemon's `nodes` map); unknown IDs are shown as is.
 */
export function taskRows(tasks: readonly Task[], nodes: Readonly<Record<string, string>>, opts: TaskTableOptions): TaskRow[] {
  const trunc = opts.trunc ?? true;
  const indent = !opts.format || opts.format.startsWith('table');
  let prev = '';
  return sortTasks(tasks).map((t) => {
    const name = taskName(t);
    const row: TaskRow = {
      ID: trunc ? truncId(t.id) : t.id,
      Name: indent && name === prev ? ` \\_ ${name}` : name,
      Image: trunc ? stripDigest(t.spec.container.image) : t.spec.container.image,
      Node: t.nodeId ? (nodes[t.nodeId] ?? t.nodeId) : '',
      DesiredState: prettyEnum(t.desiredState),
      CurrentState: currentState(t, opts.now),
      Error: t.status.err ? `"${trunc ? ellipsis(t.status.err, 30) : t.status.err}"` : '',
      Ports: taskPorts(t.status.ports),
    };
    prev = name;
    return row;
  });
}

/** `service ps` / `node ps`: ID, NAME, IMAGE, NODE, DESIRED STATE, CURRENT STATE, ERROR, PORTS. */
export function taskTable(tasks: readonly Task[], nodes: Readonly<Record<string, string>>, opts: TaskTableOptions): string {
  const rows = taskRows(tasks, nodes, opts);
  if (opts.format) return formatRows(rows, opts.format, TASK_HEADERS);
  return formatTable([
    ['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS'],
    ...rows.map((r) => [r.ID, r.Name, r.Image, r.Node, r.DesiredState, r.CurrentState, r.Error, r.Ports]),
  ]);
}

/** `service ps -q`: task IDs (full with `--no-trunc`), same order as the table. */
export function taskIds(tasks: readonly Task[], trunc = true): string {
  return sortTasks(tasks).map((t) => `${trunc ? truncId(t.id) : t.id}\n`).join('');
}

// ---- networks --------------------------------------------------------------------------------

/** One `network ls` row. */
export interface NetworkRow {
  ID: string;
  Name: string;
  Driver: string;
  Scope: string;
}

const NETWORK_HEADERS: Record<string, string> = { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE' };

export function networkRows(networks: readonly Network[], trunc = true): NetworkRow[] {
  return [...networks].sort((a, b) => naturalCompare(a.spec.name, b.spec.name))
    .map((n) => ({ ID: trunc ? truncId(n.id) : n.id, Name: n.spec.name, Driver: n.spec.driver, Scope: 'swarm' }));
}

/** `network ls`: NETWORK ID, NAME, DRIVER, SCOPE (always `swarm`); sorted by name. */
export function networkTable(networks: readonly Network[], trunc = true, format?: string): string {
  const rows = networkRows(networks, trunc);
  if (format) return formatRows(rows, format, NETWORK_HEADERS);
  return formatTable([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], ...rows.map((r) => [r.ID, r.Name, r.Driver, r.Scope])]);
}

/** `network ls -q`. */
export function networkIds(networks: readonly Network[], trunc = true): string {
  return networkRows(networks, trunc).map((r) => `${r.ID}\n`).join('');
}

// ---- --format --------------------------------------------------------------------------------

/**
 * Renders rows with a `--format` template (see {@link renderTemplate}). A template starting with
 * `table` prints a header row (each `{{.Field}}` replaced by its column header) and aligns the
 * tab-separated cells like the default tables; `table` alone is the default table's fields.
 */
export function formatRows<R extends object>(rows: readonly R[], format: string, headers: Readonly<Record<string, string>>): string {
  if (!format.startsWith('table')) return rows.map((r) => `${renderTemplate(format, r)}\n`).join('');
  let body = format.slice('table'.length).trim();
  if (body === '') body = Object.keys(headers).filter((k) => headers[k]).map((k) => `{{.${k}}}`).join('\t');
  const header = renderTemplate(body, Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v || k.toUpperCase()])), { header: true });
  const lines = [header, ...rows.map((r) => renderTemplate(body, r))];
  return formatTable(lines.map((l) => l.split('\t')));
}
