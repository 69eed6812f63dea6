import test from 'ava';
import type { HealthConfig } from '@shoal/api';
import { ContainerNotFoundError, ImageUnavailableError, LABELS } from '@shoal/agent';
import { fakeTask, until } from '@shoal/testkit';
import { DockerExecutor } from '../src/executor.js';
import { dockerOptions } from '../src/docker-host.js';
import { HTTPD, IMAGE, RUN_LABEL, SLEEP_TERMABLE, cleanup, dockerClient, httpGet, requireDocker, runContainers, runId } from './helpers.js';

const docker = dockerClient();
const RUN = runId();
const NODE = `${RUN}n1`;
const exec = new DockerExecutor({ nodeId: NODE });
const runLabels = { [RUN_LABEL]: RUN };

test.before(async () => {
  await requireDocker(docker);
});
test.after.always(async () => {
  await cleanup(docker, RUN);
});

test('dockerOptions parses unix:// and tcp:// and names a bad value', (t) => {
  t.deepEqual(dockerOptions('unix:///run/h1/docker.sock'), { socketPath: '/run/h1/docker.sock' });
  t.deepEqual(dockerOptions('tcp://10.0.0.2:2376'), { host: '10.0.0.2', port: 2376, protocol: 'http' });
  t.deepEqual(dockerOptions('tcp://[::1]'), { host: '::1', port: 2375, protocol: 'http' });
  t.throws(() => dockerOptions('/var/run/docker.sock'), { message: /"\/var\/run\/docker.sock" is not understood; use unix:\/\/\// });
  t.throws(() => new DockerExecutor({ nodeId: '' }), { message: /nodeId is empty/ });
});

test('describe() reports the engine', async (t) => {
  const d = await exec.describe();
  t.truthy(d.hostname);
  t.is(d.platform.os, 'linux');
  t.truthy(d.platform.architecture);
  t.true(d.resources.nanoCpus >= 1e9);
  t.true(d.resources.memoryBytes > 0);
  t.regex(d.engine.engineVersion, /^\d+\./);
  const named = new DockerExecutor({ nodeId: NODE, hostname: 'override' });
  t.is((await named.describe()).hostname, 'override');
});

test('controller: prepare → start → wait → shutdown → remove of a labelled container', async (t) => {
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-svc`, slot: 2, command: SLEEP_TERMABLE, labels: runLabels, env: ['GREETING=hi'], stopGracePeriodMs: 5000 });
  const ctl = exec.controller(task);
  t.deepEqual(await ctl.inspect(), { exists: false, running: false, started: false });
  await ctl.prepare();
  await ctl.prepare(); // idempotent
  const created = await ctl.inspect();
  t.true(created.exists);
  t.false(created.started);

  // Checked through the Engine API, independently of the executor.
  const info = await docker.getContainer(created.containerId!).inspect();
  t.is(info.Name, `/${RUN}-svc.2.${task.id}`);
  t.like(info.Config.Labels, {
    [LABELS.serviceId]: task.serviceId,
    [LABELS.serviceName]: `${RUN}-svc`,
    [LABELS.taskId]: task.id,
    [LABELS.slot]: '2',
    [LABELS.nodeId]: NODE,
    [RUN_LABEL]: RUN,
  });
  t.true(info.Config.Env.includes('GREETING=hi'));
  t.deepEqual(info.Config.Entrypoint, SLEEP_TERMABLE);
  t.is(info.HostConfig.RestartPolicy?.Name, 'no');

  await ctl.start();
  await ctl.start(); // idempotent
  const running = await ctl.inspect();
  t.true(running.running);
  t.true(running.started);
  t.true(running.pid! > 0);

  const waiting = ctl.wait();
  await ctl.shutdown();
  t.is((await waiting).exitCode, 0, 'the trap exits 0 on SIGTERM');
  const stopped = await ctl.inspect();
  t.false(stopped.running);
  t.is(stopped.exitCode, 0);
  await ctl.shutdown(); // already stopped: fine
  await ctl.terminate(); // not running: fine

  await ctl.remove();
  await ctl.remove(); // already gone: fine
  t.false((await ctl.inspect()).exists);
  await t.throwsAsync(ctl.wait(), { instanceOf: ContainerNotFoundError });
  await t.throwsAsync(ctl.start(), { instanceOf: ContainerNotFoundError });
});

test('controller: args run as the image command; a non-zero exit code comes back from wait()', async (t) => {
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-exit`, args: ['sh', '-c', 'exit 7'], labels: runLabels });
  const ctl = exec.controller(task);
  await ctl.prepare();
  await ctl.start();
  t.is((await ctl.wait()).exitCode, 7);
  t.like(await ctl.inspect(), { exists: true, running: false, started: true, exitCode: 7 });
  await ctl.remove();
});

