import test from 'ava';
import { until } from '@shoal/testkit';
import { startSwarm, stopAll, type TestNode } from './fixtures.js';

// Secrets and configs through whole nodes, in process (real Raft, gRPC with mTLS, fake engines).

const b64 = (s: string) => Buffer.from(s).toString('base64');
const SECRET = 'pw-0d5e4c';

/** What each task on a node got, as `target=content`. */
function filesOn(n: TestNode): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [taskId, files] of n.executor!.files) out[taskId] = files.map((f) => `${f.target}=${f.data.toString()}`);
  return out;
}

test('a secret reaches only the node that runs a task using it; a templated config renders per task; rotating the config replaces the tasks', async (t) => {
  const { nodes } = await startSwarm(1, 2);
  t.teardown(() => stopAll(nodes));
  const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
  await n1.call('secret.create', { name: 'db_pass', data: b64(SECRET) });
  await n1.call('config.create', { name: 'app_v1', templateDriver: 'golang', data: b64('v1 slot={{ .Task.Slot }} host={{ .Node.Hostname }} pw={{ secret "db" }}') });
  await n1.call('service.create', {
    name: 'app', image: 'shoal/busybox:latest', replicas: 2, constraints: ['node.hostname==node2'], update: { parallelism: 0, monitorMs: 0 },
    secrets: [{ source: 'db_pass', target: 'db', mode: 0o400 }], configs: [{ source: 'app_v1', target: '/etc/app.conf' }],
  });
  await until(async () => (await n1.call('service.ls', {}))[0]?.running === 2, 'two tasks running on node2', 30_000);
  const v1 = Object.values(filesOn(n2)).map((f) => f.join(' ')).sort();
  t.deepEqual(v1, [1, 2].map((slot) => `/run/secrets/db=${SECRET} /etc/app.conf=v1 slot=${slot} host=node2 pw=${SECRET}`));
  t.is(n2.executor!.files.values().next().value![0]!.mode, 0o400);
  for (const other of [n1, n3]) {
    t.deepEqual(filesOn(other), {}, `${other.name} runs no task with it`);
    t.deepEqual(other.node.agentForTests!.state().secrets, [], `${other.name}'s agent never received the secret`);
    t.deepEqual(other.node.agentForTests!.state().configs, []);
  }
  t.is(n2.node.agentForTests!.state().secrets.length, 1);

  // Config rotation, Docker's way: a new config, the service moved to it; the tasks are replaced.
  const before = (await n1.call('service.ps', { ref: 'app' })).tasks.filter((x) => x.desiredState === 'running').map((x) => x.id);
  await n1.call('config.create', { name: 'app_v2', templateDriver: 'golang', data: b64('v2 slot={{ .Task.Slot }}') });
  await n1.call('service.update', { ref: 'app', spec: { configs: [{ source: 'app_v2', target: '/etc/app.conf' }] } });
  await until(async () => {
    const ps = (await n1.call('service.ps', { ref: 'app' })).tasks.filter((x) => x.desiredState === 'running' && x.status.state === 'running');
    return ps.length === 2 && ps.every((x) => !before.includes(x.id));
  }, 'two new tasks running', 30_000);
  await until(() => Object.keys(filesOn(n2)).every((id) => !before.includes(id)), 'the old tasks\' files are gone', 15_000);
  t.deepEqual(Object.values(filesOn(n2)).map((f) => f.join(' ')).sort(), [1, 2].map((slot) => `/run/secrets/db=${SECRET} /etc/app.conf=v2 slot=${slot}`));
  await until(() => n2.node.agentForTests!.state().configs.length === 1, 'only the new config is held');
  const e = await t.throwsAsync(n1.call('config.rm', { ref: 'app_v2' }));
  t.is(e!.message, 'config \'app_v2\' is in use by the following service: app');
  await n1.call('config.rm', { ref: 'app_v1' });
});
