import test from 'ava';
import type Dockerode from 'dockerode';
import { Agent, LABELS } from '@shoal/agent';
import { FakeDispatcher, fakeTask, until } from '@shoal/testkit';
import { DockerExecutor } from '../src/executor.js';
import { HTTPD, RUN_LABEL, cleanup, dockerClient, httpGet, requireDocker, runContainers, runId } from './helpers.js';

// The Agent driving real containers through DockerExecutor; FakeDispatcher plays the managers.

const docker = dockerClient();
const RUN = runId();

test.before(async () => {
  await requireDocker(docker);
});
test.after.always(async () => {
  await cleanup(docker, RUN);
});

function running(docker: Dockerode, node: string): Promise<Dockerode.ContainerInfo[]> {
  return runContainers(docker, RUN, [`${LABELS.nodeId}=${node}`]).then((cs) => cs.filter((c) => c.State === 'running'));
}

test('3 tasks → 3 labelled containers serving HTTP; a killed one is FAILED and replaced; a restarted agent adopts; removal cleans up', async (t) => {
  const NODE = `${RUN}n1`;
  const dispatcher = new FakeDispatcher(200);
  const executor = new DockerExecutor({ nodeId: NODE });
  const newAgent = () => new Agent({ nodeId: NODE, addr: '127.0.0.1', dispatcher, executor, statusBatchMs: 20, retryMs: 200 });
  const spec = { nodeId: NODE, serviceName: `${RUN}-web`, serviceId: `${RUN}svc`, command: HTTPD, labels: { [RUN_LABEL]: RUN }, stopGracePeriodMs: 2000 };
  const tasks = [1, 2, 3].map((slot) => fakeTask({ ...spec, slot }));
  for (const task of tasks) dispatcher.setTask(task);

  let agent = newAgent();
  agent.start();
  await until(() => tasks.every((x) => dispatcher.stateOf(x.id) === 'running'), '3 tasks RUNNING', 30_000);

  // Independently of Shoal: exactly 3 running containers with the labels and names.
  const cs = await running(docker, NODE);
  t.is(cs.length, 3);
  for (const task of tasks) {
    const c = cs.find((x) => x.Labels[LABELS.taskId] === task.id);
    t.truthy(c, `container of slot ${task.slot}`);
    t.is(c!.Names[0], `/${RUN}-web.${task.slot}.${task.id}`);
    t.is(c!.Labels[LABELS.slot], String(task.slot));
    t.is(c!.Labels[LABELS.serviceName], `${RUN}-web`);
    t.is(c!.Labels[LABELS.serviceId], `${RUN}svc`);
    t.is(dispatcher.tasks.get(task.id)!.status.containerId, c!.Id);
    const ip = (await docker.getContainer(c!.Id).inspect()).NetworkSettings.IPAddress;
    const page = await until(() => httpGet(ip).catch(() => ''), `HTTP from slot ${task.slot}`, 10_000);
    t.regex(page, /^HTTP\/1\.[01] 200/);
    t.true(page.trimEnd().endsWith(c!.Id.slice(0, 12)), 'the page is the container hostname');
  }

  // Kill one behind Shoal's back: FAILED with the exit code; the agent does not restart it.
  const victim = tasks[1]!;
  const victimId = dispatcher.tasks.get(victim.id)!.status.containerId!;
  await docker.getContainer(victimId).kill();
  await until(() => dispatcher.stateOf(victim.id) === 'failed', 'killed task FAILED', 10_000);
  t.is(dispatcher.tasks.get(victim.id)!.status.err, 'task: non-zero exit (137)');
  t.is((await running(docker, NODE)).length, 2);

  // The managers replace it (the test plays the orchestrator): old task shut down, new one in slot 2.
  dispatcher.setDesired(victim.id, 'shutdown');
  const replacement = fakeTask({ ...spec, slot: 2 });
  dispatcher.setTask(replacement);
  await until(() => dispatcher.stateOf(replacement.id) === 'running', 'replacement RUNNING', 30_000);
  const live = tasks.filter((x) => x !== victim).concat(replacement);
  const before = (await running(docker, NODE)).map((c) => c.Id).sort();
  t.is(before.length, 3);

  // Agent restart: the new agent adopts the same 3 containers, creating none.
  await agent.stop();
  agent = newAgent();
  agent.start();
  await until(() => agent.state().assigned.length === 4, 'new agent got its assignments', 10_000);
  // Give the new agent's runners and orphan sweep a moment to act (they must do nothing).
  await until(async () => (await runContainers(docker, RUN, [`${LABELS.nodeId}=${NODE}`])).length === 4, 'container count settles', 5_000);
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual((await running(docker, NODE)).map((c) => c.Id).sort(), before, 'same containers, no duplicates');
  t.is((await runContainers(docker, RUN, [`${LABELS.nodeId}=${NODE}`])).length, 4, '3 running + the killed one, kept until its task leaves the set');

  // And it watches them: killing another is seen by the new agent.
  const second = live[0]!;
  await docker.getContainer(dispatcher.tasks.get(second.id)!.status.containerId!).kill();
  await until(() => dispatcher.stateOf(second.id) === 'failed', 'failure seen after restart', 10_000);

  // Service removed: shut down, then leave the set → every container goes.
  for (const task of [...live, victim]) dispatcher.setDesired(task.id, 'shutdown');
  await until(() => live.every((x) => ['shutdown', 'failed'].includes(dispatcher.stateOf(x.id))), 'all shut down', 20_000);
  for (const task of [...live, victim]) dispatcher.removeTask(task.id);
  await until(async () => (await runContainers(docker, RUN, [`${LABELS.nodeId}=${NODE}`])).length === 0, 'no containers left', 20_000);
  await agent.stop();
  t.pass();
});

