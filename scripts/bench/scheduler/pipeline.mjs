// Manager pipeline benchmark: allocator → scheduler → dispatcher on one in-memory store, with
// FAKE agents (in-process dispatcher clients that only heartbeat and acknowledge). Measures the
// time from `tasks created (NEW)` to every task ASSIGNED and delivered to its node's agent.
// Prints JSON lines {"metric","value","unit"}. Usage: node pipeline.mjs [nodes] [tasks]
import { newTestStore } from '@shoal/store';
import { Allocator } from '@shoal/allocator';
import { Scheduler } from '@shoal/scheduler';
import { Dispatcher, localDispatcherClient } from '@shoal/dispatcher';

const NODES = Number(process.argv[2] ?? 100);
const TASKS = Number(process.argv[3] ?? 3000);
const meta = { version: 0, createdAt: '', updatedAt: '' };
const emit = (metric, value, unit) => console.log(JSON.stringify({ metric, value: Math.round(value * 1000) / 1000, unit }));

const store = newTestStore();
const allocator = new Allocator(store);
const scheduler = new Scheduler(store);
const dispatcher = new Dispatcher(store, { heartbeatPeriodMs: 1000 });
allocator.start();
scheduler.start();
dispatcher.start();
const client = localDispatcherClient(dispatcher);

const delivered = new Map();
let done;
const allDelivered = new Promise((r) => (done = r));
const sessions = [];
for (let i = 0; i < NODES; i++) {
  const nodeId = `fake-node-${String(i).padStart(4, '0')}`;
  const s = await client.openSession({
    nodeId, addr: `10.64.0.${i}`,
    description: { hostname: nodeId, platform: { os: 'linux', architecture: 'x86_64' }, resources: { nanoCpus: 8e9, memoryBytes: 2 ** 34 }, engine: { engineVersion: 'fake', labels: {} } },
  });
  sessions.push(s.sessionId);
  client.watchAssignments(s.sessionId, (a) => {
    delivered.set(nodeId, a.tasks.length);
    let sum = 0;
    for (const n of delivered.values()) sum += n;
    if (sum === TASKS) done();
  }, () => {});
}
const beat = setInterval(() => sessions.forEach((id) => client.heartbeat(id).catch(() => {})), 500);

await store.update((tx) => tx.create('networks', { id: 'net1', meta, spec: { name: 'backend', labels: {}, driver: 'overlay', attachable: false, ingress: false, subnet: '10.1.0.0/16' } }));
const svc = {
  id: 'svc1', meta, specVersion: 1,
  spec: {
    name: 'web', labels: {}, mode: { replicated: { replicas: TASKS } },
    endpoint: { mode: 'vip', ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'ingress' }] },
    task: { container: { image: 'busybox' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], maxReplicas: 0 }, networks: [{ target: 'net1' }], forceUpdate: 0 },
  },
};
const t0 = performance.now();
await store.update((tx) => {
  tx.create('services', svc);
  for (let i = 1; i <= TASKS; i++) {
    tx.create('tasks', { id: `task-${i}`, meta, serviceId: 'svc1', serviceName: 'web', slot: i, nodeId: '', spec: svc.spec.task, specVersion: 1, desiredState: 'running', status: { state: 'new', timestamp: '', message: '' }, networks: [] });
  }
});
await allDelivered;
const t1 = performance.now();
clearInterval(beat);
const counts = [...delivered.values()];
emit('pipeline_fake_nodes', NODES, 'nodes');
emit('pipeline_tasks', TASKS, 'tasks');
emit('pipeline_new_to_delivered', (t1 - t0) / 1000, 's');
emit('pipeline_throughput', TASKS / ((t1 - t0) / 1000), 'tasks/s');
emit('pipeline_max_tasks_per_node', Math.max(...counts), 'tasks');
emit('pipeline_min_tasks_per_node', Math.min(...counts), 'tasks');
await Promise.all([allocator.stop(), scheduler.stop(), dispatcher.stop()]);
