import test from 'ava';
import type { Assignments, Node, NodeDescription, Task } from '@shoal/api';
import { ShoalError } from '@shoal/api';
import type { MemoryStore } from '@shoal/store';
import { FakeClock, FakeMetrics, newTestStore } from '@shoal/testkit';
import { Dispatcher, localDispatcherClient } from '../src/index.js';

const meta = { version: 0, createdAt: '', updatedAt: '' };
const desc: NodeDescription = {
  hostname: 'w1', platform: { os: 'linux', architecture: 'x86_64' }, resources: { nanoCpus: 2e9, memoryBytes: 2 ** 31 },
  engine: { engineVersion: '28.0', labels: {} },
};

function node(id: string, state: Node['status']['state'] = 'ready'): Node {
  return { id, meta, role: 'worker', spec: { labels: {}, desiredRole: 'worker', availability: 'active' }, status: { state, message: '', addr: '10.0.0.9' } };
}

function task(id: string, nodeId: string, state: Task['status']['state'] = 'assigned', desiredState: Task['desiredState'] = 'running'): Task {
  return {
    id, meta, serviceId: 's', serviceName: 'web', slot: 1, nodeId, specVersion: 1, desiredState, networks: [],
    spec: { container: { image: 'busybox' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], maxReplicas: 0 }, networks: [], forceUpdate: 0 },
    status: { state, timestamp: '', message: '' },
  };
}

