/**
 * `@shoal/compose`: compose files (the Compose Specification) read into a checked project —
 * YAML with positions, the specification's JSON schema (ajv), interpolation, merging, the legacy
 * format — and mapped onto stack specs. Pure: the CLI reads files and the environment.
 */
export { ComposeError, parseYaml, type Pos, type Origins } from './source.js';
export { interpolateString, type Env } from './interpolate.js';
export { loadProject, deployWaves, parseEnvFile, type ComposeProject, type ComposeSource, type LoadOptions, type LoadResult, type ServiceConfig } from './load.js';
export { parseDuration, parseBytes, parsePorts, parseVolumes, type PortConfig, type VolumeMount, type FileRef, type Dependency } from './normalize.js';
export { toStack, checkStackName, NAMESPACE_LABEL, IMAGE_LABEL, type StackPlan, type StackService, type StackNetwork, type StackFileObject, type StackBuild, type StackOptions } from './stack.js';
