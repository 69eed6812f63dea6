import type { Network, Node, Service, Task } from '@shoal/api';
import { humanDuration } from './duration.js';
import { servicePorts, taskPorts } from './ports.js';
import { formatTable } from './table.js';
import { ellipsis, naturalCompare, prettyEnum, stripDigest, truncId } from './text.js';

/**
 * Renderers for the list commands. Pure: they take the daemon's answer (and the current time where
 * ages are shown) and return the text to print, in Docker's layout (docker/cli v28 formatters).
 */

/** `node ls`: ID (full, ` *` for the local node), HOSTNAME, STATUS, AVAILABILITY, MANAGER STATUS, ENGINE VERSION; sorted by hostname, natural order. */
export function nodeTable(nodes: readonly Node[], selfId: string): string {
  const sorted = [...nodes].sort((a, b) => naturalCompare(hostnameOf(a), hostnameOf(b)));
  const rows: string[][] = [['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ENGINE VERSION']];
  for (const n of sorted) {
    rows.push([
      `${n.id} ${n.id === selfId ? '*' : ' '}`,
      hostnameOf(n),
      prettyEnum(n.status.state),
      prettyEnum(n.spec.availability),
      managerStatus(n),
      n.description?.engine.engineVersion ?? '',
    ]);
  }
  return formatTable(rows);
}

/** `node ls -q`: node IDs, same order as the table. */
export function nodeIds(nodes: readonly Node[]): string {
  return [...nodes].sort((a, b) => naturalCompare(hostnameOf(a), hostnameOf(b))).map((n) => `${n.id}\n`).join('');
}

export function hostnameOf(n: Node): string {
  return n.description?.hostname ?? n.spec.name ?? '';
}

/** MANAGER STATUS: `Leader`, else the capitalized reachability; empty for workers. */
export function managerStatus(n: Node): string {
  if (!n.managerStatus) return '';
  if (n.managerStatus.leader) return 'Leader';
  return prettyEnum(n.managerStatus.reachability);
}

/** One row of `service.ls`'s answer. */
export interface ServiceSummary {
  service: Service;
  running: number;
  desired: number;
}

/** `service ls`: ID, NAME, MODE, REPLICAS, IMAGE, PORTS; sorted by name, natural order. */
export function serviceTable(items: readonly ServiceSummary[]): string {
  const rows: string[][] = [['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS']];
  for (const { service: s, running, desired } of sortServices(items)) {
    const global = 'global' in s.spec.mode;
    const max = s.spec.task.placement.maxReplicas;
    rows.push([
      truncId(s.id),
      s.spec.name,
      global ? 'global' : 'replicated',
      `${running}/${desired}` + (!global && max > 0 ? ` (max ${max} per node)` : ''),
      stripDigest(s.spec.task.container.image),
      servicePorts(s.endpoint?.ports ?? s.spec.endpoint?.ports),
    ]);
  }
  return formatTable(rows);
}

/** `service ls -q`: service IDs (12 characters, like Docker), same order as the table. */
export function serviceIds(items: readonly ServiceSummary[]): string {
  return sortServices(items).map((i) => `${truncId(i.service.id)}\n`).join('');
}

function sortServices(items: readonly ServiceSummary[]): ServiceSummary[] {
  return [...items].sort((a, b) => naturalCompare(a.service.spec.name, b.service.spec.name));
}

export interface TaskTableOptions {
  /** Truncate IDs to 12 characters and errors to 30 (default true; `--no-trunc` turns it off). */
  trunc?: boolean;
  /** "Now" for the CURRENT STATE ages, ms since the epoch. */
  now: number;
}

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
 * `service ps` / `node ps`: ID, NAME, IMAGE, NODE, DESIRED STATE, CURRENT STATE, ERROR, PORTS.
 * Older tasks of a slot follow the newest one with their name indented as ` \_ web.1`.
 * @param nodes node ID → hostname (the daemon's `nodes` map); unknown IDs are shown as is.
 */
export function taskTable(tasks: readonly Task[], nodes: Readonly<Record<string, string>>, opts: TaskTableOptions): string {
  const trunc = opts.trunc ?? true;
  const rows: string[][] = [['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS']];
  let prev = '';
  for (const t of sortTasks(tasks)) {
    const name = taskName(t);
    const err = t.status.err ? `"${trunc ? ellipsis(t.status.err, 30) : t.status.err}"` : '';
    rows.push([
      trunc ? truncId(t.id) : t.id,
      name === prev ? ` \\_ ${name}` : name,
      trunc ? stripDigest(t.spec.container.image) : t.spec.container.image,
      t.nodeId ? (nodes[t.nodeId] ?? t.nodeId) : '',
      prettyEnum(t.desiredState),
      currentState(t, opts.now),
      err,
      taskPorts(t.status.ports),
    ]);
    prev = name;
  }
  return formatTable(rows);
}

/** `service ps -q`: task IDs (full with `--no-trunc`), same order as the table. */
export function taskIds(tasks: readonly Task[], trunc = true): string {
  return sortTasks(tasks).map((t) => `${trunc ? truncId(t.id) : t.id}\n`).join('');
}

/** `network ls`: NETWORK ID, NAME, DRIVER, SCOPE (always `swarm`); sorted by name. */
export function networkTable(networks: readonly Network[], trunc = true): string {
  const rows: string[][] = [['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE']];
  for (const n of sortNetworks(networks)) rows.push([trunc ? truncId(n.id) : n.id, n.spec.name, n.spec.driver, 'swarm']);
  return formatTable(rows);
}

/** `network ls -q`. */
export function networkIds(networks: readonly Network[], trunc = true): string {
  return sortNetworks(networks).map((n) => `${trunc ? truncId(n.id) : n.id}\n`).join('');
}

function sortNetworks(networks: readonly Network[]): Network[] {
  return [...networks].sort((a, b) => naturalCompare(a.spec.name, b.spec.name));
}