/** Lets queued promise callbacks and microtasks (store commits, deliveries) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

const nodeState = (store: MemoryStore, id: string) => store.view((tx) => tx.get('nodes', id))?.status;

function setup(opts: { nodes?: Node[] } = {}) {
  const store = newTestStore();
  const clock = new FakeClock();
  return {
    store, clock,
    async start() {
      if (opts.nodes) await store.update((tx) => opts.nodes!.forEach((n) => tx.create('nodes', n)));
      const d = new Dispatcher(store, { heartbeatPeriodMs: 1000, graceMultiplier: 3, clock });
      d.start();
      return { d, client: localDispatcherClient(d) };
    },
  };
}

test('openSession: node object created if missing, marked ready with its description and address', async (t) => {
  const env = setup();
  const { d, client } = await env.start();
  const info = await client.openSession({ nodeId: 'w1', description: desc, addr: '10.0.0.7' });
  t.is(info.heartbeatPeriodMs, 1000);
  t.truthy(info.sessionId);
  const n = env.store.view((tx) => tx.get('nodes', 'w1'))!;
  t.deepEqual(n.status, { state: 'ready', message: '', addr: '10.0.0.7' });
  t.is(n.role, 'worker');
  t.is(n.spec.availability, 'active');
  t.is(n.description?.hostname, 'w1');
  t.deepEqual(d.connectedNodes(), ['w1']);
  await t.throwsAsync(client.openSession({ nodeId: '', description: desc, addr: '' }), { message: /nodeId is required/ });
  await d.stop();
});

test('an existing down node comes back ready; a newer session replaces the old one', async (t) => {
  const env = setup({ nodes: [node('w1', 'down')] });
  const { d, client } = await env.start();
  const s1 = await client.openSession({ nodeId: 'w1', description: desc, addr: '10.0.0.7' });
  t.is(nodeState(env.store, 'w1')?.state, 'ready');
  let ended: Error | undefined;
  client.watchAssignments(s1.sessionId, () => {}, (e) => { ended = e; });
  const s2 = await client.openSession({ nodeId: 'w1', description: desc, addr: '10.0.0.7' });
  await settle();
  t.regex(ended?.message ?? '', /replaced/);
  await t.throwsAsync(client.heartbeat(s1.sessionId), { instanceOf: ShoalError, message: /unknown or expired/ });
  t.deepEqual(await client.heartbeat(s2.sessionId), { heartbeatPeriodMs: 1000 });
  await d.stop();
});

test('heartbeats keep a node ready; missing them for period × grace marks it down', async (t) => {
  const env = setup();
  const { d, client } = await env.start();
  const { sessionId } = await client.openSession({ nodeId: 'w1', description: desc, addr: '10.0.0.7' });
  let ended: Error | undefined;
  client.watchAssignments(sessionId, () => {}, (e) => { ended = e; });
  for (let i = 0; i < 5; i++) {
    env.clock.advance(2900);
    await client.heartbeat(sessionId);
  }
  await settle();
  t.is(nodeState(env.store, 'w1')?.state, 'ready');
  env.clock.advance(2999);
  await settle();
  t.is(nodeState(env.store, 'w1')?.state, 'ready');
  env.clock.advance(1);
  await settle();
  t.deepEqual(nodeState(env.store, 'w1'), { state: 'down', message: 'heartbeat failure', addr: '10.0.0.7' });
  t.is((ended as ShoalError | undefined)?.code, 'Unavailable');
  await t.throwsAsync(client.heartbeat(sessionId), { message: /unknown or expired/ });
  // It comes back by opening a new session.
  await client.openSession({ nodeId: 'w1', description: desc, addr: '10.0.0.7' });
  t.is(nodeState(env.store, 'w1')?.state, 'ready');
  await d.stop();
});

test('assignments: full set on subscribe, re-sent when the set or a member changes, once per commit', async (t) => {
  const env = setup();
  const { d, client } = await env.start();
  await env.store.update((tx) => {
    tx.create('tasks', task('a', 'w1'));
    tx.create('tasks', task('p', 'w1', 'pending'));
    tx.create('tasks', task('o', 'w2'));
  });
  const { sessionId } = await client.openSession({ nodeId: 'w1', description: desc, addr: '' });
  const got: Assignments[] = [];
  const cancel = client.watchAssignments(sessionId, (a) => got.push(a), () => {});
  await settle();
  t.deepEqual(got.map((a) => a.tasks.map((x) => x.id)), [['a']]);

  // One commit touching two tasks → one message.
  await env.store.update((tx) => {
    tx.create('tasks', task('b', 'w1'));
    const p = tx.get('tasks', 'p')!;
    p.status.state = 'assigned';
    tx.update('tasks', p);
  });
  await settle();
  t.deepEqual(got.map((a) => a.tasks.map((x) => x.id)), [['a'], ['a', 'b', 'p']]);

  // A member changes (desired state) → re-sent; changes on other nodes and status reports → nothing.
  await env.store.update((tx) => { const a = tx.get('tasks', 'a')!; a.desiredState = 'shutdown'; tx.update('tasks', a); });
  await env.store.update((tx) => { const o = tx.get('tasks', 'o')!; o.desiredState = 'shutdown'; tx.update('tasks', o); });
  await env.store.update((tx) => { const b = tx.get('tasks', 'b')!; b.status.state = 'running'; tx.update('tasks', b); });
  await settle();
  t.is(got.length, 3);
  t.is(got[2]!.tasks.find((x) => x.id === 'a')?.desiredState, 'shutdown');

  // Desired REMOVE and deletion take tasks out of the set.
  await env.store.update((tx) => { const a = tx.get('tasks', 'a')!; a.desiredState = 'remove'; tx.update('tasks', a); tx.delete('tasks', 'b'); });
  await settle();
  t.deepEqual(got.at(-1)!.tasks.map((x) => x.id), ['p']);

  cancel();
  await env.store.update((tx) => tx.create('tasks', task('c', 'w1')));
  await settle();
  t.is(got.length, 4);
  await d.stop();
});

test('task status: batched, forward only, only for tasks on the caller\'s node', async (t) => {
  const env = setup();
  const { d, client } = await env.start();
  await env.store.update((tx) => { tx.create('tasks', task('a', 'w1')); tx.create('tasks', task('x', 'w2')); });
  const { sessionId } = await client.openSession({ nodeId: 'w1', description: desc, addr: '' });
  const st = (state: Task['status']['state'], message = '') => ({ state, timestamp: new Date(env.clock.now()).toISOString(), message });

  const p1 = client.updateTaskStatus(sessionId, [{ taskId: 'a', status: st('preparing') }]);
  const p2 = client.updateTaskStatus(sessionId, [{ taskId: 'a', status: st('running', 'started') }, { taskId: 'x', status: st('failed') }, { taskId: 'gone', status: st('running') }]);
  await settle();
  t.is(env.store.view((tx) => tx.get('tasks', 'a'))!.status.state, 'assigned', 'nothing written before the batch window');
  const before = env.store.appliedIndex;
  env.clock.advance(100);
  await Promise.all([p1, p2]);
  t.is(env.store.appliedIndex, before + 1, 'one store write for the batch');
  t.is(env.store.view((tx) => tx.get('tasks', 'a'))!.status.message, 'started');
  t.is(env.store.view((tx) => tx.get('tasks', 'a'))!.status.state, 'running');
  t.is(env.store.view((tx) => tx.get('tasks', 'x'))!.status.state, 'assigned', 'a task of another node is not touched');

  const p3 = client.updateTaskStatus(sessionId, [{ taskId: 'a', status: st('starting') }]);
  env.clock.advance(100);
  await p3;
  t.is(env.store.view((tx) => tx.get('tasks', 'a'))!.status.state, 'running', 'backward move ignored');

  const p4 = client.updateTaskStatus(sessionId, [{ taskId: 'a', status: { ...st('failed'), err: 'exit 1', exitCode: 1 } }]);
  env.clock.advance(100);
  await p4;
  t.like(env.store.view((tx) => tx.get('tasks', 'a'))!.status, { state: 'failed', err: 'exit 1', exitCode: 1 });
  await t.throwsAsync(client.updateTaskStatus('nope', []), { message: /unknown or expired/ });
  await d.stop();
});

test('B08: after a (re)start every node gets a reconnect window (two grace periods) before being marked down', async (t) => {
  const env = setup({ nodes: [node('n1'), node('n2'), node('n3', 'down')] });
  // These nodes heartbeated the old leader long ago as far as this manager knows; nothing is down at once.
  const { d, client } = await env.start();
  env.clock.advance(5000);
  await settle();
  t.is(nodeState(env.store, 'n1')?.state, 'ready');
  t.is(nodeState(env.store, 'n2')?.state, 'ready');
  // n1's agent noticed the old leader's death late (heartbeat timeout) and reconnects now.
  const { sessionId } = await client.openSession({ nodeId: 'n1', description: desc, addr: '' });
  env.clock.advance(999);
  await settle();
  t.is(nodeState(env.store, 'n2')?.state, 'ready');
  env.clock.advance(1);
  await settle();
  t.is(nodeState(env.store, 'n1')?.state, 'ready', 'the reconnected node stays ready');
  t.deepEqual(nodeState(env.store, 'n2'), { state: 'down', message: 'heartbeat failure', addr: '10.0.0.9' });
  t.is(nodeState(env.store, 'n3')?.state, 'down');
  await client.heartbeat(sessionId);
  await d.stop();
});

test('reconnect window is configurable', async (t) => {
  const store = newTestStore();
  const clock = new FakeClock();
  await store.update((tx) => tx.create('nodes', node('n1')));
  const d = new Dispatcher(store, { heartbeatPeriodMs: 1000, graceMultiplier: 3, reconnectGraceMs: 3000, clock });
  d.start();
  clock.advance(2999);
  await settle();
  t.is(nodeState(store, 'n1')?.state, 'ready');
  clock.advance(1);
  await settle();
  t.is(nodeState(store, 'n1')?.state, 'down');
  await d.stop();
});

test('stop ends every session with Unavailable; calls are refused until restarted', async (t) => {
  const env = setup();
  const { d, client } = await env.start();
  const { sessionId } = await client.openSession({ nodeId: 'w1', description: desc, addr: '' });
  let ended: Error | undefined;
  client.watchAssignments(sessionId, () => {}, (e) => { ended = e; });
  await d.stop();
  await settle();
  t.is((ended as ShoalError).code, 'Unavailable');
  t.regex(ended!.message, /no longer the leader/);
  await t.throwsAsync(client.heartbeat(sessionId), { message: /not running/ });
  await t.throwsAsync(client.openSession({ nodeId: 'w1', description: desc, addr: '' }), { message: /not running/ });
  // The node is not marked down by stopping.
  t.is(nodeState(env.store, 'w1')?.state, 'ready');
  t.is(env.clock.pending, 0, 'no timers left armed');
});

test('removed nodes are refused; deleting a node ends its session', async (t) => {
  const env = setup();
  await env.store.update((tx) => tx.create('clusters', {
    id: 'c', meta, spec: { name: 'default', taskHistoryRetentionLimit: 5, dispatcher: { heartbeatPeriodMs: 1000 }, caConfig: { nodeCertExpiryMs: 1 } }, removedNodes: ['bad'],
  }));
  const { d, client } = await env.start();
  await t.throwsAsync(client.openSession({ nodeId: 'bad', description: desc, addr: '' }), { message: /removed from the swarm/ });
  const { sessionId } = await client.openSession({ nodeId: 'w1', description: desc, addr: '' });
  let ended: Error | undefined;
  client.watchAssignments(sessionId, () => {}, (e) => { ended = e; });
  await env.store.update((tx) => tx.delete('nodes', 'w1'));
  await settle();
  t.regex(ended?.message ?? '', /removed from the swarm/);
  await d.stop();
});

test('network view: sessions that ask get every node, service and backend; it follows task, node and service changes', async (t) => {
  const withOverlay = (n: Node, i: number): Node => ({ ...n, status: { ...n.status, addr: `10.99.0.1${i}:2377` }, overlay: { subnet: `10.97.${i}.0/24`, vtepMac: `02:00:0a:61:0${i}:00` } });
  const env = setup({ nodes: [withOverlay(node('w1'), 1), withOverlay(node('w2'), 2)] });
  const { d, client } = await env.start();
  await env.store.update((tx) => {
    tx.create('networks', { id: 'n1', meta, spec: { name: 'app', labels: {}, driver: 'overlay', attachable: false, ingress: false } });
    tx.create('services', {
      id: 's', meta, specVersion: 1,
      spec: { name: 'web', labels: {}, mode: { replicated: { replicas: 2 } }, endpoint: { mode: 'vip', ports: [] }, task: { ...task('x', '').spec, networks: [{ target: 'app', aliases: ['www'] }] } },
      endpoint: { ports: [], virtualIps: [{ networkId: 'n1', addr: '10.96.0.2/16' }] },
    });
    const a = task('a', 'w2', 'running');
    a.status.networkAddrs = ['10.97.2.5/24'];
    a.networks = [{ networkId: 'n1', addresses: [] }];
    tx.create('tasks', a);
    const b = task('b', 'w2', 'starting');
    b.status.networkAddrs = ['10.97.2.6/24'];
    tx.create('tasks', b);
  });
  const s1 = await client.openSession({ nodeId: 'w1', description: desc, addr: '10.99.0.11:2377', networkView: true });
  const s2 = await client.openSession({ nodeId: 'w2', description: desc, addr: '10.99.0.12:2377' });
  const got: Assignments[] = [];
  const plain: Assignments[] = [];
  client.watchAssignments(s1.sessionId, (a) => got.push(a), () => {});
  client.watchAssignments(s2.sessionId, (a) => plain.push(a), () => {});
  await settle();
  const v = got.at(-1)!.network!;
  t.is(plain.at(-1)!.network, undefined, 'only sessions that asked get the view');
  t.deepEqual(v.nodes.map((n) => [n.id, n.addr, n.subnet]), [['w1', '10.99.0.11', '10.97.1.0/24'], ['w2', '10.99.0.12', '10.97.2.0/24']]);
  t.deepEqual(v.services, [{ id: 's', name: 'web', mode: 'vip', ports: [], virtualIps: [{ networkId: 'n1', addr: '10.96.0.2/16' }], networks: [{ id: 'n1', aliases: ['www'] }] }]);
  t.deepEqual(v.tasks.map((x) => [x.id, x.addr, x.backend]), [['a', '10.97.2.5', 'active'], ['b', '10.97.2.6', null]]);
  t.is(v.clusterCidr, '10.97.0.0/16');
  // A task told to stop drains; one that ended leaves.
  const n = got.length;
  await env.store.update((tx) => {
    const a = tx.get('tasks', 'a')!; a.desiredState = 'shutdown'; tx.update('tasks', a);
    const b = tx.get('tasks', 'b')!; b.status.state = 'failed'; tx.update('tasks', b);
  });
  await settle();
  t.is(got.length, n + 1, 'one message per commit');
  t.deepEqual(got.at(-1)!.network!.tasks.map((x) => [x.id, x.backend]), [['a', 'draining']]);
  // A node that goes Down takes its tasks and its peer entry with it.
  await env.store.update((tx) => { const w = tx.get('nodes', 'w2')!; w.status.state = 'down'; tx.update('nodes', w); });
  await settle();
  const last = got.at(-1)!.network!;
  t.deepEqual(last.nodes.map((x) => x.id), ['w1']);
  t.deepEqual(last.tasks, []);
  // An unrelated commit sends nothing new.
  const m = got.length;
  await env.store.update((tx) => tx.create('secrets', { id: 'x', meta, spec: { name: 'x', labels: {}, data: '' } }));
  await settle();
  t.is(got.length, m);
  await d.stop();
});

// Graceful drain (Task.handoff): the drained node keeps its task desired RUNNING until the successor runs.
const isoAt = (ms: number) => new Date(ms).toISOString();
const desiredOf = (a: Assignments | undefined, id: string) => a?.tasks.find((x) => x.id === id)?.desiredState;

async function handoffSetup(successorState: Task['status']['state'] = 'assigned') {
  const env = setup({ nodes: [node('w1'), node('w2')] });
  const until = env.clock.now() + 60_000;
  await env.store.update((tx) => {
    tx.create('tasks', { ...task('old', 'w1', 'running', 'shutdown'), handoff: { to: 'new', until: isoAt(until) } });
    tx.create('tasks', task('new', 'w2', successorState));
  });
  const { d, client } = await env.start();
  const s1 = await client.openSession({ nodeId: 'w1', description: desc, addr: '10.0.0.7' });
  const s2 = await client.openSession({ nodeId: 'w2', description: desc, addr: '10.0.0.8' });
  const w1: Assignments[] = [];
  client.watchAssignments(s1.sessionId, (a) => w1.push(a), () => {});
  await settle();
  const advance = (ms: number) => advanceBeating(env.clock, client, [s1.sessionId, s2.sessionId], ms);
  return { ...env, d, client, s2, w1, until, advance };
}

/** Moves the fake clock `ms` forward in 1 s steps, the sessions heartbeating (so they do not expire). */
async function advanceBeating(clock: FakeClock, client: ReturnType<typeof localDispatcherClient>, sessions: string[], ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= 1000) {
    for (const id of sessions) await client.heartbeat(id);
    clock.advance(Math.min(1000, left));
    await settle();
  }
}

