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
export type { Logger } from './logger.js';
export { nullLogger } from './logger.js';
export { StatusReporter } from './reporter.js';
export type { SendStatuses, StatusReporterOptions } from './reporter.js';
export { TaskRunner, isBackend, wantsStop } from './task.js';
export { expandTemplate } from './template.js';
export type { TemplateContext } from './template.js';
