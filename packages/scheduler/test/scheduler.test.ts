import test from 'ava';
import type { Node, Task, TaskSpec } from '@shoal/api';
import type { MemoryStore } from '@shoal/store';
import { FakeClock, newTestStore } from '@shoal/testkit';
import { matchConstraints, parseConstraint, parseConstraints, Scheduler } from '../src/index.js';

const meta = { version: 0, createdAt: '', updatedAt: '' };

function node(id: string, over: { labels?: Record<string, string>; availability?: Node['spec']['availability']; state?: Node['status']['state']; role?: Node['role']; cpus?: number } = {}): Node {
  return {
    id, meta, role: over.role ?? 'worker',
    spec: { labels: over.labels ?? {}, desiredRole: 'worker', availability: over.availability ?? 'active' },
    description: {
      hostname: `host-${id}`, platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: over.cpus ?? 4e9, memoryBytes: 8 << 30 }, engine: { engineVersion: '28', labels: { storage: 'ssd' } },
    },
    status: { state: over.state ?? 'ready', message: '', addr: '10.1.0.5' },
  };
}

function spec(over: Partial<TaskSpec['placement']> & { cpus?: number } = {}): TaskSpec {
  return {
    container: { image: 'busybox' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 },
    placement: { constraints: over.constraints ?? [], maxReplicas: over.maxReplicas ?? 0 }, networks: [], forceUpdate: 0,
    ...(over.cpus ? { resources: { reservations: { nanoCpus: over.cpus } } } : {}),
  };
}

function task(id: string, serviceId: string, slot: number, s: TaskSpec = spec(), nodeId = ''): Task {
  return {
    id, meta, serviceId, serviceName: serviceId, slot, nodeId, spec: s, specVersion: 1, desiredState: 'running',
    status: { state: 'pending', timestamp: '', message: '' }, networks: [],
  };
}

interface Env {
  store: MemoryStore;
  sched: Scheduler;
  clock: FakeClock;
}

/**
 * Runs the scheduler to quiescence on the fake clock — awaits its pass, fires its next debounce or
 * retry timer, until no pass is running and no timer is armed — then returns `fn()`, failing when
 * that is falsy. Deterministic: no wall-clock polling.
 */
async function settled<T>(env: Env, what: string, fn: () => T | undefined | false): Promise<T> {
  for (let i = 0; i < 100; i++) {
    await env.sched.idle();
    const due = env.clock.nextDueInMs;
    if (due === undefined) break;
    env.clock.advance(due);
  }
  const v = fn();
  if (!v) throw new Error(`not so once the scheduler settled: ${what}`);
  return v;
}

const tasksOf = (store: MemoryStore, svc: string) => store.view((tx) => tx.tasksByService(svc));
const countByNode = (tasks: Task[]) => {
  const m: Record<string, number> = {};
  for (const t of tasks) if (t.nodeId) m[t.nodeId] = (m[t.nodeId] ?? 0) + 1;
  return m;
};

async function setup(nodes: Node[]): Promise<Env> {
  const store = newTestStore();
  const clock = new FakeClock();
  await store.update((tx) => nodes.forEach((n) => tx.create('nodes', n)));
  const sched = new Scheduler(store, { debounceMs: 5, maxDelayMs: 50, clock });
  sched.start();
  return { store, sched, clock };
}

test('constraint parsing: keys, operators and one-line errors', (t) => {
  t.deepEqual(parseConstraint('node.labels.zone == b'), { key: 'node.labels.zone', op: '==', value: 'b', text: 'node.labels.zone == b' });
  t.is(parseConstraint('Node.Role!=manager').op, '!=');
  t.throws(() => parseConstraint('zone==b'), { message: "unknown constraint key 'zone' in 'zone==b'; did you mean node.labels.zone?" });
  t.throws(() => parseConstraint('node.labels.zone'), { message: /expected key==value or key!=value/ });
  t.throws(() => parseConstraint('node.hostname=='), { message: /missing value/ });
  t.throws(() => parseConstraint('node.ip==foo'), { message: /not an IPv4 address or CIDR/ });
});

test('constraint matching: attributes case-insensitive, labels exact, missing label', (t) => {
  const n = node('n1', { labels: { zone: 'a' }, role: 'manager' });
  const m = (...e: string[]) => matchConstraints(parseConstraints(e), n);
  t.true(m('node.role==MANAGER', 'node.hostname==host-n1', 'node.id==n1', 'node.platform.os==linux', 'node.platform.arch==x86_64'));
  t.true(m('node.labels.zone==a'));
  t.false(m('node.labels.zone==A'));
  t.true(m('node.labels.rack!=r1'));
  t.false(m('node.labels.rack==r1'));
  t.true(m('engine.labels.storage==ssd'));
  t.true(m('node.ip==10.1.0.0/16'));
  t.false(m('node.ip==10.2.0.0/16'));
});

