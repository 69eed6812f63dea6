import { SUPERSEDED_LABEL, taskStateRank, type Config, type Secret, type Service, type Task } from '@shoal/api';
import type { MemoryStore, ReadTx, StoreEvent } from '@shoal/store';
import { Reconciler, type ComponentOptions } from './reconciler.js';

type Table = 'secrets' | 'configs';

const RUNNING = taskStateRank('running');

/**
 * Deletes the secrets and configs a stack redeploy replaced (label {@link SUPERSEDED_LABEL}, set by
 * the control API when a stack file's content changed) once nothing uses them. Leader-only.
 *
 * The rule, per superseded object: it is deleted when
 * 1. no service's current spec references its ID, and
 * 2. no task that may still be using it references it — a task whose observed state is at most
 *    RUNNING (the dispatcher's rule for sending a node the object: `dependenciesOf`), except one
 *    told to stop before it ever reached a node.
 * So the rolling update that the new object starts replaces every task first; an object still
 * used elsewhere (another service took it by ID) stays. A service's previous spec does not keep it:
 * a rollback to it is refused, naming the missing object (controlapi `resolveFileRefs`).
 *
 * Keys: `<table>|<id>`. Events: a superseded object created or updated; any service change or task
 * change re-checks every superseded object (there are few, and only during a stack's rollout).
 */
export class SupersededReaper extends Reconciler {
  constructor(store: MemoryStore, opts: ComponentOptions = {}) {
    super(store, opts);
    this.batchMs = 250;
  }

  protected allKeys(): string[] {
    return this.store.view((tx) => supersededKeys(tx));
  }

  protected onEvent(ev: Extract<StoreEvent, { kind: 'create' | 'update' | 'delete' }>): void {
    switch (ev.table) {
      case 'secrets':
      case 'configs': {
        const o = ev.object as Secret | Config;
        if (ev.kind !== 'delete' && o.spec.labels[SUPERSEDED_LABEL]) this.mark(`${ev.table}|${o.id}`);
        return;
      }
      case 'services':
      case 'tasks':
        for (const k of this.store.view((tx) => supersededKeys(tx))) this.mark(k);
        return;
      default:
    }
  }

  protected async reconcile(keys: string[]): Promise<void> {
    await this.store.update((tx) => {
      const unused = unusedObjects(tx, keys);
      for (const [table, id] of unused) tx.delete(table, id);
    }, { retries: 10 });
  }
}

/** Keys of every superseded secret and config. */
function supersededKeys(tx: ReadTx): string[] {
  const keys: string[] = [];
  for (const table of ['secrets', 'configs'] as const) {
    for (const o of tx.list(table)) if (o.spec.labels[SUPERSEDED_LABEL]) keys.push(`${table}|${o.id}`);
  }
  return keys;
}

/**
 * Of the superseded objects named by `keys`, those no service spec and no unfinished task uses
 * (the rule of {@link SupersededReaper}). Pure over the read view.
 */
export function unusedObjects(tx: ReadTx, keys: readonly string[]): [Table, string][] {
  const wanted = keys.map((k) => k.split('|') as [Table, string])
    .filter(([table, id]) => tx.get(table, id)?.spec.labels[SUPERSEDED_LABEL]);
  if (wanted.length === 0) return [];
  const used = new Set<string>();
  const use = (c: Service['spec']['task']['container']) => {
    for (const r of c.secrets ?? []) used.add(`secrets|${r.secretId}`);
    for (const r of c.configs ?? []) used.add(`configs|${r.configId}`);
  };
  for (const s of tx.list('services')) use(s.spec.task.container);
  for (const t of tx.list('tasks') as Task[]) if (mayUse(t)) use(t.spec.container);
  return wanted.filter(([table, id]) => !used.has(`${table}|${id}`));
}

/** Whether task `t` may still need its secrets and configs: not ended, and running or bound for a node. */
function mayUse(t: Task): boolean {
  if (taskStateRank(t.status.state) > RUNNING) return false;
  return t.nodeId !== '' || taskStateRank(t.desiredState) <= RUNNING;
}