const setStatus = (store: MemoryStore, id: string, state: Task['status']['state']) => store.update((tx) => {
  const x = tx.get('tasks', id)!;
  x.status = { ...x.status, state };
  tx.update('tasks', x);
});

test('handoff: the old task is sent desired RUNNING until its successor reports RUNNING, then SHUTDOWN', async (t) => {
  const env = await handoffSetup();
  t.is(desiredOf(env.w1.at(-1), 'old'), 'running', 'held while the successor starts');
  t.is(env.store.view((tx) => tx.get('tasks', 'old'))!.desiredState, 'shutdown', 'the store is not changed');
  await setStatus(env.store, 'new', 'starting');
  await settle();
  t.is(desiredOf(env.w1.at(-1), 'old'), 'running', 'still held: the successor is not RUNNING yet');
  const n = env.w1.length;
  // The successor's node reports RUNNING through the agent protocol.
  const done = env.client.updateTaskStatus(env.s2.sessionId, [{ taskId: 'new', status: { state: 'running', timestamp: '', message: 'started' } }]);
  env.clock.advance(100);
  await done;
  await settle();
  t.is(env.w1.length, n + 1, 'one fresh message for the old task\'s node');
  t.is(desiredOf(env.w1.at(-1), 'old'), 'shutdown');
  await env.advance(120_000);
  t.is(env.w1.length, n + 1, 'the expired timer sends nothing new');
  await env.d.stop();
});