test('spread: 10 tasks over 5 nodes → 2 each', async (t) => {
  const env = await setup(['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => node(id)));
  const { store, sched } = env;
  await store.update((tx) => { for (let i = 1; i <= 10; i++) tx.create('tasks', task(`t${i}`, 'web', i)); });
  await settled(env, 'all assigned', () => tasksOf(store, 'web').every((x) => x.status.state === 'assigned'));
  t.deepEqual(Object.values(countByNode(tasksOf(store, 'web'))), [2, 2, 2, 2, 2]);
  for (const x of tasksOf(store, 'web')) t.is(x.status.err, undefined);
  await sched.stop();
});

test('spread accounts for tasks already running on nodes (other services too)', async (t) => {
  const env = await setup(['n1', 'n2', 'n3'].map((id) => node(id)));
  const { store, sched } = env;
  const running = (id: string, svc: string, nodeId: string): Task => ({ ...task(id, svc, 1, spec(), nodeId), status: { state: 'running', timestamp: '', message: '' } });
  await store.update((tx) => {
    tx.create('tasks', running('a1', 'api', 'n1'));
    tx.create('tasks', running('a2', 'api', 'n1'));
    tx.create('tasks', running('w0', 'web', 'n2'));
  });
  await store.update((tx) => { for (let i = 1; i <= 3; i++) tx.create('tasks', task(`t${i}`, 'web', i)); });
  await settled(env, 'assigned', () => tasksOf(store, 'web').every((x) => x.status.state !== 'pending'));
  // web already on n2; n1 holds 2 api tasks → n3 (emptiest), n1 (no web yet), then n2/n3 tie on (1 web, 1 total) → n2 by ID.
  t.deepEqual(countByNode(tasksOf(store, 'web')), { n1: 1, n2: 2, n3: 1 });
  await sched.stop();
});

test('paused, drained and down nodes get no new tasks', async (t) => {
  const env = await setup([
    node('n1'), node('n2', { availability: 'pause' }), node('n3', { availability: 'drain' }), node('n4', { state: 'down' }),
  ]);
  const { store, sched } = env;
  await store.update((tx) => { for (let i = 1; i <= 4; i++) tx.create('tasks', task(`t${i}`, 'web', i)); });
  await settled(env, 'assigned', () => tasksOf(store, 'web').every((x) => x.status.state === 'assigned'));
  t.deepEqual(countByNode(tasksOf(store, 'web')), { n1: 4 });
  await sched.stop();
});

test('B01: pending with a reason, then placed once a node label matches', async (t) => {
  const env = await setup([node('m1', { role: 'manager' }), node('w1', { labels: { zone: 'a' } })]);
  const { store, sched } = env;
  const s = spec({ constraints: ['node.labels.zone==b'] });
  await store.update((tx) => { tx.create('tasks', task('p1', 'pinned', 1, s)); tx.create('tasks', task('p2', 'pinned', 2, s)); });
  const pending = await settled(env, 'reason', () => {
    const ts = tasksOf(store, 'pinned');
    return ts.every((x) => x.status.err) && ts;
  });
  for (const x of pending) {
    t.is(x.status.state, 'pending');
    t.is(x.nodeId, '');
    t.is(x.status.err, 'no suitable node (scheduling constraints not satisfied on 2 nodes)');
  }
  const versions = pending.map((x) => x.meta.version);
  // Re-evaluation on an unrelated node change does not rewrite an unchanged reason.
  await store.update((tx) => { const n = tx.get('nodes', 'm1')!; n.spec.labels.x = 'y'; tx.update('nodes', n); });
  await sched.tick();
  t.deepEqual(tasksOf(store, 'pinned').map((x) => x.meta.version), versions);

  await store.update((tx) => { const n = tx.get('nodes', 'w1')!; n.spec.labels.zone = 'b'; tx.update('nodes', n); });
  const placed = await settled(env, 'placement', () => {
    const ts = tasksOf(store, 'pinned');
    return ts.every((x) => x.status.state === 'assigned') && ts;
  });
  for (const x of placed) {
    t.is(x.nodeId, 'w1');
    t.is(x.status.err, undefined);
  }
  await sched.stop();
});

test('re-evaluated when a node becomes ready or active again', async (t) => {
  const env = await setup([node('n1', { state: 'down' }), node('n2', { availability: 'drain' })]);
  const { store, sched } = env;
  await store.update((tx) => tx.create('tasks', task('t1', 'web', 1)));
  const [p] = await settled(env, 'reason', () => { const ts = tasksOf(store, 'web'); return ts[0]?.status.err ? ts : undefined; });
  t.is(p!.status.err, 'no suitable node (1 node not ready; 1 node not available for new tasks)');
  await store.update((tx) => { const n = tx.get('nodes', 'n2')!; n.spec.availability = 'active'; tx.update('nodes', n); });
  const [a] = await settled(env, 'assigned', () => { const ts = tasksOf(store, 'web'); return ts[0]?.status.state === 'assigned' && ts; });
  t.is(a!.nodeId, 'n2');
  await sched.stop();
});

test('max replicas per node: extra tasks pending with the limit as reason; freed slot is reused', async (t) => {
  const env = await setup([node('n1'), node('n2')]);
  const { store, sched } = env;
  const s = spec({ maxReplicas: 2 });
  await store.update((tx) => { for (let i = 1; i <= 6; i++) tx.create('tasks', task(`t${i}`, 'capped', i, s)); });
  await settled(env, 'settled', () => tasksOf(store, 'capped').filter((x) => x.status.state === 'assigned').length === 4 &&
    tasksOf(store, 'capped').filter((x) => x.status.err).length === 2);
  t.deepEqual(countByNode(tasksOf(store, 'capped')), { n1: 2, n2: 2 });
  const stuck = tasksOf(store, 'capped').filter((x) => x.status.state === 'pending');
  t.is(stuck[0]!.status.err, 'no suitable node (max replicas per node limit exceed on 2 nodes)');
  // Stop-first update: the old task is being shut down (desired shutdown) → its replacement may take the slot.
  const victim = tasksOf(store, 'capped').find((x) => x.nodeId === 'n1')!;
  await store.update((tx) => { const v = tx.get('tasks', victim.id)!; v.desiredState = 'shutdown'; tx.update('tasks', v); });
  await settled(env, 'one more placed', () => tasksOf(store, 'capped').filter((x) => x.status.state === 'assigned').length === 5);
  t.deepEqual(countByNode(tasksOf(store, 'capped').filter((x) => x.desiredState === 'running')), { n1: 2, n2: 2 });
  await sched.stop();
});

test('resources: reservations beyond what a node has left stay pending', async (t) => {
  const env = await setup([node('n1', { cpus: 2e9 }), node('n2', { cpus: 1e9 })]);
  const { store, sched } = env;
  const s = spec({ cpus: 1e9 });
  await store.update((tx) => { for (let i = 1; i <= 4; i++) tx.create('tasks', task(`t${i}`, 'big', i, s)); });
  await settled(env, 'settled', () => tasksOf(store, 'big').filter((x) => x.status.err).length === 1);
  t.deepEqual(countByNode(tasksOf(store, 'big')), { n1: 2, n2: 1 });
  t.is(tasksOf(store, 'big').find((x) => x.status.state === 'pending')!.status.err, 'no suitable node (insufficient resources on 2 nodes)');
  // A task ending frees its reservation → the pending one is placed.
  const done = tasksOf(store, 'big').find((x) => x.nodeId === 'n2')!;
  await store.update((tx) => { const v = tx.get('tasks', done.id)!; v.status = { ...v.status, state: 'failed' }; tx.update('tasks', v); });
  await settled(env, 'placed', () => tasksOf(store, 'big').every((x) => x.status.state !== 'pending'));
  t.pass();
  await sched.stop();
});

test('host-mode ports: one task per node per published port', async (t) => {
  const env = await setup([node('n1'), node('n2')]);
  const { store, sched } = env;
  const mk = (id: string, slot: number): Task => ({ ...task(id, 'edge', slot), endpoint: { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'host' }], virtualIps: [] } });
  await store.update((tx) => { for (let i = 1; i <= 3; i++) tx.create('tasks', mk(`t${i}`, i)); });
  await settled(env, 'settled', () => tasksOf(store, 'edge').filter((x) => x.status.err).length === 1);
  t.deepEqual(countByNode(tasksOf(store, 'edge')), { n1: 1, n2: 1 });
  t.is(tasksOf(store, 'edge').find((x) => x.status.state === 'pending')!.status.err, 'no suitable node (host-mode port already in use on 2 nodes)');
  await sched.stop();
});

