import test from 'ava';
import { DRAIN_HANDOFF_MS } from '../src/index.js';
import { FakeCluster, node } from './helpers.js';

test('a failed task is replaced in the same slot after the restart delay, not before', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 2, restart: { delayMs: 5000 } });
  await c.converge();
  const old = c.inSlot(id, 2)!;
  await c.end(old.id, 'failed');
  t.is(c.store.view((tx) => tx.get('tasks', old.id))?.desiredState, 'shutdown');
  t.is(c.inSlot(id, 2), undefined, 'no replacement during the delay');
  await c.advance(4999);
  t.is(c.inSlot(id, 2), undefined);
  await c.advance(1);
  const repl = c.inSlot(id, 2)!;
  t.truthy(repl);
  t.not(repl.id, old.id);
  t.is(repl.status.state, 'new');
  t.is(c.store.view((tx) => tx.get('tasks', old.id))?.status.err, 'task: non-zero exit (1)', 'the old task keeps its error');
  t.is(c.inSlot(id, 1)?.status.state, 'running', 'the other slot is untouched');
  t.deepEqual(c.violations, []);
});

test('restart condition none: never replaced; the slot stays empty', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 1, restart: { condition: 'none', delayMs: 10 } });
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id, 'failed');
  await c.advance(60_000);
  t.is(c.desiredRunning(id).length, 0);
  t.is(c.tasks(id).length, 1);
});

test('restart condition on-failure: exit 0 is not restarted, a failure or rejection is', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 3, restart: { condition: 'on-failure', delayMs: 100 } });
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id, 'complete', 0);
  await c.end(c.inSlot(id, 2)!.id, 'failed', 2);
  await c.end(c.inSlot(id, 3)!.id, 'rejected', 0, 'No such image: nosuch');
  await c.advance(100);
  t.is(c.inSlot(id, 1), undefined);
  t.truthy(c.inSlot(id, 2));
  t.truthy(c.inSlot(id, 3));
});

test('restart condition any: even a task that completed is restarted', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 1, restart: { condition: 'any', delayMs: 100 } });
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id, 'complete', 0);
  await c.advance(100);
  t.truthy(c.inSlot(id, 1));
});

test('max attempts: the budget is used up, and a spec change resets it (B05)', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('once', { replicas: 1, restart: { condition: 'any', maxAttempts: 1, delayMs: 1000 } });
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id); // first kill
  await c.advance(1000);
  t.truthy(c.inSlot(id, 1), 'one replacement');
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id); // second kill
  await c.advance(15_000);
  t.is(c.inSlot(id, 1), undefined, 'budget used up: no replacement');
  const dead = c.tasks(id).sort((a, b) => a.meta.createdAt.localeCompare(b.meta.createdAt)).at(-1)!;
  t.is(dead.status.err, 'task: non-zero exit (1); not restarted: restart limit reached (1 of 1 attempts used)', 'service ps shows why');
  await c.forceUpdate(id); // service update --force
  const fresh = c.inSlot(id, 1);
  t.truthy(fresh, 'the update creates a fresh task');
  t.is(fresh!.specVersion, 2);
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id); // third kill
  await c.advance(1000);
  t.truthy(c.inSlot(id, 1), 'budget reset by the spec change');
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id); // fourth kill
  await c.advance(15_000);
  t.is(c.inSlot(id, 1), undefined, 'used up again');
  t.deepEqual(c.violations, []);
});

test('max attempts with a window: attempts older than the window do not count', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('w', { replicas: 1, restart: { maxAttempts: 1, windowMs: 60_000, delayMs: 1000 } });
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id);
  await c.advance(1000);
  await c.converge();
  await c.advance(61_000); // the first restart leaves the window
  await c.end(c.inSlot(id, 1)!.id);
  await c.advance(1000);
  t.truthy(c.inSlot(id, 1), 'restarted: the old attempt is outside the window');
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id);
  await c.advance(5000);
  t.is(c.inSlot(id, 1), undefined, 'the second attempt in the window is refused');
});

