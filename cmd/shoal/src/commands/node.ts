import type { Node, Task } from '@shoal/api';
import { UsageError } from '../errors.js';
import { prettyNode } from '../format/pretty.js';
import { nodeIds, nodeTable } from '../format/tables.js';
import { inspectJson } from '../format/text.js';
import { renderTemplate } from '../format/template.js';
import { parseKeyValue } from '../parse/values.js';
import { type Args, type Call, bool, connect, forEach, list, out, str } from './common.js';
import { filterTasks, parseTaskFilters, printTasks } from './tasks.js';

/** Resolves `self` to the local node's ID; other references pass through. */
async function resolveRef(call: Call, ref: string, self: { id?: string }): Promise<string> {
  if (ref !== 'self') return ref;
  if (self.id === undefined) self.id = (await call('node.ls', {})).selfId;
  return self.id;
}

/** `node ls [-q]`. */
export async function ls(a: Args): Promise<void> {
  const { nodes, selfId } = await connect(a)('node.ls', {});
  out(bool(a, 'quiet') ? nodeIds(nodes) : nodeTable(nodes, selfId, str(a, 'format')));
}

/** `node inspect [--pretty] NODE…`. */
export async function inspect(a: Args): Promise<void> {
  const call = connect(a);
  const self: { id?: string } = {};
  const found: Node[] = [];
  const pretty = bool(a, 'pretty');
  try {
    await forEach(list(a, 'nodes'), async (ref) => {
      found.push(await call('node.inspect', { ref: await resolveRef(call, ref, self) }));
    });
  } finally {
    const format = str(a, 'format');
    if (format !== undefined) out(found.map((n) => `${renderTemplate(format, n)}\n`).join(''));
    else if (pretty) out(found.map(prettyNode).join('\n'));
    else out(inspectJson(found));
  }
}

/** `node update [--availability] [--label-add k=v]… [--label-rm k]… [--role] NODE`. */
export async function update(a: Args): Promise<void> {
  const call = connect(a);
  const ref = await resolveRef(call, str(a, 'node') ?? '', {});
  const params: { ref: string; availability?: string; labelAdd?: Record<string, string>; labelRm?: string[]; role?: 'manager' | 'worker' } = { ref };
  const avail = str(a, 'availability');
  if (avail !== undefined) {
    if (!['active', 'pause', 'drain'].includes(avail)) throw new UsageError(`invalid --availability value ${JSON.stringify(avail)}: use active, pause or drain`);
    params.availability = avail;
  }
  const adds = list(a, 'label-add');
  if (adds.length) {
    params.labelAdd = {};
    for (const v of adds) {
      const [k, val] = parseKeyValue(v, '--label-add');
      params.labelAdd[k] = val;
    }
  }
  const rms = list(a, 'label-rm');
  if (rms.length) params.labelRm = rms;
  const role = str(a, 'role');
  if (role !== undefined) {
    if (role !== 'manager' && role !== 'worker') throw new UsageError(`invalid --role value ${JSON.stringify(role)}: use worker or manager`);
    params.role = role;
  }
  if (Object.keys(params).length === 1) {
    throw new UsageError('nothing to update; give --availability, --label-add, --label-rm or --role');
  }
  await call('node.update', params);
  out(`${str(a, 'node')}\n`);
}

/**
 * `node promote` / `node demote`: like Docker, a node already in (and staying in) the role is not
 * an error: `Node X is already a manager.` / `… a worker.` on stdout, and the command goes on.
 */
async function setRole(a: Args, role: 'manager' | 'worker'): Promise<void> {
  const call = connect(a);
  const self: { id?: string } = {};
  await forEach(list(a, 'nodes'), async (ref) => {
    const id = await resolveRef(call, ref, self);
    const cur = await call('node.inspect', { ref: id });
    if (cur.role === role && cur.spec.desiredRole === role) {
      out(`Node ${ref} is already a ${role}.\n`);
      return;
    }
    await call('node.update', { ref: id, role });
    out(role === 'manager' ? `Node ${ref} promoted to a manager in the swarm.\n` : `Manager ${ref} demoted in the swarm.\n`);
  });
}

/** `node promote NODE…`. */
export function promote(a: Args): Promise<void> {
  return setRole(a, 'manager');
}

/** `node demote NODE…`. */
export function demote(a: Args): Promise<void> {
  return setRole(a, 'worker');
}

/** `node rm [-f] NODE…`: prints each removed node as given. */
export async function rm(a: Args): Promise<void> {
  const call = connect(a);
  const force = bool(a, 'force');
  const self: { id?: string } = {};
  await forEach(list(a, 'nodes'), async (ref) => {
    await call('node.rm', force ? { ref: await resolveRef(call, ref, self), force } : { ref: await resolveRef(call, ref, self) });
    out(`${ref}\n`);
  });
}

/** `node ps [-f …] [--no-trunc] [-q] [NODE…]` (default: the local node). */
export async function ps(a: Args): Promise<void> {
  const call = connect(a);
  const filters = parseTaskFilters(list(a, 'filter'), false);
  const refs = list(a, 'nodes');
  const self: { id?: string } = {};
  const tasks: Task[] = [];
  const nodes: Record<string, string> = {};
  let failed = false;
  try {
    await forEach(refs.length ? refs : ['self'], async (ref) => {
      const r = await call('node.ps', { ref: await resolveRef(call, ref, self) });
      tasks.push(...r.tasks);
      Object.assign(nodes, r.nodes);
    });
  } catch (e) {
    failed = true;
    if (tasks.length === 0) throw e;
    printTasks(a, filterTasks(tasks, filters), nodes);
    throw e;
  }
  if (!failed) printTasks(a, filterTasks(tasks, filters), nodes);
}
