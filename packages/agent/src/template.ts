import type { Task } from '@shoal/api';

/** What a placeholder can refer to: the task and the node it runs on. */
export interface TemplateContext {
  task: Pick<Task, 'id' | 'serviceId' | 'serviceName' | 'slot' | 'nodeId'>;
  node: { hostname: string; os?: string; architecture?: string };
}

const FIELDS: Record<string, (c: TemplateContext) => string> = {
  'Service.ID': (c) => c.task.serviceId,
  'Service.Name': (c) => c.task.serviceName,
  'Task.ID': (c) => c.task.id,
  'Task.Name': (c) => `${c.task.serviceName}.${c.task.slot > 0 ? c.task.slot : c.task.nodeId}.${c.task.id}`,
  'Task.Slot': (c) => String(c.task.slot > 0 ? c.task.slot : c.task.nodeId),
  'Node.ID': (c) => c.task.nodeId,
  'Node.Hostname': (c) => c.node.hostname,
  'Node.Platform.OS': (c) => c.node.os ?? '',
  'Node.Platform.Architecture': (c) => c.node.architecture ?? '',
};

const PLACEHOLDER = /\{\{\s*\.([A-Za-z][A-Za-z.]*)\s*\}\}/g;

/**
 * Expands Docker's service template placeholders (`docker service create --hostname
 * "{{.Node.Hostname}}-{{.Task.Slot}}"`; SwarmKit `template/context.go`) in a hostname or env value:
 * `{{.Service.ID}}`, `{{.Service.Name}}`, `{{.Task.ID}}`, `{{.Task.Name}}`, `{{.Task.Slot}}`,
 * `{{.Node.ID}}`, `{{.Node.Hostname}}`, `{{.Node.Platform.OS}}`, `{{.Node.Platform.Architecture}}`.
 * Strings without `{{` are returned as they are.
 * @throws Error naming the unknown field and the known ones (the task is then REJECTED).
 */
export function expandTemplate(s: string, ctx: TemplateContext): string {
  if (!s.includes('{{')) return s;
  return s.replace(PLACEHOLDER, (_m, field: string) => {
    const get = FIELDS[field];
    if (!get) throw new Error(`template "${s}": unknown field .${field}; use one of ${Object.keys(FIELDS).map((f) => `.${f}`).join(', ')}`);
    return get(ctx);
  });
}
