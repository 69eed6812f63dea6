import test from 'ava';
import type { TaskState, TaskStatus } from '@shoal/api';
import { TaskRunner } from '../src/task.js';
import { FakeExecutor, fakeTask, until } from '@shoal/testkit';

/** A runner over a FakeExecutor, recording every status it reports. */
function harness(opts: { image?: string; desiredState?: TaskState } = {}) {
  const exec = new FakeExecutor('node1');
  const task = fakeTask({ nodeId: 'node1', ...opts });
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner(task, exec.controller(task), (_id, s) => reported.push(s), undefined, 20);
  const states = () => reported.map((s) => s.state);
  const last = () => reported[reported.length - 1];
  return { exec, task, runner, reported, states, last };
}

test('walks ACCEPTED → PREPARING → READY → STARTING → RUNNING, then COMPLETE on exit 0', async (t) => {
  const h = harness();
  h.runner.start();
  await until(() => h.runner.observed === 'running', 'running');
  t.deepEqual(h.states(), ['accepted', 'preparing', 'ready', 'starting', 'running']);
  const c = h.exec.byTask(h.task.id)!;
  t.truthy(c.running);
  t.is(h.last()!.containerId, c.id);
  h.exec.exit(h.task.id, 0);
  await until(() => h.runner.observed === 'complete', 'complete');
  t.is(h.last()!.exitCode, 0);
  t.is(h.last()!.err, undefined);
  await h.runner.close();
});

test('non-zero exit is FAILED with "task: non-zero exit (N)" and the container is not restarted', async (t) => {
  const h = harness();
  h.runner.start();
  await until(() => h.runner.observed === 'running', 'running');
  h.exec.exit(h.task.id, 3);
  await until(() => h.runner.observed === 'failed', 'failed');
  t.is(h.last()!.err, 'task: non-zero exit (3)');
  t.is(h.last()!.exitCode, 3);
  // Nothing more happens however often the task is re-sent.
  h.runner.update({ ...h.task });
  await new Promise((r) => setImmediate(r));
  t.is(h.exec.byTask(h.task.id)!.starts, 1);
  t.deepEqual(h.states().slice(-1), ['failed']);
  await h.runner.close();
});

test('a container the OOM killer ended is FAILED with an error that says so first', async (t) => {
  const h = harness();
  h.runner.start();
  await until(() => h.runner.observed === 'running', 'running');
  h.exec.exit(h.task.id, 137, { oomKilled: true });
  await until(() => h.runner.observed === 'failed', 'failed');
  t.is(h.last()!.err, 'task: OOM killed: non-zero exit (137)');
  t.is(h.last()!.exitCode, 137);
  await h.runner.close();
});