test('handoff: when `until` passes without the successor running, the old task is sent SHUTDOWN', async (t) => {
  const env = await handoffSetup('preparing');
  t.is(desiredOf(env.w1.at(-1), 'old'), 'running');
  await env.advance(59_999);
  t.is(desiredOf(env.w1.at(-1), 'old'), 'running', 'one ms before until: still held');
  t.is(nodeState(env.store, 'w1')?.state, 'ready');
  await env.advance(1);
  t.is(desiredOf(env.w1.at(-1), 'old'), 'shutdown', 'at until: shut down');
  await env.d.stop();
});

test('handoff: a successor that fails or is deleted ends it; a new leader holds a pending one from the store', async (t) => {
  const env = await handoffSetup();
  await setStatus(env.store, 'new', 'failed');
  await settle();
  t.is(desiredOf(env.w1.at(-1), 'old'), 'shutdown', 'successor failed');

  const env2 = await handoffSetup();
  t.is(desiredOf(env2.w1.at(-1), 'old'), 'running', 'a dispatcher started over a store with a pending handoff holds it');
  await env2.store.update((tx) => tx.delete('tasks', 'new'));
  await settle();
  t.is(desiredOf(env2.w1.at(-1), 'old'), 'shutdown', 'successor deleted');
  await env.d.stop();
  await env2.d.stop();
});

