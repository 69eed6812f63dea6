import test from 'ava';
import { MAX_DURATION_MS, ShoalError } from '@shoal/api';
import { newTestStore } from '@shoal/testkit';
import { ControlApi, defaultClusterSpec } from '../src/index.js';

const img = 'shoal/busybox:latest';

async function rejects(t: import('ava').ExecutionContext, p: Promise<unknown>, code: ShoalError['code'], message: string | RegExp): Promise<void> {
  const e = await t.throwsAsync(p, { instanceOf: ShoalError });
  t.is((e as ShoalError | undefined)?.code, code);
  if (typeof message === 'string') t.is(e?.message, message);
  else t.regex(e?.message ?? '', message);
  t.false((e?.message ?? '').includes('\n'));
}

test('service and network names are unique case-insensitively; the message names the existing one', async (t) => {
  const c = new ControlApi(newTestStore());
  const { id } = await c.createService({ name: 'api', image: img });
  await rejects(t, c.createService({ name: 'API', image: img }), 'AlreadyExists',
    'service API already exists as api (names are case-insensitive); use another name or update it');
  await rejects(t, c.createService({ name: 'api', image: img }), 'AlreadyExists', 'service api already exists; use another name or update it');
  t.is(c.listServices().length, 1);
  t.is(c.getService('Api').id, id, 'lookup by name ignores case too');
  await c.createNetwork({ name: 'backend' });
  await rejects(t, c.createNetwork({ name: 'Backend' }), 'AlreadyExists', 'network with name Backend already exists as backend (names are case-insensitive)');
  await rejects(t, c.createNetwork({ name: 'backend' }), 'AlreadyExists', 'network with name backend already exists');
  t.is(c.listNetworks().length, 1);
});

test('service names follow SwarmKit (a DNS label: no dots, letters/digits at both ends, at most 63)', async (t) => {
  const c = new ControlApi(newTestStore());
  const rule = "use letters, digits, '-' and '_', starting and ending with a letter or digit, at most 63 characters (no dots)";
  for (const bad of ['x.y', '-web', 'web-', '_web', 'web_', 'a b', '', 'wéb']) {
    await rejects(t, c.createService({ name: bad, image: img }), 'InvalidArgument', `invalid service name ${JSON.stringify(bad)}: ${rule}`);
  }
  await rejects(t, c.createService({ name: 'a'.repeat(64), image: img }), 'InvalidArgument', `invalid service name "${'a'.repeat(64)}": it has 64 characters; at most 63`);
  for (const good of ['a', 'A9', 'web_api-2', 'x--y', 'a'.repeat(63)]) await t.notThrowsAsync(c.createService({ name: good, image: img }), good);
  // Renaming is refused, and a bad new name is named as such.
  await rejects(t, c.updateService('web_api-2', { spec: { name: 'web.api' } }), 'InvalidArgument', /^invalid service name "web\.api": use letters/);
  await rejects(t, c.updateService('web_api-2', { spec: { name: 'other' } }), 'InvalidArgument', 'renaming a service is not supported');
});

test('a service stored under the older, looser name rule can still be updated', async (t) => {
  const store = newTestStore();
  const c = new ControlApi(store);
  const { id } = await c.createService({ name: 'legacy', image: img });
  await store.update((tx) => {
    const s = tx.get('services', id)!;
    tx.update('services', { ...s, spec: { ...s.spec, name: 'old.name' } });
  });
  await c.updateService('old.name', { spec: { image: 'shoal/busybox:2' } });
  t.is(c.getService(id).spec.task.container.image, 'shoal/busybox:2');
});

