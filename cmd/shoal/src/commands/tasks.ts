import { TASK_STATES, type Task, type TaskState } from '@shoal/api';
import { UsageError } from '../errors.js';
import { taskIds, taskName, taskTable } from '../format/tables.js';
import { type Args, bool, out, str } from './common.js';

/** Filters of `service ps` / `node ps` (`-f key=value`, Docker's keys). */
export interface TaskFilters {
  desiredState?: TaskState;
  node?: string;
  names: string[];
  ids: string[];
}

/** Parses `-f` values. @throws UsageError naming a bad key or state. */
export function parseTaskFilters(values: readonly string[], allowNode: boolean): TaskFilters {
  const f: TaskFilters = { names: [], ids: [] };
  for (const v of values) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    const val = eq < 0 ? '' : v.slice(eq + 1);
    if (eq < 0 || val === '') throw new UsageError(`invalid filter ${JSON.stringify(v)}: expected KEY=VALUE, e.g. desired-state=running`);
    switch (key) {
      case 'desired-state':
        if (!(TASK_STATES as readonly string[]).includes(val)) {
          throw new UsageError(`invalid filter ${JSON.stringify(v)}: unknown state "${val}"; use running, shutdown, accepted, …`);
        }
        f.desiredState = val as TaskState;
        break;
      case 'node':
        if (!allowNode) throw new UsageError(`invalid filter ${JSON.stringify(v)}: node filter is not supported here`);
        f.node = val;
        break;
      case 'name': f.names.push(val); break;
      case 'id': f.ids.push(val); break;
      default:
        throw new UsageError(`invalid filter ${JSON.stringify(v)}: unknown key "${key}"; use desired-state, ${allowNode ? 'node, ' : ''}name or id`);
    }
  }
  return f;
}

/** Applies the client-side filters (name prefix, ID prefix). */
export function filterTasks(tasks: Task[], f: TaskFilters): Task[] {
  return tasks.filter((t) =>
    (f.names.length === 0 || f.names.some((n) => taskName(t).startsWith(n)))
    && (f.ids.length === 0 || f.ids.some((id) => t.id.startsWith(id)))
    && (f.desiredState === undefined || t.desiredState === f.desiredState));
}

/** Prints a task table (or IDs with `-q`), honouring `--no-trunc`. */
export function printTasks(a: Args, tasks: Task[], nodes: Record<string, string>): void {
  const trunc = !bool(a, 'no-trunc');
  const format = str(a, 'format');
  if (bool(a, 'quiet')) out(taskIds(tasks, trunc));
  else out(taskTable(tasks, nodes, { trunc, now: Date.now(), ...(format !== undefined ? { format } : {}) }));
}