test('network view: a task handing over stays an active backend until its successor runs, then drains', async (t) => {
  const withOverlay = (n: Node, i: number): Node => ({ ...n, status: { ...n.status, addr: `10.99.0.1${i}:2377` }, overlay: { subnet: `10.97.${i}.0/24`, vtepMac: `02:00:0a:61:0${i}:00` } });
  const env = setup({ nodes: [withOverlay(node('w1'), 1), withOverlay(node('w2'), 2)] });
  const until = env.clock.now() + 60_000;
  await env.store.update((tx) => {
    const old: Task = { ...task('old', 'w1', 'running', 'shutdown'), handoff: { to: 'new', until: isoAt(until) } };
    old.status.networkAddrs = ['10.97.1.5/24'];
    tx.create('tasks', old);
    const fresh = task('new', 'w2', 'starting');
    fresh.status.networkAddrs = ['10.97.2.5/24'];
    tx.create('tasks', fresh);
    const other: Task = { ...task('other', 'w1', 'running', 'shutdown'), handoff: { to: 'new2', until: isoAt(until) } };
    other.status.networkAddrs = ['10.97.1.6/24'];
    tx.create('tasks', other);
    const fresh2 = task('new2', 'w2', 'starting');
    tx.create('tasks', fresh2);
  });
  const { d, client } = await env.start();
  const s = await client.openSession({ nodeId: 'w2', description: desc, addr: '10.99.0.12:2377', networkView: true });
  const s1 = await client.openSession({ nodeId: 'w1', description: desc, addr: '10.99.0.11:2377' });
  const got: Assignments[] = [];
  client.watchAssignments(s.sessionId, (a) => got.push(a), () => {});
  await settle();
  const backends = () => Object.fromEntries(got.at(-1)!.network!.tasks.map((x) => [x.id, x.backend]));
  t.deepEqual(backends(), { new: null, old: 'active', other: 'active' });
  await setStatus(env.store, 'new', 'running');
  await settle();
  t.deepEqual(backends(), { new: 'active', old: 'draining', other: 'active' });
  await advanceBeating(env.clock, client, [s.sessionId, s1.sessionId], 60_000);
  t.deepEqual(backends(), { new: 'active', old: 'draining', other: 'draining' }, '`until` passed: the view is rebuilt');
  await d.stop();
});