test('durations longer than Go\'s time.Duration are refused, the maximum is accepted', async (t) => {
  const c = new ControlApi(newTestStore());
  const over = MAX_DURATION_MS + 1;
  const tooLong = (what: string) => `invalid ${what} ${over} ms: longer than the longest duration, 9223372036854 ms (2562047h47m16.854775807s)`;
  await rejects(t, c.createService({ name: 'a', image: img, stopGracePeriodMs: 3.6e15 }), 'InvalidArgument', /^invalid stop grace period 3600000000000000 ms: longer than the longest duration/);
  await rejects(t, c.createService({ name: 'a', image: img, stopGracePeriodMs: over }), 'InvalidArgument', tooLong('stop grace period'));
  await rejects(t, c.createService({ name: 'a', image: img, restart: { delayMs: over } }), 'InvalidArgument', tooLong('restart delay'));
  await rejects(t, c.createService({ name: 'a', image: img, restart: { windowMs: over } }), 'InvalidArgument', tooLong('restart window'));
  await rejects(t, c.createService({ name: 'a', image: img, update: { delayMs: over } }), 'InvalidArgument', tooLong('update delay'));
  await rejects(t, c.createService({ name: 'a', image: img, update: { monitorMs: -1 } }), 'InvalidArgument', 'invalid update monitor -1: must be a duration in ms >= 0');
  await rejects(t, c.createService({ name: 'a', image: img, rollback: { monitorMs: over } }), 'InvalidArgument', tooLong('rollback monitor'));
  await rejects(t, c.createService({ name: 'a', image: img, healthcheck: { test: [], intervalMs: over } }), 'InvalidArgument', tooLong('healthcheck interval'));
  t.is(c.listServices().length, 0);
  const { id } = await c.createService({ name: 'a', image: img, stopGracePeriodMs: MAX_DURATION_MS, update: { delayMs: MAX_DURATION_MS } });
  t.is(c.getService(id).spec.task.container.stopGracePeriodMs, MAX_DURATION_MS);
  await rejects(t, c.updateService(id, { spec: { stopGracePeriodMs: over } }), 'InvalidArgument', tooLong('stop grace period'));
});

test('swarm update: the dispatcher heartbeat must be a positive duration within range', async (t) => {
  const store = newTestStore();
  const c = new ControlApi(store);
  await store.update((tx) => tx.create('clusters', { id: 'c1', meta: { version: 0, createdAt: '', updatedAt: '' }, spec: defaultClusterSpec() }));
  await rejects(t, c.updateCluster({ heartbeatPeriodMs: MAX_DURATION_MS + 1 }), 'InvalidArgument', /^invalid dispatcher heartbeat period 9223372036855 ms: longer than/);
  await rejects(t, c.updateCluster({ heartbeatPeriodMs: 0 }), 'InvalidArgument', 'invalid dispatcher heartbeat period 0 ms: must be greater than 0');
  await c.updateCluster({ heartbeatPeriodMs: 2000 });
  t.is(c.getCluster().spec.dispatcher.heartbeatPeriodMs, 2000);
});

test('rollback sets updateStatus rollback_started ("manually requested rollback"); a plain update clears it', async (t) => {
  const store = newTestStore();
  const c = new ControlApi(store);
  const { id } = await c.createService({ name: 'web', image: img });
  await c.updateService(id, { spec: { image: 'shoal/busybox:2' } });
  // The orchestrator would mark the rolling update; pretend it completed.
  await store.update((tx) => {
    const s = tx.get('services', id)!;
    tx.update('services', { ...s, updateStatus: { state: 'completed', message: 'update completed' } });
  });
  const before = Date.now();
  await c.updateService('web', { rollback: true });
  const s = c.getService(id);
  t.is(s.spec.task.container.image, img);
  t.is(s.previousSpec?.task.container.image, 'shoal/busybox:2');
  t.is(s.specVersion, 3);
  t.like(s.updateStatus, { state: 'rollback_started', message: 'manually requested rollback' });
  t.true(Date.parse(s.updateStatus!.startedAt!) >= before - 1000);
  await c.updateService(id, { spec: { replicas: 2 } });
  t.is(c.getService(id).updateStatus, undefined);
  await rejects(t, new ControlApi(newTestStore()).updateService('nosuch', { rollback: true }), 'NotFound', 'service nosuch not found');
});

