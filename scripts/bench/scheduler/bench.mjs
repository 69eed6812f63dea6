// Scheduler benchmark: a FAKE node set (1,000 node objects written straight into a test store, no
// agents) and 10,000 pending tasks; measures the time until every task is assigned.
// Prints JSON lines {"metric","value","unit"}. Usage: node bench.mjs [nodes] [tasks] [services]
import { newTestStore } from '@shoal/store';
import { Scheduler } from '@shoal/scheduler';

const NODES = Number(process.argv[2] ?? 1000);
const TASKS = Number(process.argv[3] ?? 10000);
const SERVICES = Number(process.argv[4] ?? 10);
const meta = { version: 0, createdAt: '', updatedAt: '' };
const emit = (metric, value, unit) => console.log(JSON.stringify({ metric, value: Math.round(value * 1000) / 1000, unit }));

function fakeNode(i) {
  const id = `fake-node-${String(i).padStart(4, '0')}`;
  return {
    id, meta, role: i < 3 ? 'manager' : 'worker',
    spec: { labels: { fake: 'true', zone: `z${i % 3}` }, desiredRole: 'worker', availability: i % 50 === 0 ? 'drain' : 'active' },
    description: { hostname: id, platform: { os: 'linux', architecture: 'x86_64' }, resources: { nanoCpus: 8e9, memoryBytes: 32 * 2 ** 30 }, engine: { engineVersion: 'fake', labels: {} } },
    status: { state: 'ready', message: '', addr: `10.64.${i >> 8}.${i & 255}` },
  };
}

function task(i) {
  const s = i % SERVICES;
  return {
    id: `task-${i}`, meta, serviceId: `svc-${s}`, serviceName: `svc-${s}`, slot: Math.floor(i / SERVICES) + 1, nodeId: '', specVersion: 1,
    spec: {
      container: { image: 'busybox' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, networks: [], forceUpdate: 0,
      // every other service carries a constraint and a reservation, so those filters run too
      placement: { constraints: s % 2 ? ['node.labels.zone!=z0', 'node.role==worker'] : [], maxReplicas: 0 },
      ...(s % 2 ? { resources: { reservations: { nanoCpus: 1e8, memoryBytes: 64 * 2 ** 20 } } } : {}),
    },
    desiredState: 'running', status: { state: 'pending', timestamp: '', message: '' }, networks: [],
  };
}

const store = newTestStore();
await store.update((tx) => { for (let i = 0; i < NODES; i++) tx.create('nodes', fakeNode(i)); });
const sched = new Scheduler(store);
sched.start();

let assigned = 0;
let done;
const allDone = new Promise((r) => (done = r));
store.watch((ev) => {
  if (ev.kind === 'update' && ev.table === 'tasks' && ev.object.status.state === 'assigned' && ev.old?.status.state === 'pending') {
    if (++assigned === TASKS) done();
  }
});

const t0 = performance.now();
for (let i = 0; i < TASKS; i += 1000) {
  await store.update((tx) => { for (let j = i; j < Math.min(TASKS, i + 1000); j++) tx.create('tasks', task(j)); });
}
const tCreated = performance.now();
await allDone;
const t1 = performance.now();
await sched.stop();

const perNode = new Map();
for (const t of store.view((tx) => tx.list('tasks'))) perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
const counts = [...perNode.values()];
emit('scheduler_fake_nodes', NODES, 'nodes');
emit('scheduler_tasks', TASKS, 'tasks');
emit('scheduler_create_tasks', (tCreated - t0) / 1000, 's');
emit('scheduler_schedule_all', (t1 - t0) / 1000, 's');
emit('scheduler_throughput', TASKS / ((t1 - t0) / 1000), 'tasks/s');
emit('scheduler_max_tasks_per_node', Math.max(...counts), 'tasks');
emit('scheduler_min_tasks_per_node', Math.min(...counts), 'tasks');
emit('scheduler_rss', process.memoryUsage().rss / 2 ** 20, 'MiB');