test('preassigned (global) tasks: checked against their own node only', async (t) => {
  const env = await setup([node('n1'), node('n2', { labels: { gpu: 'no' } })]);
  const { store, sched } = env;
  const s = spec({ constraints: ['node.labels.gpu!=no'] });
  await store.update((tx) => { tx.create('tasks', task('g1', 'agent', 0, s, 'n1')); tx.create('tasks', task('g2', 'agent', 0, s, 'n2')); });
  await settled(env, 'settled', () => store.view((tx) => tx.get('tasks', 'g2'))?.status.err);
  const g1 = store.view((tx) => tx.get('tasks', 'g1'))!;
  const g2 = store.view((tx) => tx.get('tasks', 'g2'))!;
  t.is(g1.status.state, 'assigned');
  t.is(g1.nodeId, 'n1');
  t.is(g2.status.state, 'pending');
  t.is(g2.status.err, 'no suitable node (scheduling constraints not satisfied on 1 node)');
  await sched.stop();
});

test('invalid constraint: pending with the parse error as reason', async (t) => {
  const env = await setup([node('n1')]);
  const { store, sched } = env;
  await store.update((tx) => tx.create('tasks', task('t1', 'typo', 1, spec({ constraints: ['zone==b'] }))));
  const x = await settled(env, 'reason', () => store.view((tx) => tx.get('tasks', 't1'))?.status.err);
  t.is(x, "no suitable node (unknown constraint key 'zone' in 'zone==b'; did you mean node.labels.zone?)");
  await sched.stop();
});