test('objects created through the control API have createdAt and updatedAt', async (t) => {
  const c = new ControlApi(newTestStore());
  const { id: netId } = await c.createNetwork({ name: 'mynet' });
  const { id: svcId } = await c.createService({ name: 'web', image: img });
  for (const meta of [c.getNetwork(netId).meta, c.getService(svcId).meta]) {
    t.regex(meta.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d/);
    t.regex(meta.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d/);
  }
});

test('membership: a hostname two nodes have is ambiguous; demotions check quorum; a manager without a Raft member may be removed', async (t) => {
  const store = newTestStore();
  const members = new Set<string>();
  let problem: string | undefined;
  const c = new ControlApi(store, { membership: { removalProblem: () => problem, isMember: (id) => members.has(id) } });
  await c.bootstrapCluster({ nodeId: 'n1', raftId: 'r1', addr: '10.0.0.1:2377', description: { hostname: 'node1', platform: { os: 'linux', architecture: '' }, resources: { nanoCpus: 0, memoryBytes: 0 }, engine: { engineVersion: '', labels: {} } }, cluster: {} });
  members.add('n1');
  const { nodeId: old } = await c.admitNode({ role: 'manager', addr: '10.0.0.3:2377', hostname: 'node3' });
  const { nodeId: fresh } = await c.admitNode({ role: 'manager', addr: '10.0.0.3:2377', hostname: 'node3' });
  await c.recordManager(fresh, 'r3b', '10.0.0.3:2377');
  members.add(fresh);
  await rejects(t, c.updateNode('node3', { role: 'worker' }), 'InvalidArgument', `node node3 is ambiguous (2 matches found: ${[old, fresh].sort().join(', ')}); use the node ID`);
  await rejects(t, c.removeNode('node3'), 'InvalidArgument', /ambiguous/);
  // Demoting acts on the named entry only, and is refused when it would lose quorum.
  problem = 'the remaining managers would lose quorum (0 of 1 reachable, 1 needed)';
  await rejects(t, c.updateNode(fresh, { role: 'worker' }), 'FailedPrecondition', `can't demote node3: ${problem}`);
  problem = undefined;
  await c.updateNode(old, { role: 'worker' });
  t.is(c.getNode(old).spec.desiredRole, 'worker');
  t.is(c.getNode(fresh).spec.desiredRole, 'manager');
  // The old entry has no Raft member: it may be removed (it is not ready); the live one may not.
  await c.removeNode(old);
  await rejects(t, c.removeNode(fresh, true), 'FailedPrecondition', /is a cluster manager and is a member of the raft cluster/);
  t.is(c.getNode('node3').id, fresh);
});

test('a change of the published ports or the endpoint mode is a task change (specVersion + 1, tasks roll); replicas and labels are not', async (t) => {
  const c = new ControlApi(newTestStore());
  const { id } = await c.createService({ name: 'web', image: img, replicas: 2 });
  const version = () => c.getService(id).specVersion;
  t.is(version(), 1);
  await c.updateService(id, { spec: { replicas: 3, labels: { a: 'b' } } });
  t.is(version(), 1, 'replicas and service labels leave the tasks alone');
  const port = { targetPort: 80, publishedPort: 8080, protocol: 'tcp' as const, publishMode: 'ingress' as const };
  await c.updateService(id, { spec: { ports: [port] } });
  t.is(version(), 2, '--publish-add');
  await c.updateService(id, { spec: { ports: [port] } });
  t.is(version(), 2, 'the same ports again change nothing');
  await c.updateService(id, { spec: { ports: [port, { ...port, targetPort: 81, publishedPort: 8081 }] } });
  t.is(version(), 3, 'another port');
  await c.updateService(id, { spec: { ports: [] } });
  t.is(version(), 4, '--publish-rm');
  await c.updateService(id, { spec: { endpointMode: 'dnsrr' } });
  t.is(version(), 5, 'the endpoint mode');
});
