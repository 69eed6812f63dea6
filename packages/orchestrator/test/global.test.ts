import test from 'ava';
import { FakeCluster, node } from './helpers.js';

const nodesOf = (ts: { nodeId: string }[]) => ts.map((t) => t.nodeId).sort();

test('one task per eligible node, created with its node set and state NEW', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2'), node('n3', { availability: 'drain' }), node('n4', { state: 'down' }), node('n5', { availability: 'pause' })]);
  const id = await c.createService('agent', { global: true });
  const ts = c.desiredRunning(id);
  t.deepEqual(nodesOf(ts), ['n1', 'n2']);
  for (const x of ts) {
    t.is(x.slot, 0);
    t.is(x.status.state, 'new');
    t.is(x.desiredState, 'running');
  }
  t.deepEqual(c.violations, []);
});

test('a new node gets its task as soon as it is Ready, not before (B07)', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('agent', { global: true });
  await c.addNode(node('n2', { state: 'unknown' }));
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n1']);
  await c.updateNode('n2', (n) => { n.status.state = 'ready'; });
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n1', 'n2']);
  await c.converge();
  await c.addNode(node('n3'));
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n1', 'n2', 'n3']);
  t.deepEqual(c.violations, []);
});

test('drained and down nodes lose their task; it comes back when the node is active and ready again', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2'), node('n3')]);
  const id = await c.createService('agent', { global: true });
  await c.converge();
  await c.updateNode('n2', (n) => { n.spec.availability = 'drain'; });
  await c.updateNode('n3', (n) => { n.status.state = 'down'; });
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n1']);
  t.true(c.tasks(id).filter((x) => x.nodeId !== 'n1').every((x) => x.desiredState === 'remove'));
  await c.converge();
  await c.reap();
  t.deepEqual(nodesOf(c.tasks(id)), ['n1'], 'retired tasks are reaped once stopped (or their node is down)');
  await c.updateNode('n2', (n) => { n.spec.availability = 'active'; });
  await c.updateNode('n3', (n) => { n.status.state = 'ready'; });
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n1', 'n2', 'n3'], 'new tasks at once, no restart delay');
  t.deepEqual(c.violations, []);
});

test('constraints pick the nodes; a label change adds or removes the task', async (t) => {
  const c = await new FakeCluster().init([node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'b' } }), node('m1', { role: 'manager' })]);
  const id = await c.createService('agent', { global: true, constraints: ['node.labels.zone==a', 'node.role!=manager'] });
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n1']);
  await c.updateNode('n2', (n) => { n.spec.labels = { zone: 'a' }; });
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n1', 'n2']);
  await c.updateNode('n1', (n) => { n.spec.labels = {}; });
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n2']);
});

test('a failed global task is restarted on the same node after the delay; condition none leaves it (B07)', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('agent', { global: true, restart: { delayMs: 1000 } });
  const none = await c.createService('once', { global: true, restart: { condition: 'none' } });
  await c.converge();
  const old = c.desiredRunning(id).find((x) => x.nodeId === 'n2')!;
  await c.end(old.id);
  t.deepEqual(nodesOf(c.desiredRunning(id)), ['n1']);
  await c.advance(1000);
  const repl = c.desiredRunning(id).find((x) => x.nodeId === 'n2');
  t.truthy(repl);
  t.not(repl!.id, old.id);
  const o = c.desiredRunning(none).find((x) => x.nodeId === 'n1')!;
  await c.end(o.id, 'failed', 1, 'cannot create a swarm scoped network when swarm is not active');
  await c.advance(60_000);
  t.deepEqual(nodesOf(c.desiredRunning(none)), ['n2']);
  t.is(c.store.view((tx) => tx.get('tasks', o.id))?.status.err, 'cannot create a swarm scoped network when swarm is not active', 'the reason stays visible');
  t.deepEqual(c.violations, []);
});

test('global service: a new leader creates no duplicates', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('agent', { global: true });
  await c.converge();
  const before = c.tasks(id).map((x) => x.id).sort();
  await c.newLeader();
  await c.converge();
  t.deepEqual(c.tasks(id).map((x) => x.id).sort(), before);
});

test('global rolling update replaces the task on every node', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('agent', { global: true, update: { parallelism: 0 } });
  await c.converge();
  await c.forceUpdate(id);
  await c.converge();
  const ts = c.desiredRunning(id);
  t.deepEqual(nodesOf(ts), ['n1', 'n2']);
  t.true(ts.every((x) => x.specVersion === 2 && x.status.state === 'running'));
  await c.advance(5000); // update monitor
  t.is(c.service(id)?.updateStatus?.state, 'completed');
  t.deepEqual(c.violations, []);
});

test('a paused node keeps its out-of-date task through an update, and is updated once active', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('agent', { global: true, update: { parallelism: 0 } });
  await c.converge();
  await c.updateNode('n2', (n) => { n.spec.availability = 'pause'; });
  await c.forceUpdate(id);
  await c.converge();
  const byNode = new Map(c.desiredRunning(id).map((x) => [x.nodeId, x]));
  t.is(byNode.get('n1')?.specVersion, 2);
  t.is(byNode.get('n2')?.specVersion, 1, 'kept running on the paused node');
  await c.advance(5000); // update monitor
  t.is(c.service(id)?.updateStatus?.state, 'completed');
  await c.updateNode('n2', (n) => { n.spec.availability = 'active'; });
  await c.converge();
  t.true(c.desiredRunning(id).every((x) => x.specVersion === 2));
  t.is(c.desiredRunning(id).length, 2);
});