test('controller: wait() stops waiting when its signal aborts; the container keeps running', async (t) => {
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-abort`, command: SLEEP_TERMABLE, labels: runLabels });
  const ctl = exec.controller(task);
  await ctl.prepare();
  await ctl.start();
  const ac = new AbortController();
  const waiting = ctl.wait(ac.signal);
  ac.abort();
  await t.throwsAsync(waiting);
  t.true((await ctl.inspect()).running);
  await ctl.terminate();
  t.is((await ctl.wait()).exitCode, 137);
  await ctl.remove();
});

test('an image that is missing and not pullable: prepare rejects naming the image, nothing is created', async (t) => {
  // A registry on a closed loopback port: the pull fails at once without leaving the machine.
  const image = '127.0.0.1:1/shoal-nosuch';
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-noimg`, image, labels: runLabels });
  const ctl = exec.controller(task);
  const err = await t.throwsAsync(ctl.prepare(), { instanceOf: ImageUnavailableError });
  t.regex(err!.message, /^No such image: 127\.0\.0\.1:1\/shoal-nosuch:latest \(not present locally and could not be pulled: .+\)$/);
  t.false(err!.message.includes('\n'));
  t.false((await ctl.inspect()).exists);
});

test('list() sees only containers labelled for its node; removeOrphan() refuses anything else', async (t) => {
  // A node of its own: the other tests of this file run concurrently on NODE.
  const LNODE = `${RUN}n3`;
  const exec = new DockerExecutor({ nodeId: LNODE });
  const mine = fakeTask({ nodeId: LNODE, serviceName: `${RUN}-list`, command: SLEEP_TERMABLE, labels: runLabels });
  await exec.controller(mine).prepare();
  const otherNode = new DockerExecutor({ nodeId: `${RUN}n2` });
  const theirs = fakeTask({ nodeId: `${RUN}n2`, serviceName: `${RUN}-list`, command: SLEEP_TERMABLE, labels: runLabels });
  await otherNode.controller(theirs).prepare();
  const foreign = await docker.createContainer({ name: `${RUN}-foreign`, Image: IMAGE, Cmd: ['true'], Labels: runLabels });

  const listed = await exec.list();
  t.deepEqual(listed.map((c) => c.taskId), [mine.id]);
  t.like(listed[0], { name: `${RUN}-list.1.${mine.id}`, serviceName: `${RUN}-list`, slot: 1, nodeId: LNODE, running: false });

  await t.throwsAsync(exec.removeOrphan(foreign.id), { message: /is not a Shoal task of node/ });
  const theirsId = (await otherNode.list())[0]!.containerId;
  await t.throwsAsync(exec.removeOrphan(theirsId), { message: /is not a Shoal task of node/ });
  t.is((await runContainers(docker, RUN, [`${LABELS.serviceName}=${RUN}-list`])).length, 2);
  t.truthy(await docker.getContainer(foreign.id).inspect());

  await exec.removeOrphan(listed[0]!.containerId);
  await exec.removeOrphan(listed[0]!.containerId); // already gone: fine
  t.deepEqual(await exec.list(), []);
  await otherNode.removeOrphan(theirsId);
});

test('a container with the task\'s name but without Shoal labels is never adopted', async (t) => {
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-squat`, labels: runLabels });
  await docker.createContainer({ name: `${RUN}-squat.1.${task.id}`, Image: IMAGE, Cmd: ['true'], Labels: runLabels });
  await t.throwsAsync(exec.controller(task).prepare(), { message: /is taken by a container Shoal does not manage/ });
});

test('controller: hostname and env templates are expanded; an unknown field rejects prepare', async (t) => {
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-tmpl`, slot: 4, command: SLEEP_TERMABLE, labels: runLabels, env: ['SLOT={{.Task.Slot}}', 'NODE={{.Node.ID}}'] });
  task.spec.container.hostname = '{{.Node.Hostname}}-{{.Task.Slot}}';
  const ctl = exec.controller(task);
  await ctl.prepare();
  const info = await docker.getContainer((await ctl.inspect()).containerId!).inspect();
  const engineHost = (await exec.describe()).hostname;
  t.is(info.Config.Hostname, `${engineHost}-4`.slice(0, 63));
  t.true(info.Config.Env.includes('SLOT=4'));
  t.true(info.Config.Env.includes(`NODE=${NODE}`));
  await ctl.remove();

  const bad = fakeTask({ nodeId: NODE, serviceName: `${RUN}-tmplbad`, labels: runLabels, env: ['X={{.Task.Nope}}'] });
  await t.throwsAsync(exec.controller(bad).prepare(), { message: /unknown field \.Task\.Nope/ });
});