test('restart: a new scheduler rebuilds from the store and keeps spreading', async (t) => {
  const env = await setup(['n1', 'n2'].map((id) => node(id)));
  const { store, sched } = env;
  await store.update((tx) => { for (let i = 1; i <= 2; i++) tx.create('tasks', task(`t${i}`, 'web', i)); });
  await settled(env, 'assigned', () => tasksOf(store, 'web').every((x) => x.status.state === 'assigned'));
  await sched.stop();
  await store.update((tx) => { tx.create('nodes', node('n3')); for (let i = 3; i <= 4; i++) tx.create('tasks', task(`t${i}`, 'web', i)); });
  const s2 = new Scheduler(store, { debounceMs: 5, clock: env.clock });
  s2.start();
  await settled({ ...env, sched: s2 }, 'assigned', () => tasksOf(store, 'web').every((x) => x.status.state === 'assigned'));
  // t3 → n3 (empty); then all three hold one web task each → t4 goes to n1 by node ID.
  t.deepEqual(countByNode(tasksOf(store, 'web')), { n1: 2, n2: 1, n3: 1 });
  await s2.stop();
});

test('a node where the service keeps failing is tried last', async (t) => {
  const env = await setup([node('n1'), node('n2')]);
  const { store, sched } = env;
  // n2 already runs two other tasks; n1 is empty but 5 tasks of web failed there.
  await store.update((tx) => {
    for (let i = 1; i <= 2; i++) tx.create('tasks', { ...task(`o${i}`, 'other', i, spec(), 'n2'), status: { state: 'running', timestamp: '', message: '' } });
    for (let i = 1; i <= 5; i++) tx.create('tasks', { ...task(`f${i}`, 'web', i, spec(), 'n1'), status: { state: 'running', timestamp: '', message: '' } });
  });
  await store.update((tx) => {
    for (let i = 1; i <= 5; i++) { const x = tx.get('tasks', `f${i}`)!; x.status.state = 'rejected'; tx.update('tasks', x); }
  });
  await store.update((tx) => tx.create('tasks', task('w1', 'web', 6)));
  await settled(env, 'assigned', () => store.view((tx) => tx.get('tasks', 'w1'))?.status.state === 'assigned');
  t.is(store.view((tx) => tx.get('tasks', 'w1'))!.nodeId, 'n2');
  await sched.stop();
});

test('passes wait for a quiet gap of debounceMs after the last relevant commit, at most maxDelayMs', async (t) => {
  const env = await setup([node('n1')]); // debounceMs 5, maxDelayMs 50
  const { store, sched, clock } = env;
  const state = (id: string) => store.view((tx) => tx.get('tasks', id))?.status.state;
  await store.update((tx) => tx.create('tasks', task('t1', 'web', 1)));
  clock.advance(4);
  await sched.idle();
  t.is(state('t1'), 'pending', 'still inside the quiet gap');
  await store.update((tx) => tx.create('tasks', task('t2', 'web', 2)));
  clock.advance(4);
  await sched.idle();
  t.is(state('t1'), 'pending', 'the second commit pushed the pass back');
  clock.advance(1);
  await sched.idle();
  t.deepEqual([state('t1'), state('t2')], ['assigned', 'assigned']);

  // Commits every 4 ms never leave a 5 ms gap: the pass runs 50 ms after the first one anyway.
  await store.update((tx) => tx.create('tasks', task('t3', 'web', 3)));
  for (let i = 4; i <= 15; i++) {
    clock.advance(4);
    await sched.idle();
    await store.update((tx) => tx.create('tasks', task(`t${i}`, 'web', i)));
  }
  t.is(state('t3'), 'pending', '48 ms after the first commit');
  clock.advance(2);
  await sched.idle();
  t.is(state('t3'), 'assigned', '50 ms after the first commit');
  await sched.stop();
});