test('a pending restart delay survives a leader change (re-armed from the store)', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 1, restart: { delayMs: 5000 } });
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id);
  await c.advance(2000);
  await c.newLeader();
  t.is(c.inSlot(id, 1), undefined, 'the new leader still waits');
  await c.advance(3000);
  t.truthy(c.inSlot(id, 1), 'and restarts once the delay (from the task end) has passed');
  t.is(c.desiredRunning(id).length, 1);
});

test('max attempts are remembered across a leader change', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 1, restart: { maxAttempts: 1, delayMs: 100 } });
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id);
  await c.advance(100);
  await c.converge();
  await c.newLeader();
  await c.end(c.inSlot(id, 1)!.id);
  await c.advance(10_000);
  t.is(c.inSlot(id, 1), undefined);
});

test('node down: only its tasks are replaced, at once, despite a long restart delay (B08)', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2'), node('n3')]);
  const id = await c.createService('web', { replicas: 6, restart: { delayMs: 30_000 } });
  await c.converge();
  const healthy = c.desiredRunning(id).filter((x) => x.nodeId !== 'n1').map((x) => x.id).sort();
  const dead = c.desiredRunning(id).filter((x) => x.nodeId === 'n1');
  t.is(dead.length, 2);
  await c.updateNode('n1', (n) => { n.status.state = 'down'; });
  const now = c.desiredRunning(id);
  t.is(now.length, 6);
  for (const d of dead) {
    t.is(c.store.view((tx) => tx.get('tasks', d.id))?.desiredState, 'shutdown');
    t.not(c.inSlot(id, d.slot)!.id, d.id, `slot ${d.slot} has a replacement`);
  }
  await c.converge();
  t.deepEqual(c.desiredRunning(id).filter((x) => dead.every((d) => d.slot !== x.slot)).map((x) => x.id).sort(), healthy, 'healthy tasks keep their IDs');
  t.false(c.desiredRunning(id).some((x) => x.nodeId === 'n1'));
  t.deepEqual(c.violations, []);
});

test('node unknown (e.g. after a leader change) is not down: nothing moves', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('web', { replicas: 4 });
  await c.converge();
  const before = c.desiredRunning(id).map((x) => x.id).sort();
  await c.updateNode('n1', (n) => { n.status.state = 'unknown'; });
  t.deepEqual(c.desiredRunning(id).map((x) => x.id).sort(), before);
});

test('drain: exactly the drained node\'s tasks move, at once, never more than replicas desired-running (B02)', async (t) => {
  const c = await new FakeCluster().init([node('w1'), node('w2')]);
  const id = await c.createService('web', { replicas: 4, restart: { delayMs: 30_000 } });
  await c.converge();
  t.is(c.desiredRunning(id).filter((x) => x.nodeId === 'w2').length, 2);
  await c.updateNode('w2', (n) => { n.spec.availability = 'drain'; });
  const desired = c.desiredRunning(id);
  t.deepEqual(desired.map((x) => x.slot), [1, 2, 3, 4], 'one per slot, replacements created immediately');
  await c.converge();
  t.true(c.desiredRunning(id).every((x) => x.nodeId === 'w1' && x.status.state === 'running'));
  const w2 = c.tasks(id).filter((x) => x.nodeId === 'w2');
  t.is(w2.length, 2);
  t.true(w2.every((x) => x.desiredState === 'shutdown' && x.status.state === 'shutdown'));
  t.is(c.peak.get(id), 4, 'never more than 4 desired-running at any commit');
  // back to active: no rebalancing
  const ids = c.desiredRunning(id).map((x) => x.id).sort();
  await c.updateNode('w2', (n) => { n.spec.availability = 'active'; });
  await c.converge();
  t.deepEqual(c.desiredRunning(id).map((x) => x.id).sort(), ids);
  t.deepEqual(c.violations, []);
});

