/**
 * The control contract's types, for clients (a type-only re-export: the schemas and the validator
 * live in `@shoal/api/contract` and `@shoal/api/check`, which servers import).
 */
export type {
  Call, Handlers, Method, MethodKind, Methods, NodeUpdate, Params, Result, ServiceSpecInput, ServiceSummary, SwarmInfo, TaskList, StackDeployInput, StackDeployResult, StackSummary, StackRemoved,
} from './contract.js';
export type { FileRefInput, SecretCreate, SecretFilters, SecretInfo } from './contract.js';
