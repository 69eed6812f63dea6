import test from 'ava';
import { Agent } from '../src/agent.js';
import { LABELS } from '../src/exec.js';
import { FakeDispatcher, FakeExecutor, FakeMetrics, fakeTask, until } from '@shoal/testkit';

const NODE = 'node1';

function setup(opts: { heartbeatPeriodMs?: number } = {}) {
  const dispatcher = new FakeDispatcher(opts.heartbeatPeriodMs ?? 50);
  const executor = new FakeExecutor(NODE);
  const agent = new Agent({
    nodeId: NODE,
    addr: '127.0.0.1',
    dispatcher,
    executor,
    statusBatchMs: 5,
    retryMs: 20,
    backoff: { initialMs: 5, maxMs: 40 },
  });
  return { dispatcher, executor, agent };
}

test('opens a session with the node description and heartbeats', async (t) => {
  const { dispatcher, agent } = setup();
  agent.start();
  await until(() => dispatcher.heartbeats >= 2, 'two heartbeats');
  const [s] = dispatcher.sessionsOf(NODE);
  t.is(s!.request.description.hostname, `fake-${NODE}`);
  t.is(s!.request.addr, '127.0.0.1');
  t.is(agent.state().sessionId, s!.id);
  await agent.stop();
});

test('runs every assigned task to RUNNING, reporting each state through the dispatcher', async (t) => {
  const { dispatcher, executor, agent } = setup();
  const tasks = [1, 2, 3].map((slot) => fakeTask({ nodeId: NODE, slot }));
  for (const task of tasks) dispatcher.setTask(task);
  agent.start();
  await until(() => tasks.every((x) => dispatcher.stateOf(x.id) === 'running'), '3 tasks running');
  t.is(executor.running().length, 3);
  for (const task of tasks) {
    t.deepEqual(dispatcher.statesOf(task.id), ['accepted', 'preparing', 'ready', 'starting', 'running']);
    const c = executor.byTask(task.id)!;
    t.is(c.name, `web.${task.slot}.${task.id}`);
    t.is(c.labels[LABELS.nodeId], NODE);
    t.is(c.labels[LABELS.slot], String(task.slot));
    t.is(dispatcher.tasks.get(task.id)!.status.containerId, c.id);
  }
  await agent.stop();
  t.is(executor.running().length, 3, 'stopping the agent leaves containers running');
});

test('a killed container is reported FAILED; the agent does not restart it; a replacement task runs', async (t) => {
  const { dispatcher, executor, agent } = setup();
  const first = fakeTask({ nodeId: NODE, slot: 1 });
  dispatcher.setTask(first);
  agent.start();
  await until(() => dispatcher.stateOf(first.id) === 'running', 'running');
  executor.exit(first.id, 137);
  await until(() => dispatcher.stateOf(first.id) === 'failed', 'failed');
  t.is(dispatcher.tasks.get(first.id)!.status.err, 'task: non-zero exit (137)');
  t.is(executor.byTask(first.id)!.starts, 1);
  // The test plays the orchestrator: shut the old task down, add a replacement in the same slot.
  dispatcher.setDesired(first.id, 'shutdown');
  const second = fakeTask({ nodeId: NODE, slot: 1 });
  dispatcher.setTask(second);
  await until(() => dispatcher.stateOf(second.id) === 'running', 'replacement running');
  t.is(executor.running().length, 1);
  // The old task leaves the set (task history trimmed): its container goes.
  dispatcher.removeTask(first.id);
  await until(() => !executor.byTask(first.id), 'old container removed');
  t.truthy(executor.byTask(second.id)!.running);
  await agent.stop();
});

test('desired SHUTDOWN stops the container and reports SHUTDOWN; desired REMOVE (leaving the set) removes it', async (t) => {
  const { dispatcher, executor, agent } = setup();
  const task = fakeTask({ nodeId: NODE, stopGracePeriodMs: 2000 });
  dispatcher.setTask(task);
  agent.start();
  await until(() => dispatcher.stateOf(task.id) === 'running', 'running');
  dispatcher.setDesired(task.id, 'shutdown');
  await until(() => dispatcher.stateOf(task.id) === 'shutdown', 'shutdown');
  const c = executor.byTask(task.id)!;
  t.false(c.running);
  t.is(c.lastGraceMs, 2000);
  dispatcher.setDesired(task.id, 'remove');
  await until(() => executor.containers.size === 0, 'container removed');
  await agent.stop();
});