test('an agent started over leftover containers removes the ones whose tasks are not assigned', async (t) => {
  const NODE = `${RUN}n2`;
  const executor = new DockerExecutor({ nodeId: NODE });
  const spec = { nodeId: NODE, serviceName: `${RUN}-old`, command: HTTPD, labels: { [RUN_LABEL]: RUN }, stopGracePeriodMs: 1000 };
  const stale = fakeTask({ ...spec, slot: 1 });
  await executor.controller(stale).prepare();
  await executor.controller(stale).start();
  const dispatcher = new FakeDispatcher(200);
  const agent = new Agent({ nodeId: NODE, addr: '127.0.0.1', dispatcher, executor, statusBatchMs: 20 });
  agent.start();
  await until(async () => (await runContainers(docker, RUN, [`${LABELS.nodeId}=${NODE}`])).length === 0, 'stale container removed', 10_000);
  await agent.stop();
  t.pass();
});

test('an image that is not present and not pullable → REJECTED naming the image', async (t) => {
  const NODE = `${RUN}n3`;
  const dispatcher = new FakeDispatcher(200);
  const executor = new DockerExecutor({ nodeId: NODE });
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-bad`, image: '127.0.0.1:1/nosuch', labels: { [RUN_LABEL]: RUN } });
  dispatcher.setTask(task);
  const agent = new Agent({ nodeId: NODE, addr: '127.0.0.1', dispatcher, executor, statusBatchMs: 20 });
  agent.start();
  await until(() => dispatcher.stateOf(task.id) === 'rejected', 'REJECTED', 10_000);
  t.regex(dispatcher.tasks.get(task.id)!.status.err!, /^No such image: 127\.0\.0\.1:1\/nosuch:latest \(not present locally and could not be pulled/);
  t.deepEqual(dispatcher.statesOf(task.id), ['accepted', 'preparing', 'rejected']);
  await agent.stop();
});

test('RUNNING carries the host-mode ports the engine bound', async (t) => {
  const NODE = `${RUN}n4`;
  const dispatcher = new FakeDispatcher(200);
  const executor = new DockerExecutor({ nodeId: NODE });
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-hp`, command: HTTPD, labels: { [RUN_LABEL]: RUN }, stopGracePeriodMs: 1000 });
  task.endpoint = { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'host' }], virtualIps: [] };
  dispatcher.setTask(task);
  const agent = new Agent({ nodeId: NODE, addr: '127.0.0.1', dispatcher, executor, statusBatchMs: 20 });
  agent.start();
  await until(() => dispatcher.stateOf(task.id) === 'running', 'RUNNING', 10_000);
  const ports = dispatcher.tasks.get(task.id)!.status.ports;
  t.is(ports?.length, 1);
  t.true(ports![0]!.publishedPort > 0);
  await agent.stop();
});
