/**
 * `@shoal/testkit`: the test doubles of Shoal — dev-only, imported by tests, never by a production
 * `src/`. Every fake is named `Fake…`. See README.md for why some packages' tests build as a
 * separate TypeScript project.
 */
export { FakeClock } from './fake-clock.js';
export { FakeProposer, newTestStore } from './fake-proposer.js';
export { FakeExecutor, type FakeContainer } from './fake-executor.js';
export { FakeDispatcher, fakeTask } from './fake-dispatcher.js';
export { FakeMetrics } from './fake-metrics.js';
export { until } from './until.js';
export { parseScript, formatScript, parseArgs, runDataDriven, REWRITE, type Stanza, type Args, type DataDrivenAssert } from './datadriven.js';
