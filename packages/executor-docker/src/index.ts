/** `@shoal/executor-docker`: the agent's Executor/Controller ports on a Docker engine (dockerode). */
export { DockerExecutor } from './executor.js';
export type { DockerExecutorOptions } from './executor.js';
export { DockerController, engineHealthcheck } from './controller.js';
export type { DockerControllerOptions, TaskNetwork } from './controller.js';
export { defaultDockerHost, dockerOptions } from './docker-host.js';
export { TaskFileMounts, mountPoints, type FileMount, type RunCommand } from './files.js';
