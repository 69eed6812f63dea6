import test from 'ava';
import { FakeCluster, node } from './helpers.js';

const slots = (ts: { slot: number }[]) => ts.map((t) => t.slot).sort((a, b) => a - b);

test('create: one NEW task per slot 1..N, desired running, unassigned, with the spec version', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 3 });
  const tasks = c.tasks(id);
  t.deepEqual(slots(tasks), [1, 2, 3]);
  for (const x of tasks) {
    t.is(x.desiredState, 'running');
    t.is(x.status.state, 'new');
    t.is(x.nodeId, '');
    t.is(x.serviceName, 'web');
    t.is(x.specVersion, 1);
    t.deepEqual(x.networks, []);
  }
  t.deepEqual(c.violations, []);
});

test('scale up, down, to zero with one command, and back', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('web', { replicas: 2 });
  await c.converge();
  await c.scale(id, 5);
  t.deepEqual(slots(c.desiredRunning(id)), [1, 2, 3, 4, 5]);
  await c.converge();
  await c.scale(id, 2);
  t.is(c.desiredRunning(id).length, 2);
  t.is(c.tasks(id).filter((x) => x.desiredState === 'remove').length, 3);
  await c.converge();
  await c.scale(id, 0);
  t.is(c.desiredRunning(id).length, 0, 'one scale to 0 is enough');
  t.true(c.tasks(id).every((x) => x.desiredState === 'remove'));
  await c.converge(); // agents stop them
  await c.reap();
  t.is(c.tasks(id).length, 0, 'stopped removed tasks are reaped');
  t.truthy(c.service(id), 'the service definition is kept');
  await c.scale(id, 3);
  t.deepEqual(slots(c.desiredRunning(id)), [1, 2, 3]);
  await c.converge();
  t.true(c.desiredRunning(id).every((x) => x.status.state === 'running'));
  t.deepEqual(c.violations, []);
});

test('scale down prefers tasks not yet running, then nodes with the most copies', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('web', { replicas: 4 });
  await c.converge(); // 2 per node
  // Put a third running copy on n1 by hand-moving slot 4's task? Instead: add two more replicas, run them, drain nothing.
  await c.scale(id, 5); // slot 5 created, not yet running
  await c.scale(id, 4);
  t.deepEqual(slots(c.desiredRunning(id)), [1, 2, 3, 4], 'the non-running slot 5 went first');
  // 5 replicas, all running: n1 gets 3 (fake scheduler: fewest tasks, tie by name)
  await c.scale(id, 5);
  await c.converge();
  const onN1 = c.desiredRunning(id).filter((x) => x.nodeId === 'n1').length;
  t.is(onN1, 3);
  await c.scale(id, 4);
  const after = c.desiredRunning(id);
  t.is(after.filter((x) => x.nodeId === 'n1').length, 2, 'a copy on the busiest node was removed');
  t.is(after.filter((x) => x.nodeId === 'n2').length, 2);
  t.deepEqual(c.violations, []);
});

test('with removeWaitsForStop, REMOVE tasks of a removed service wait until they have stopped', async (t) => {
  const c = await new FakeCluster({ removeWaitsForStop: true }).init([node('n1')]);
  const id = await c.createService('web', { replicas: 2 });
  await c.converge();
  // `service rm` as controlapi does it: tasks desired REMOVE and the service deleted in one transaction.
  await c.store.update((tx) => {
    for (const x of tx.tasksByService(id)) tx.update('tasks', { ...x, desiredState: 'remove' });
    tx.delete('services', id);
  });
  await c.reap();
  t.is(c.tasks(id).length, 2, 'still running: kept');
  await c.converge(); // the fake agents stop them
  await c.reap();
  t.is(c.tasks(id).length, 0);
});

test('service deleted outright (controlapi): the reaper deletes its tasks', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 2 });
  await c.converge();
  await c.store.update((tx) => {
    for (const x of tx.tasksByService(id)) tx.update('tasks', { ...x, desiredState: 'remove' });
    tx.delete('services', id);
  });
  await c.reap();
  t.is(c.tasks(id).length, 0);
});

test('orphan tasks (service gone, desired still running) are reaped; with removeWaitsForStop first told to stop', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 1 });
  await c.converge();
  await c.store.update((tx) => tx.delete('services', id));
  await c.reap();
  t.is(c.tasks(id).length, 0);

  const c2 = await new FakeCluster({ removeWaitsForStop: true }).init([node('n1')]);
  const id2 = await c2.createService('web', { replicas: 1 });
  await c2.converge();
  await c2.store.update((tx) => tx.delete('services', id2));
  await c2.reap();
  t.is(c2.tasks(id2)[0]?.desiredState, 'remove');
  await c2.converge();
  await c2.reap();
  t.is(c2.tasks(id2).length, 0);
});

test('leader change: a new orchestrator over the same store creates no duplicates', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('web', { replicas: 3 });
  await c.converge();
  const before = c.tasks(id).map((x) => x.id).sort();
  await c.newLeader();
  await c.converge();
  t.deepEqual(c.tasks(id).map((x) => x.id).sort(), before);
  // and a half-done scale (service changed while no leader ran) is finished by the new leader
  c.orch.stop();
  await c.store.update((tx) => {
    const s = tx.get('services', id)!;
    tx.update('services', { ...s, spec: { ...s.spec, mode: { replicated: { replicas: 4 } } } });
  });
  await c.newLeader();
  t.deepEqual(slots(c.desiredRunning(id)), [1, 2, 3, 4]);
  t.deepEqual(c.violations, []);
});

test('a restore event (snapshot installed) makes the orchestrator reconcile everything', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 2 });
  const snap = c.store.snapshot();
  // change the snapshot: replicas 3
  const state = JSON.parse(new TextDecoder().decode(snap)) as { tables: { services: { spec: { mode: unknown } }[] } };
  state.tables.services[0]!.spec.mode = { replicated: { replicas: 3 } };
  c.store.restore(new TextEncoder().encode(JSON.stringify(state)), c.store.appliedIndex);
  await c.settle();
  t.deepEqual(slots(c.desiredRunning(id)), [1, 2, 3]);
});

test('a large scale-up is split into transactions of at most 200 new tasks', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  let biggest = 0;
  let inEntry = 0;
  c.store.watch((ev) => {
    if (ev.kind === 'create' && ev.table === 'tasks') inEntry++;
    if (ev.kind === 'commit') {
      biggest = Math.max(biggest, inEntry);
      inEntry = 0;
    }
  });
  const id = await c.createService('big', { replicas: 450 });
  t.is(c.desiredRunning(id).length, 450);
  t.is(new Set(c.desiredRunning(id).map((x) => x.slot)).size, 450);
  t.is(biggest, 200);
});