test('drain of a start-first service: the old task hands over to its replacement, never more than replicas desired-running', async (t) => {
  const c = await new FakeCluster().init([node('w1'), node('w2')]);
  const id = await c.createService('web', { replicas: 2, update: { order: 'start-first' }, restart: { delayMs: 30_000 } });
  await c.converge();
  const old = c.desiredRunning(id).find((x) => x.nodeId === 'w2')!;
  const keep = c.desiredRunning(id).find((x) => x.nodeId === 'w1')!;
  await c.updateNode('w2', (n) => { n.spec.availability = 'drain'; });
  const after = c.store.view((tx) => tx.get('tasks', old.id))!;
  const fresh = c.inSlot(id, old.slot)!;
  t.not(fresh.id, old.id, 'replacement created at once in the same slot');
  t.is(after.desiredState, 'shutdown', 'the store says shutdown: the count rule holds');
  t.deepEqual(after.handoff, { to: fresh.id, until: new Date(c.clock.now() + DRAIN_HANDOFF_MS).toISOString() });
  t.is(c.store.view((tx) => tx.get('tasks', keep.id))!.handoff, undefined, 'tasks on other nodes are untouched');
  t.is(c.desiredRunning(id).length, 2);
  await c.converge();
  t.true(c.desiredRunning(id).every((x) => x.nodeId === 'w1' && x.status.state === 'running'));
  t.is(c.peak.get(id), 2, 'never more than 2 desired-running at any commit');
});

test('drain: no handoff for stop-first services, for tasks not yet RUNNING, on Down nodes or on constraint mismatch', async (t) => {
  const c = await new FakeCluster().init([node('w1', { labels: { zone: 'a' } }), node('w2', { labels: { zone: 'a' } }), node('w3', { labels: { zone: 'a' } })]);
  const stop = await c.createService('stop', { replicas: 3 });
  const sf = await c.createService('sf', { replicas: 3, update: { order: 'start-first' }, constraints: ['node.labels.zone==a'] });
  await c.converge();
  await c.updateNode('w1', (n) => { n.spec.availability = 'drain'; });
  const stopOld = c.tasks(stop).filter((x) => x.nodeId === 'w1');
  t.true(stopOld.length > 0 && stopOld.every((x) => x.desiredState === 'shutdown' && x.handoff === undefined), 'stop-first: unchanged behaviour');
  t.true(c.tasks(sf).filter((x) => x.nodeId === 'w1').every((x) => x.handoff !== undefined), 'start-first: handoff');
  await c.converge();
  await c.updateNode('w2', (n) => { n.status.state = 'down'; });
  const down = c.tasks(sf).filter((x) => x.nodeId === 'w2');
  t.true(down.length > 0 && down.every((x) => x.desiredState === 'shutdown' && x.handoff === undefined), 'Down node: nothing to hand over');
  await c.converge();
  await c.updateNode('w3', (n) => { n.spec.labels = { zone: 'b' }; });
  const moved = c.tasks(sf).filter((x) => x.nodeId === 'w3');
  t.true(moved.length > 0 && moved.every((x) => x.desiredState === 'shutdown' && x.handoff === undefined), 'constraint mismatch: no handoff');
  // A task assigned but not yet RUNNING on a drained node stops at once.
  const c2 = await new FakeCluster().init([node('w1'), node('w2')]);
  const id2 = await c2.createService('sf', { replicas: 1, update: { order: 'start-first' } });
  await c2.store.update((tx) => {
    const x = tx.tasksByService(id2)[0]!;
    tx.update('tasks', { ...x, nodeId: 'w2', status: { ...x.status, state: 'assigned' } });
  });
  await c2.settle();
  await c2.updateNode('w2', (n) => { n.spec.availability = 'drain'; });
  const was = c2.tasks(id2).find((x) => x.nodeId === 'w2')!;
  t.is(was.desiredState, 'shutdown');
  t.is(was.handoff, undefined);
});

