import type { Config, Secret, Task } from '@shoal/api';
import { SECRETS_DIR } from '@shoal/api';
import { renderGoTemplate, TemplateError } from './gotemplate.js';
import type { TemplateContext } from './template.js';

/**
 * A file a task's container gets from a secret or config, in memory: the executor puts it where
 * the container sees it without writing it to the node's disk (docs/SECURITY.md).
 */
export interface TaskFile {
  kind: 'secret' | 'config';
  /** The secret's or config's name (for messages). */
  name: string;
  /** Absolute path in the container. */
  target: string;
  /** The content (rendered when the secret or config is a template). */
  data: Buffer;
  uid: number;
  gid: number;
  /** Permission bits (e.g. 0o444). */
  mode: number;
}

/** The secrets and configs this node was sent, by ID (the agent's in-memory store). */
export interface TaskDependencies {
  secrets: ReadonlyMap<string, Secret>;
  configs: ReadonlyMap<string, Config>;
}

/**
 * Where a reference's target is in the container: a relative secret target under `/run/secrets/`,
 * a relative config target under `/`, an absolute one as given (moby `container_unix.go`).
 */
export function targetPathOf(kind: 'secret' | 'config', name: string): string {
  if (name.startsWith('/')) return name;
  return kind === 'secret' ? `${SECRETS_DIR}/${name}` : `/${name}`;
}

/**
 * The files of `task`'s secrets and configs, from what the dispatcher sent (`deps`), templates
 * rendered for this task on this node (SwarmKit `template/context.go`: `.Service.ID/.Name`,
 * `.Node.ID/.Hostname/.Platform.OS/.Platform.Architecture`, `.Task.ID/.Name/.Slot`; functions
 * `env "X"` (the task's environment), `secret "target"` and `config "target"` (another reference
 * of the same task, by target), `join SEP A B…`).
 * @throws Error (one line, the task is then REJECTED) when a secret or config was not sent, or a
 *   template does not render.
 */
export function taskFiles(task: Task, deps: TaskDependencies, ctx: TemplateContext): TaskFile[] {
  const c = task.spec.container;
  const secretRefs = c.secrets ?? [];
  const configRefs = c.configs ?? [];
  if (!secretRefs.length && !configRefs.length) return [];
  const raw = (kind: 'secret' | 'config', id: string, name: string): Secret | Config => {
    const o = kind === 'secret' ? deps.secrets.get(id) : deps.configs.get(id);
    if (!o) throw new Error(`${kind} ${name} (${id}) is not available on this node; it may have been removed`);
    return o;
  };
  const slot = task.slot > 0 ? String(task.slot) : task.nodeId;
  const data = {
    Service: { ID: task.serviceId, Name: task.serviceName, Labels: {} },
    Node: { ID: task.nodeId, Hostname: ctx.node.hostname, Platform: { OS: ctx.node.os ?? '', Architecture: ctx.node.architecture ?? '' } },
    Task: { ID: task.id, Name: `${task.serviceName}.${slot}.${task.id}`, Slot: slot },
  };
  const env = (name: unknown): string => {
    for (const e of c.env ?? []) {
      const i = e.indexOf('=');
      if (i > 0 && e.slice(0, i) === String(name)) return e.slice(i + 1);
    }
    return '';
  };
  // A secret a config template pulls in is rendered with the same context (SwarmKit does too).
  const render = (kind: 'secret' | 'config', o: Secret | Config, depth: number): Buffer => {
    const bytes = Buffer.from(o.spec.data, 'base64');
    if (!o.spec.templating) return bytes;
    if (o.spec.templating.name !== 'golang') throw new Error(`${kind} ${o.spec.name}: unsupported template driver ${o.spec.templating.name}`);
    if (depth > 4) throw new Error(`${kind} ${o.spec.name}: templates nest too deep`);
    const byTarget = (k: 'secret' | 'config') => (target: unknown): string => {
      const refs = k === 'secret' ? secretRefs.map((r) => ({ id: r.secretId, name: r.secretName, file: r.file })) : configRefs.map((r) => ({ id: r.configId, name: r.configName, file: r.file }));
      const r = refs.find((x) => x.file.name === String(target));
      if (!r) throw new Error(`${k} target ${String(target)} not found; the task's ${k}s have targets ${refs.map((x) => x.file.name).join(', ') || '(none)'}`);
      return render(k, raw(k, r.id, r.name), depth + 1).toString('utf8');
    };
    try {
      return Buffer.from(renderGoTemplate(bytes.toString('utf8'), data, {
        env, secret: byTarget('secret'), config: byTarget('config'),
        join: (sep, ...parts) => parts.map(String).join(String(sep)),
      }));
    } catch (e) {
      if (e instanceof TemplateError) throw new Error(`${kind} ${o.spec.name}: ${e.message}`);
      throw e;
    }
  };
  const out: TaskFile[] = [];
  for (const r of secretRefs) {
    out.push(fileOf('secret', r.secretName, r.file, render('secret', raw('secret', r.secretId, r.secretName), 0)));
  }
  for (const r of configRefs) {
    out.push(fileOf('config', r.configName, r.file, render('config', raw('config', r.configId, r.configName), 0)));
  }
  return out;
}

function fileOf(kind: 'secret' | 'config', name: string, f: { name: string; uid: string; gid: string; mode: number }, data: Buffer): TaskFile {
  return { kind, name, target: targetPathOf(kind, f.name), data, uid: Number(f.uid) || 0, gid: Number(f.gid) || 0, mode: f.mode };
}