test('controller: a host-mode port with published 0 is bound by the engine and reported; HTTP answers on it', async (t) => {
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-port`, command: HTTPD, labels: runLabels });
  task.endpoint = { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'host' }], virtualIps: [] };
  const ctl = exec.controller(task);
  await ctl.prepare();
  t.is((await ctl.inspect()).ports, undefined, 'not bound before start');
  await ctl.start();
  const st = await ctl.inspect();
  t.is(st.ports?.length, 1);
  const port = st.ports![0]!;
  t.like(port, { protocol: 'tcp', targetPort: 80, publishMode: 'host' });
  t.true(port.publishedPort > 0);
  const page = await until(() => httpGet('127.0.0.1', port.publishedPort).catch(() => ''), 'HTTP on the published port', 10_000);
  t.regex(page, /^HTTP\/1\.[01] 200/);
  await ctl.remove();
});

test('controller: with a task network the container joins it, gets its DNS servers and reports its address there', async (t) => {
  // A private bridge network stands in for the node's overlay bridge (docs/NETWORKING.md).
  const name = `${RUN}-net`;
  const third = 200 + Math.floor(Math.random() * 50);
  await docker.createNetwork({ Name: name, Driver: 'bridge', IPAM: { Driver: 'default', Config: [{ Subnet: `10.97.${third}.0/24`, Gateway: `10.97.${third}.1` }] } });
  try {
    let waited = 0;
    const netExec = new DockerExecutor({ nodeId: NODE, network: { name, ready: async () => { waited++; return { dns: [`10.97.${third}.1`] }; } } });
    const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-net`, command: SLEEP_TERMABLE, labels: runLabels });
    const ctl = netExec.controller(task);
    await ctl.prepare();
    t.is(waited, 1, 'create waits for the network to be ready');
    await ctl.start();
    const st = await ctl.inspect();
    t.regex(st.addresses?.[0] ?? '', new RegExp(`^10\\.97\\.${third}\\.\\d+/24$`));
    const info = await docker.getContainer(st.containerId!).inspect();
    t.deepEqual(info.HostConfig.Dns, [`10.97.${third}.1`]);
    t.is(info.HostConfig.NetworkMode, name);
    await ctl.remove();
    // A network that never gets ready rejects the task with its reason.
    const broken = new DockerExecutor({ nodeId: NODE, network: { name, ready: async () => { throw new Error('overlay not ready: no subnet'); } } });
    const bad = fakeTask({ nodeId: NODE, serviceName: `${RUN}-netbad`, command: SLEEP_TERMABLE, labels: runLabels });
    await t.throwsAsync(broken.controller(bad).prepare(), { message: /overlay not ready: no subnet/ });
  } finally {
    await docker.getNetwork(name).remove().catch(() => undefined);
  }
});

/** Runs `cmd` in a container (`docker exec`) and waits for it to end. */
async function dockerExec(id: string, cmd: string[]): Promise<void> {
  const e = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: false, AttachStderr: false });
  // dockerode hands back the response as a stream even when detached: close it, or its socket
  // keeps the test process alive after the last test.
  const s = (await e.start({ Detach: true })) as unknown as { destroy?: () => void } | undefined;
  s?.destroy?.();
  await until(async () => !(await e.inspect()).Running, `docker exec ${cmd.join(' ')}`);
}

test('controller: a spec health check becomes the engine\'s Healthcheck (ns); inspect() reports starting → unhealthy → healthy', async (t) => {
  const hc = { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, timeoutMs: 2500, startPeriodMs: 0, retries: 1 };
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-health`, command: SLEEP_TERMABLE, labels: runLabels, healthcheck: hc });
  const ctl = exec.controller(task);
  await ctl.prepare();
  const id = (await ctl.inspect()).containerId!;
  const info = await docker.getContainer(id).inspect();
  t.like(info.Config.Healthcheck, { Test: ['CMD-SHELL', 'test -f /tmp/ok'], Interval: 1_000_000_000, Timeout: 2_500_000_000, Retries: 1 });
  t.is((await ctl.inspect()).health, undefined, 'no health status before it runs');
  await ctl.start();
  const first = await ctl.inspect();
  t.true(first.running);
  t.true(first.health === 'starting' || first.health === 'unhealthy', `got ${first.health}`);
  // /tmp/ok is missing: one failed check (retries 1) makes it unhealthy.
  await until(async () => (await ctl.inspect()).health === 'unhealthy', 'unhealthy', 15_000);
  await dockerExec(id, ['touch', '/tmp/ok']);
  await until(async () => (await ctl.inspect()).health === 'healthy', 'healthy', 15_000);
  await ctl.terminate();
  const stopped = await ctl.inspect();
  t.false(stopped.running);
  t.is(stopped.health, undefined, 'health is reported only while running');
  await ctl.remove();
});

test('controller: no health status without a check, or with ["NONE"]', async (t) => {
  const cases: [string, HealthConfig | undefined][] = [['nohc', undefined], ['nonehc', { test: ['NONE'] }]];
  for (const [suffix, healthcheck] of cases) {
    const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-${suffix}`, command: SLEEP_TERMABLE, labels: runLabels, ...(healthcheck ? { healthcheck } : {}) });
    const ctl = exec.controller(task);
    await ctl.prepare();
    await ctl.start();
    const st = await ctl.inspect();
    t.true(st.running);
    t.is(st.health, undefined, suffix);
    const info = await docker.getContainer(st.containerId!).inspect();
    if (healthcheck) t.deepEqual(info.Config.Healthcheck?.Test, ['NONE']);
    else t.is(info.Config.Healthcheck, undefined);
    await ctl.remove();
  }
});