test('metrics: open sessions at scrape time, heartbeat misses by kind; a stopped dispatcher reports none', async (t) => {
  const store = newTestStore();
  const clock = new FakeClock();
  const metrics = new FakeMetrics();
  await store.update((tx) => tx.create('nodes', node('n1')));
  const d = new Dispatcher(store, { heartbeatPeriodMs: 1000, graceMultiplier: 3, clock, metrics });
  d.start();
  const client = localDispatcherClient(d);
  await client.openSession({ nodeId: 'w1', description: desc, addr: '' });
  metrics.collect();
  t.is(metrics.value('shoal_dispatcher_sessions'), 1);
  t.is(metrics.value('shoal_dispatcher_sessions_opened_total'), 1);
  clock.advance(3000); // w1 sends no heartbeat: its session expires
  await settle();
  t.is(metrics.value('shoal_dispatcher_heartbeat_misses_total', { kind: 'expired' }), 1);
  metrics.collect();
  t.is(metrics.value('shoal_dispatcher_sessions'), 0);
  clock.advance(3000); // n1 never reconnects within its window (two grace periods)
  await settle();
  t.is(metrics.value('shoal_dispatcher_heartbeat_misses_total', { kind: 'no_reconnect' }), 1);
  await client.openSession({ nodeId: 'w1', description: desc, addr: '' });
  await d.stop();
  t.is(metrics.value('shoal_dispatcher_sessions'), 0);
  t.is(metrics.hookCount, 0, 'the scrape-time hook is gone with the dispatcher');
});