test('drain of a start-first service with a custom handoff limit (orchestrator option)', async (t) => {
  const c = await new FakeCluster({ drainHandoffMs: 5_000 }).init([node('w1'), node('w2')]);
  const id = await c.createService('web', { replicas: 1, update: { order: 'start-first' } });
  await c.converge();
  const old = c.desiredRunning(id)[0]!;
  await c.updateNode(old.nodeId, (n) => { n.spec.availability = 'drain'; });
  const h = c.store.view((tx) => tx.get('tasks', old.id))!.handoff;
  t.is(h?.until, new Date(c.clock.now() + 5_000).toISOString());
  t.is(h?.to, c.inSlot(id, 1)!.id);
  t.is(c.peak.get(id), 1);
});

test('pause: tasks stay where they are', async (t) => {
  const c = await new FakeCluster().init([node('w1'), node('w2')]);
  const id = await c.createService('web', { replicas: 2 });
  await c.converge();
  const before = c.desiredRunning(id).map((x) => x.id).sort();
  await c.updateNode('w2', (n) => { n.spec.availability = 'pause'; });
  t.deepEqual(c.desiredRunning(id).map((x) => x.id).sort(), before);
});

test('a task that failed before its node was drained still follows its restart policy', async (t) => {
  const c = await new FakeCluster().init([node('w1'), node('w2')]);
  const id = await c.createService('web', { replicas: 2, restart: { condition: 'none' } });
  await c.converge();
  const onW2 = c.desiredRunning(id).find((x) => x.nodeId === 'w2')!;
  await c.end(onW2.id);
  t.is(c.inSlot(id, onW2.slot), undefined, 'condition none: not restarted');
  await c.updateNode('w2', (n) => { n.spec.availability = 'drain'; });
  t.is(c.inSlot(id, onW2.slot), undefined, 'a failure is still a failure after the drain');
});

test('a node that stops satisfying the constraints loses its tasks to other nodes at once', async (t) => {
  const c = await new FakeCluster().init([node('w1', { labels: { zone: 'a' } }), node('w2', { labels: { zone: 'a' } })]);
  const id = await c.createService('web', { replicas: 2, constraints: ['node.labels.zone==a'], restart: { delayMs: 30_000 } });
  await c.converge();
  const onW2 = c.desiredRunning(id).find((x) => x.nodeId === 'w2')!;
  await c.updateNode('w2', (n) => { n.spec.labels = { zone: 'b' }; });
  t.is(c.store.view((tx) => tx.get('tasks', onW2.id))?.desiredState, 'shutdown');
  t.not(c.inSlot(id, onW2.slot)?.id, onW2.id);
  t.deepEqual(c.violations, []);
});

test('a slot retired by a scale-down and reused later starts with a fresh attempt budget', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 2, restart: { maxAttempts: 1, delayMs: 100 } });
  await c.converge();
  await c.end(c.inSlot(id, 2)!.id);
  await c.advance(100);
  await c.converge(); // slot 2 used its one restart
  await c.scale(id, 1);
  await c.converge();
  await c.reap();
  await c.scale(id, 2);
  await c.converge();
  await c.end(c.inSlot(id, 2)!.id);
  await c.advance(100);
  t.truthy(c.inSlot(id, 2), 'restarted: the budget belonged to the retired slot');
});

test('after stop() (leadership lost) pending restart timers write nothing', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 1, restart: { delayMs: 1000 } });
  await c.converge();
  await c.end(c.inSlot(id, 1)!.id);
  t.is(c.orch.restart.pendingRestarts, 1);
  c.orch.stop();
  t.is(c.clock.pending, 0, 'timers cleared');
  const index = c.store.appliedIndex;
  c.clock.advance(10_000);
  await new Promise((r) => setImmediate(r));
  t.is(c.store.appliedIndex, index);
  t.is(c.inSlot(id, 1), undefined);
});