test('image not present and not pullable → REJECTED with the image in the error', async (t) => {
  const { dispatcher, agent } = setup();
  const task = fakeTask({ nodeId: NODE, image: 'foo' });
  dispatcher.setTask(task);
  agent.start();
  await until(() => dispatcher.stateOf(task.id) === 'rejected', 'rejected');
  t.regex(dispatcher.tasks.get(task.id)!.status.err!, /^No such image: foo:latest \(not present locally and could not be pulled/);
  await agent.stop();
});

test('on start: adopts containers of assigned tasks, removes this node\'s unassigned ones, never touches others', async (t) => {
  const { dispatcher, executor, agent } = setup();
  const kept = fakeTask({ nodeId: NODE, slot: 1 });
  dispatcher.setTask({ ...kept, status: { ...kept.status, state: 'running' } });
  const keptC = executor.addTaskContainer(kept);
  const gone = fakeTask({ nodeId: NODE, slot: 2 });
  const goneC = executor.addTaskContainer(gone);
  const foreign = executor.addContainer('someone-elses', { 'com.example': 'x' });
  const otherNode = executor.addContainer('web.3.other', { ...goneC.labels, [LABELS.taskId]: 'othertask', [LABELS.nodeId]: 'node2' });
  agent.start();
  await until(() => !executor.containers.has(goneC.id), 'orphan removed');
  await until(() => keptC.waiters.size === 1, 'adopted container watched');
  t.true(executor.containers.has(foreign.id));
  t.true(executor.containers.has(otherNode.id));
  t.true(keptC.running);
  t.is(keptC.starts, 1);
  t.deepEqual(executor.ops, [`remove ${goneC.name}`], 'nothing created or started');
  await agent.stop();
});

test('a restarted agent adopts its running containers without duplicating them', async (t) => {
  const { dispatcher, executor, agent } = setup();
  const tasks = [1, 2].map((slot) => fakeTask({ nodeId: NODE, slot }));
  for (const task of tasks) dispatcher.setTask(task);
  agent.start();
  await until(() => tasks.every((x) => dispatcher.stateOf(x.id) === 'running'), 'running');
  await agent.stop();
  const opsBefore = executor.ops.length;
  const again = new Agent({ nodeId: NODE, addr: '127.0.0.1', dispatcher, executor, statusBatchMs: 5 });
  again.start();
  await until(() => tasks.every((x) => executor.byTask(x.id)!.waiters.size === 1), 'containers watched by the new agent');
  t.is(executor.containers.size, 2);
  t.is(executor.ops.length, opsBefore, 'no container created, started or removed');
  executor.exit(tasks[0]!.id, 1);
  await until(() => dispatcher.stateOf(tasks[0]!.id) === 'failed', 'failure seen by the new agent');
  await again.stop();
});

test('re-opens the session after it ends and resends statuses that could not be delivered', async (t) => {
  const { dispatcher, executor, agent } = setup();
  const task = fakeTask({ nodeId: NODE });
  dispatcher.setTask(task);
  agent.start();
  await until(() => dispatcher.stateOf(task.id) === 'running', 'running');
  const sessions = agent.state().sessions;
  // The manager forgets the session and refuses the next two opens; meanwhile the container dies.
  dispatcher.failOpens = 2;
  dispatcher.endSessions();
  executor.exit(task.id, 2);
  await until(() => agent.state().sessions > sessions, 'a new session');
  await until(() => dispatcher.stateOf(task.id) === 'failed', 'failure delivered on the new session');
  t.true(dispatcher.opens >= sessions + 3);
  await agent.stop();
});

test('a failed heartbeat ends the session and a new one is opened', async (t) => {
  const { dispatcher, agent } = setup({ heartbeatPeriodMs: 10 });
  agent.start();
  await until(() => agent.state().sessions === 1 && dispatcher.heartbeats > 0, 'first session');
  dispatcher.failHeartbeats = true;
  await until(() => agent.state().sessionId === undefined, 'session dropped');
  dispatcher.failHeartbeats = false;
  await until(() => agent.state().sessions >= 2 && agent.state().sessionId !== undefined, 'second session');
  t.is(dispatcher.sessionsOf(NODE).length, 1);
  await agent.stop();
});

test('a heartbeat that never answers times out (2 periods) and the agent opens a new session', async (t) => {
  const { dispatcher, agent } = setup({ heartbeatPeriodMs: 10 });
  agent.start();
  await until(() => agent.state().sessions === 1 && dispatcher.heartbeats > 0, 'first session');
  dispatcher.hangHeartbeats = true;
  await until(() => agent.state().sessions >= 2, 'a second session after the hung heartbeat');
  dispatcher.hangHeartbeats = false;
  await until(() => agent.state().sessionId !== undefined, 'session open');
  t.pass();
  await agent.stop();
});

test('an engine that does not answer keeps the agent retrying, not crashing', async (t) => {
  const { dispatcher, executor, agent } = setup();
  executor.describeError = new Error('Cannot connect to the Docker daemon');
  agent.start();
  await new Promise((r) => setTimeout(r, 50));
  t.is(dispatcher.opens, 0);
  executor.describeError = undefined;
  await until(() => agent.state().sessionId !== undefined, 'session once the engine answers');
  await agent.stop();
});

test('Agent needs a node ID', (t) => {
  const { dispatcher, executor } = setup();
  t.throws(() => new Agent({ nodeId: '', addr: '', dispatcher, executor }), { message: /nodeId is empty/ });
});

test('metrics: a task is timed from ASSIGNED to RUNNING; one that ends first counts as ended; session and tasks at scrape time', async (t) => {
  const dispatcher = new FakeDispatcher(50);
  const executor = new FakeExecutor(NODE);
  const metrics = new FakeMetrics();
  const agent = new Agent({ nodeId: NODE, addr: '127.0.0.1', dispatcher, executor, statusBatchMs: 5, retryMs: 20, metrics });
  const ok = fakeTask({ nodeId: NODE, slot: 1 });
  const bad = fakeTask({ nodeId: NODE, slot: 2, image: 'not/pullable:latest' });
  dispatcher.setTask(ok);
  dispatcher.setTask(bad);
  agent.start();
  await until(() => dispatcher.stateOf(ok.id) === 'running' && dispatcher.stateOf(bad.id) === 'rejected', 'one running, one rejected');
  const seconds = metrics.observations('shoal_agent_task_start_duration_seconds');
  t.is(seconds.length, 1);
  t.true(seconds[0]! >= 0 && seconds[0]! < 10);
  t.is(metrics.value('shoal_agent_task_starts_total', { result: 'running' }), 1);
  t.is(metrics.value('shoal_agent_task_starts_total', { result: 'ended' }), 1);
  t.is(metrics.value('shoal_agent_sessions_opened_total'), 1);
  metrics.collect();
  t.is(metrics.value('shoal_agent_session_open'), 1);
  t.is(metrics.value('shoal_agent_tasks'), 2);
  await agent.stop();
  t.is(metrics.value('shoal_agent_session_open'), 0);
  t.is(metrics.hookCount, 0);
});
