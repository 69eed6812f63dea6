/**
 * `@shoal/agent`: the worker side of a node — dispatcher session, task runners, status reporter —
 * and the Executor/Controller ports a container runtime implements (`@shoal/executor-docker`).
 */
export { Agent } from './agent.js';
export type { AgentOptions, AgentState } from './agent.js';
export {
  ContainerNotFoundError,
  ImageUnavailableError,
  LABELS,
  containerName,
  managedFromLabels,
  normalizeImageRef,
  taskLabels,
} from './exec.js';
export type { ContainerStatus, Controller, Executor, HealthStatus, ManagedContainer } from './exec.js';
/** The runtime logger (`@shoal/runtime`), under the name this package always exported. */
export type { Logger } from '@shoal/runtime';
export { StatusReporter } from './reporter.js';
export type { SendStatuses, StatusReporterOptions } from './reporter.js';
export { TaskRunner, isBackend, wantsStop } from './task.js';
export { expandTemplate } from './template.js';
export { taskFiles, targetPathOf } from './files.js';
export type { TaskFile, TaskDependencies } from './files.js';
export { renderGoTemplate, TemplateError, type TemplateFunc } from './gotemplate.js';
export type { TemplateContext } from './template.js';
