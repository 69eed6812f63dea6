import test from 'ava';
import type { TaskState, TaskStatus } from '@shoal/api';
import { TaskRunner } from '../src/task.js';
import { FakeExecutor, fakeTask, until } from '../src/testing/index.js';

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