test('an image that is missing and not pullable is REJECTED with an error naming it', async (t) => {
  const h = harness({ image: 'nosuch' });
  h.runner.start();
  await until(() => h.runner.observed === 'rejected', 'rejected');
  t.deepEqual(h.states(), ['accepted', 'preparing', 'rejected']);
  t.regex(h.last()!.err!, /^No such image: nosuch:latest \(not present locally and could not be pulled/);
  t.is(h.exec.containers.size, 0);
  await h.runner.close();
});

test('any other prepare error before STARTING is REJECTED too (SwarmKit: fatal before start)', async (t) => {
  const h = harness();
  h.exec.failNextPrepare = new Error('disk full');
  h.runner.start();
  await until(() => h.runner.observed === 'rejected', 'rejected');
  t.is(h.last()!.err, 'disk full');
});

test('desired SHUTDOWN while running stops the container with the grace period, then reports SHUTDOWN', async (t) => {
  const exec = new FakeExecutor('node1');
  const task = fakeTask({ nodeId: 'node1', stopGracePeriodMs: 1500 });
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner(task, exec.controller(task), (_id, s) => reported.push(s));
  runner.start();
  await until(() => runner.observed === 'running', 'running');
  runner.update({ ...task, desiredState: 'shutdown' });
  await until(() => runner.observed === 'shutdown', 'shutdown');
  const c = exec.byTask(task.id)!;
  t.false(c.running);
  t.is(c.lastGraceMs, 1500);
  t.true(exec.ops.includes(`shutdown ${c.name}`));
  t.is(reported.at(-1)!.err, undefined);
  await runner.close();
});

test('desired SHUTDOWN before the task started: SHUTDOWN, and no container is ever started', async (t) => {
  const h = harness({ desiredState: 'shutdown' });
  h.runner.start();
  await until(() => h.runner.observed === 'shutdown', 'shutdown');
  t.deepEqual(h.states(), ['shutdown']);
  t.is(h.exec.running().length, 0);
  await h.runner.close();
});

test('desired READY prepares but does not start until desired RUNNING', async (t) => {
  const h = harness({ desiredState: 'ready' });
  h.runner.start();
  await until(() => h.runner.observed === 'ready', 'ready');
  await new Promise((r) => setTimeout(r, 20));
  t.is(h.runner.observed, 'ready');
  t.false(h.exec.byTask(h.task.id)!.started);
  h.runner.update({ ...h.task, desiredState: 'running' });
  await until(() => h.runner.observed === 'running', 'running');
  await h.runner.close();
});

test('adopts a running container: reports RUNNING without creating or starting anything', async (t) => {
  const exec = new FakeExecutor('node1');
  const task = fakeTask({ nodeId: 'node1' });
  const existing = exec.addTaskContainer(task);
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner({ ...task, status: { ...task.status, state: 'running' } }, exec.controller(task), (_id, s) => reported.push(s));
  runner.start();
  await until(() => existing.waiters.size === 1, 'the runner waiting on the adopted container');
  t.deepEqual(reported, [], 'already RUNNING: nothing to report');
  exec.exit(task.id, 137);
  await until(() => runner.observed === 'failed', 'failed');
  t.deepEqual(exec.ops, []);
  t.is(existing.starts, 1);
  t.deepEqual(reported.map((s) => s.state), ['failed']);
  t.is(reported[0]!.err, 'task: non-zero exit (137)');
});

test('a RUNNING task whose container vanished is FAILED, naming the missing container', async (t) => {
  const exec = new FakeExecutor('node1');
  const task = fakeTask({ nodeId: 'node1' });
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner({ ...task, status: { ...task.status, state: 'running' } }, exec.controller(task), (_id, s) => reported.push(s));
  runner.start();
  await until(() => runner.observed === 'failed', 'failed');
  t.regex(reported[0]!.err!, /not found/);
});

test('a container that exited while no agent watched gets its terminal state at once', async (t) => {
  const exec = new FakeExecutor('node1');
  const task = fakeTask({ nodeId: 'node1' });
  exec.addTaskContainer(task, { running: false, exitCode: 0 });
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner({ ...task, status: { ...task.status, state: 'starting' } }, exec.controller(task), (_id, s) => reported.push(s));
  runner.start();
  await until(() => runner.observed === 'complete', 'complete');
  t.deepEqual(reported.map((s) => s.state), ['complete']);
  t.deepEqual(exec.ops, [], 'never restarted');
});

test('a container removed behind the agent while running → FAILED', async (t) => {
  const h = harness();
  h.runner.start();
  await until(() => h.runner.observed === 'running', 'running');
  h.exec.vanish(h.task.id);
  await until(() => h.runner.observed === 'failed', 'failed');
  t.regex(h.last()!.err!, /^task: container .* not found/);
});

test('remove() stops and removes the container; close() leaves it running', async (t) => {
  const h = harness();
  h.runner.start();
  await until(() => h.runner.observed === 'running', 'running');
  await h.runner.close();
  t.true(h.exec.byTask(h.task.id)!.running, 'close must not stop the container');
  const h2 = harness();
  h2.runner.start();
  await until(() => h2.runner.observed === 'running', 'running');
  await h2.runner.remove();
  t.is(h2.exec.containers.size, 0);
});

test('states never move backwards when the manager sends an older status', async (t) => {
  const h = harness();
  h.runner.start();
  await until(() => h.runner.observed === 'running', 'running');
  h.runner.update({ ...h.task, status: { ...h.task.status, state: 'assigned' } });
  await new Promise((r) => setTimeout(r, 10));
  t.is(h.runner.observed, 'running');
  t.deepEqual(h.states(), ['accepted', 'preparing', 'ready', 'starting', 'running']);
  await h.runner.close();
});

test('a runtime that keeps failing inspect() gets three tries, then the task is REJECTED with its error', async (t) => {
  const h = harness();
  h.exec.inspectError = new Error('container name web.1.x is taken by a container Shoal does not manage');
  h.runner.start();
  await until(() => h.runner.observed === 'rejected', 'rejected');
  t.is(h.last()!.err, 'container name web.1.x is taken by a container Shoal does not manage');
  t.is(h.exec.containers.size, 0);
});

test('a backend reports its data-path address with RUNNING and drains before it is stopped', async (t) => {
  const exec = new FakeExecutor('node1');
  exec.addressOf = () => '10.97.1.7/24';
  const task = { ...fakeTask({ nodeId: 'node1' }), networks: [{ networkId: 'app', addresses: [] }] };
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner(task, exec.controller(task), (_id, s) => reported.push(s), undefined, 20, 1500);
  runner.start();
  await until(() => runner.observed === 'running', 'running');
  t.deepEqual(reported.at(-1)!.networkAddrs, ['10.97.1.7/24']);
  const c = exec.byTask(task.id)!;
  runner.update({ ...task, desiredState: 'shutdown' });
  await new Promise((r) => setTimeout(r, 100));
  t.true(c.running, 'still running during the drain delay');
  t.false(exec.ops.includes(`shutdown ${c.name}`));
  await until(() => runner.observed === 'shutdown', 'shutdown');
  t.false(c.running);
  await runner.close();
});

// Health checks: a task whose container has one is STARTING until healthy (SwarmKit's controller).

const HC = { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, retries: 1 };

/** A runner over a FakeExecutor for a task with a health check, polling health every 5 ms. */
function healthHarness(opts: { drainDelayMs?: number; backend?: boolean } = {}) {
  const exec = new FakeExecutor('node1');
  const base = fakeTask({ nodeId: 'node1', healthcheck: HC });
  const task = opts.backend ? { ...base, networks: [{ networkId: 'app', addresses: [] }] } : base;
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner(task, exec.controller(task), (_id, s) => reported.push(s), undefined, 20, opts.drainDelayMs ?? 0, 5);
  const states = () => reported.map((s) => s.state);
  const container = () => exec.byTask(task.id)!;
  return { exec, task, runner, reported, states, container, last: () => reported.at(-1) };
}

const settle = (ms = 40) => new Promise((r) => setTimeout(r, ms));

test('health: STARTING until the engine reports healthy, then RUNNING', async (t) => {
  const h = healthHarness();
  h.runner.start();
  await until(() => h.exec.byTask(h.task.id)?.running, 'container started');
  await settle();
  t.is(h.runner.observed, 'starting', 'not RUNNING while the check is starting');
  t.is(h.container().health, 'starting');
  h.exec.setHealth(h.task.id, 'healthy');
  await until(() => h.runner.observed === 'running', 'running');
  t.deepEqual(h.states(), ['accepted', 'preparing', 'ready', 'starting', 'running']);
  t.is(h.last()!.containerId, h.container().id);
  t.is(h.container().starts, 1);
  await h.runner.close();
});

test('health: unhealthy while STARTING is FAILED "task: unhealthy container"', async (t) => {
  const h = healthHarness();
  h.runner.start();
  await until(() => h.exec.byTask(h.task.id)?.running, 'container started');
  h.exec.setHealth(h.task.id, 'unhealthy');
  await until(() => h.runner.observed === 'failed', 'failed');
  t.deepEqual(h.states(), ['accepted', 'preparing', 'ready', 'starting', 'failed']);
  t.is(h.last()!.err, 'task: unhealthy container');
  t.true(h.container().running, 'left running until the managers ask for the shutdown');
  h.runner.update({ ...h.task, desiredState: 'shutdown' });
  await until(() => !h.container().running, 'container stopped after desired SHUTDOWN');
  t.true(h.exec.ops.includes(`shutdown ${h.container().name}`));
  t.deepEqual(h.states().slice(-1), ['failed']);
  await h.runner.close();
});

test('health: a container that exits while STARTING gets the usual exit handling', async (t) => {
  const h = healthHarness();
  h.runner.start();
  await until(() => h.exec.byTask(h.task.id)?.running, 'container started');
  h.exec.exit(h.task.id, 2);
  await until(() => h.runner.observed === 'failed', 'failed');
  t.is(h.last()!.err, 'task: non-zero exit (2)');
  t.is(h.last()!.exitCode, 2);
  await h.runner.close();
});

test('health: RUNNING → unhealthy is FAILED; desired SHUTDOWN then stops the container', async (t) => {
  const h = healthHarness();
  h.runner.start();
  await until(() => h.exec.byTask(h.task.id)?.running, 'container started');
  h.exec.setHealth(h.task.id, 'healthy');
  await until(() => h.runner.observed === 'running', 'running');
  await settle();
  t.is(h.runner.observed, 'running');
  h.exec.setHealth(h.task.id, 'unhealthy');
  await until(() => h.runner.observed === 'failed', 'failed');
  t.is(h.last()!.err, 'task: unhealthy container');
  t.is(h.last()!.exitCode, undefined);
  t.true(h.container().running);
  t.is(h.container().waiters.size, 0, 'no longer waiting on the container');
  h.runner.update({ ...h.task, desiredState: 'shutdown' });
  await until(() => !h.container().running, 'container stopped after desired SHUTDOWN');
  t.true(h.exec.ops.includes(`shutdown ${h.container().name}`));
  t.deepEqual(h.states(), ['accepted', 'preparing', 'ready', 'starting', 'running', 'failed']);
  t.is(h.container().starts, 1, 'never restarted by the agent');
  await h.runner.close();
});

test('health: a RUNNING task told to stop is not failed by an unhealthy check during its stop', async (t) => {
  const h = healthHarness({ backend: true, drainDelayMs: 200 });
  h.runner.start();
  await until(() => h.exec.byTask(h.task.id)?.running, 'container started');
  h.exec.setHealth(h.task.id, 'healthy');
  await until(() => h.runner.observed === 'running', 'running');
  h.runner.update({ ...h.task, desiredState: 'shutdown' });
  h.exec.setHealth(h.task.id, 'unhealthy');
  await until(() => h.runner.observed === 'shutdown', 'shutdown');
  t.false(h.container().running);
  t.deepEqual(h.states().slice(-2), ['running', 'shutdown']);
  await h.runner.close();
});

test('health: desired SHUTDOWN while waiting for health stops the started container, then SHUTDOWN', async (t) => {
  const h = healthHarness({ backend: true, drainDelayMs: 5000 });
  h.runner.start();
  await until(() => h.exec.byTask(h.task.id)?.running, 'container started');
  await settle();
  t.is(h.runner.observed, 'starting');
  h.runner.update({ ...h.task, desiredState: 'shutdown' });
  // No drain delay: a STARTING task was never a load-balancer backend.
  await until(() => h.runner.observed === 'shutdown', 'shutdown', 2000);
  t.false(h.container().running, 'the started container is stopped');
  t.true(h.exec.ops.includes(`shutdown ${h.container().name}`));
  t.deepEqual(h.states(), ['accepted', 'preparing', 'ready', 'starting', 'shutdown']);
  await h.runner.close();
});

test('health: remove() while waiting for health stops and removes the container', async (t) => {
  const h = healthHarness();
  h.runner.start();
  await until(() => h.exec.byTask(h.task.id)?.running, 'container started');
  await h.runner.remove();
  t.is(h.exec.containers.size, 0);
  t.true(h.exec.ops.includes(`shutdown ${h.task.serviceName}.${h.task.slot}.${h.task.id}`));
});

test('health: adoption of a running container whose check is still starting waits for healthy', async (t) => {
  const exec = new FakeExecutor('node1');
  const task = fakeTask({ nodeId: 'node1', healthcheck: HC });
  const existing = exec.addTaskContainer(task, { health: 'starting' });
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner({ ...task, status: { ...task.status, state: 'starting' } }, exec.controller(task), (_id, s) => reported.push(s), undefined, 20, 0, 5);
  runner.start();
  await settle();
  t.is(runner.observed, 'starting');
  t.deepEqual(reported, []);
  exec.setHealth(task.id, 'healthy');
  await until(() => runner.observed === 'running', 'running');
  t.deepEqual(reported.map((s) => s.state), ['running']);
  t.deepEqual(exec.ops, [], 'nothing created or started');
  t.is(existing.starts, 1);
  // Still watched while RUNNING.
  exec.setHealth(task.id, 'unhealthy');
  await until(() => runner.observed === 'failed', 'failed');
  t.is(reported.at(-1)!.err, 'task: unhealthy container');
  await runner.close();
});

test('health: adoption from an earlier state reports STARTING, then RUNNING once healthy', async (t) => {
  const exec = new FakeExecutor('node1');
  const task = fakeTask({ nodeId: 'node1', healthcheck: HC });
  exec.addTaskContainer(task, { health: 'starting' });
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner({ ...task, status: { ...task.status, state: 'ready' } }, exec.controller(task), (_id, s) => reported.push(s), undefined, 20, 0, 5);
  runner.start();
  await until(() => runner.observed === 'starting', 'starting');
  exec.setHealth(task.id, 'healthy');
  await until(() => runner.observed === 'running', 'running');
  t.deepEqual(reported.map((s) => s.state), ['starting', 'running']);
  t.deepEqual(exec.ops, []);
  await runner.close();
});

test('health: adoption of an unhealthy running container is FAILED; healthy or unchecked is RUNNING', async (t) => {
  for (const [health, expected] of [['unhealthy', 'failed'], ['healthy', 'running'], [undefined, 'running']] as const) {
    const exec = new FakeExecutor('node1');
    const task = fakeTask({ nodeId: 'node1', healthcheck: HC });
    exec.addTaskContainer(task, health ? { health } : {});
    const reported: TaskStatus[] = [];
    const runner = new TaskRunner({ ...task, status: { ...task.status, state: 'starting' } }, exec.controller(task), (_id, s) => reported.push(s), undefined, 20, 0, 5);
    runner.start();
    await until(() => runner.observed === expected, expected);
    t.deepEqual(reported.map((s) => s.state), [expected], String(health));
    if (expected === 'failed') t.is(reported[0]!.err, 'task: unhealthy container');
    t.deepEqual(exec.ops, []);
    await runner.close();
  }
});

test('health: no health status (no check, or NONE) goes straight to RUNNING', async (t) => {
  const exec = new FakeExecutor('node1');
  const task = fakeTask({ nodeId: 'node1', healthcheck: { test: ['NONE'] } });
  const reported: TaskStatus[] = [];
  const runner = new TaskRunner(task, exec.controller(task), (_id, s) => reported.push(s), undefined, 20, 0, 5);
  runner.start();
  await until(() => runner.observed === 'running', 'running');
  t.is(exec.byTask(task.id)!.health, undefined);
  exec.exit(task.id, 0);
  await until(() => runner.observed === 'complete', 'complete');
  await runner.close();
});