test('the manager list goes with the first assignments and again whenever it changes, not otherwise', async (t) => {
  const mgr = (id: string, addr: string): Node => ({ ...node(id), role: 'manager', managerStatus: { leader: false, reachability: 'reachable', addr, raftId: `${id}-r1` } });
  const env = setup({ nodes: [mgr('m1', 'm1:2377'), node('w1')] });
  const { d, client } = await env.start();
  const info = await client.openSession({ nodeId: 'w1', description: desc, addr: '10.0.0.7' });
  t.deepEqual(info.managers, [{ nodeId: 'm1', addr: 'm1:2377' }]);
  const got: Assignments[] = [];
  client.watchAssignments(info.sessionId, (a) => got.push(a), () => {});
  await settle();
  t.deepEqual(got.map((a) => a.managers), [[{ nodeId: 'm1', addr: 'm1:2377' }]]);
  // A worker is promoted (recorded as a manager): every session hears of it, without reconnecting.
  await env.store.update((tx) => tx.create('nodes', mgr('m2', 'm2:2377')));
  await settle();
  t.deepEqual(got.at(-1)?.managers, [{ nodeId: 'm1', addr: 'm1:2377' }, { nodeId: 'm2', addr: 'm2:2377' }]);
  const n = got.length;
  // Other node changes (a label) do not resend it.
  await env.store.update((tx) => tx.update('nodes', { ...tx.get('nodes', 'm2')!, spec: { ...tx.get('nodes', 'm2')!.spec, labels: { a: 'b' } } }));
  await settle();
  t.is(got.length, n);
  // A demotion (role worker, no manager status) takes it off the list.
  await env.store.update((tx) => {
    const { managerStatus: _gone, ...rest } = tx.get('nodes', 'm1')!;
    tx.update('nodes', { ...rest, role: 'worker' });
  });
  await settle();
  t.deepEqual(got.at(-1)?.managers, [{ nodeId: 'm2', addr: 'm2:2377' }]);
  await d.stop();
});

// Secrets and configs go with the sets of the nodes whose tasks use them, and only there.
test('a secret is sent only to the node that runs a task using it, and dropped once that task has ended', async (t) => {
  const env = setup({ nodes: [node('w1'), node('w2')] });
  const secretRef = { secretId: 'sec1', secretName: 'db_pass', file: { name: 'db_pass', uid: '0', gid: '0', mode: 0o444 } };
  const configRef = { configId: 'cfg1', configName: 'conf', file: { name: 'conf', uid: '0', gid: '0', mode: 0o444 } };
  await env.store.update((tx) => {
    tx.create('secrets', { id: 'sec1', meta, spec: { name: 'db_pass', labels: {}, data: 'aHVudGVyMg==' } });
    tx.create('secrets', { id: 'sec2', meta, spec: { name: 'unused', labels: {}, data: 'eA==' } });
    tx.create('configs', { id: 'cfg1', meta, spec: { name: 'conf', labels: {}, data: 'eA==' } });
    const a = task('a', 'w1', 'running');
    a.spec.container = { ...a.spec.container, secrets: [secretRef], configs: [configRef] };
    tx.create('tasks', a);
    tx.create('tasks', task('b', 'w2', 'running'));
  });
  const { d, client } = await env.start();
  const got: Record<string, Assignments[]> = { w1: [], w2: [] };
  for (const id of ['w1', 'w2']) {
    const s = await client.openSession({ nodeId: id, description: desc, addr: '10.0.0.7' });
    client.watchAssignments(s.sessionId, (a) => got[id]!.push(a), () => {});
  }
  await settle();
  t.deepEqual(got['w1']!.at(-1)!.secrets?.map((x) => [x.id, x.spec.data]), [['sec1', 'aHVudGVyMg==']]);
  t.deepEqual(got['w1']!.at(-1)!.configs?.map((x) => x.id), ['cfg1']);
  t.is(got['w2']!.at(-1)!.secrets, undefined, 'w2 runs no task that uses it');
  t.false(JSON.stringify(got['w2']).includes('aHVudGVyMg=='));
  // The task fails (the agent's own report): w1 gets a set without the secret.
  const n = got['w1']!.length;
  await env.store.update((tx) => { const a = tx.get('tasks', 'a')!; a.status = { ...a.status, state: 'failed' }; tx.update('tasks', a); });
  await settle();
  t.is(got['w1']!.length, n + 1);
  t.is(got['w1']!.at(-1)!.secrets, undefined);
  t.is(got['w1']!.at(-1)!.configs, undefined);
  t.deepEqual(got['w1']!.at(-1)!.tasks.map((x) => x.id), ['a'], 'the task itself is still in the set');
  await d.stop();
});
