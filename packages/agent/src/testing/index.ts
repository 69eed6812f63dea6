/**
 * Test doubles for code that runs agents: `@shoal/agent/testing`. Fakes only — nothing in
 * production imports this entry point.
 */
export { FakeExecutor } from './fake-executor.js';
export type { FakeContainer } from './fake-executor.js';
export { FakeDispatcher, fakeTask, until } from './fake-dispatcher.js';
