import test from 'ava';
import { FakeCluster, node } from './helpers.js';

async function crash(c: FakeCluster, id: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await c.converge();
    await c.end(c.inSlot(id, 1)!.id);
    await c.advance(1000);
  }
  await c.converge();
}

test('history per slot stays at 1 current + limit old tasks for a crash-looping service (B06)', async (t) => {
  const c = await new FakeCluster().init([node('n1')], 2);
  const id = await c.createService('crash', { replicas: 1, restart: { delayMs: 1000 } });
  const id2 = await c.createService('crash2', { replicas: 1, restart: { delayMs: 1000, maxAttempts: 1000 } });
  let max = 0;
  for (let i = 0; i < 8; i++) {
    await crash(c, id, 1);
    await crash(c, id2, 1);
    await c.reap();
    max = Math.max(max, c.tasks(id).length, c.tasks(id2).length);
  }
  t.is(max, 3);
  t.is(c.tasks(id).length, 3);
  t.is(c.tasks(id2).length, 3, 'also with max attempts');
  t.is(c.desiredRunning(id2).length, 1, 'attempt counting does not need the pruned records');
});

test('lowering the limit prunes existing history in the next batch; the current task is kept', async (t) => {
  const c = await new FakeCluster().init([node('n1')], 5);
  const id = await c.createService('crash', { replicas: 2, restart: { delayMs: 1000 } });
  await crash(c, id, 4);
  await c.reap();
  t.is(c.tasks(id).filter((x) => x.slot === 1).length, 5);
  const current = c.inSlot(id, 1)!.id;
  await c.store.update((tx) => {
    const cl = tx.list('clusters')[0]!;
    tx.update('clusters', { ...cl, spec: { ...cl.spec, taskHistoryRetentionLimit: 1 } });
  });
  await c.reap();
  const s1 = c.tasks(id).filter((x) => x.slot === 1);
  t.is(s1.length, 2);
  t.true(s1.some((x) => x.id === current));
  t.is(c.tasks(id).filter((x) => x.slot === 2).length, 1);
});

test('oldest go first; limit 0 keeps only the current task, even while a restart is pending', async (t) => {
  const c = await new FakeCluster().init([node('n1')], 3);
  const id = await c.createService('crash', { replicas: 1, restart: { delayMs: 1000 } });
  await crash(c, id, 5);
  await c.reap();
  const kept = c.tasks(id).sort((a, b) => a.meta.createdAt.localeCompare(b.meta.createdAt));
  t.is(kept.length, 4);
  await c.store.update((tx) => {
    const cl = tx.list('clusters')[0]!;
    tx.update('clusters', { ...cl, spec: { ...cl.spec, taskHistoryRetentionLimit: 0 } });
  });
  const last = c.inSlot(id, 1)!;
  await c.end(last.id); // restart pending for 1000 ms
  await c.reap();
  t.deepEqual(c.tasks(id).map((x) => x.id), [last.id], 'the ended task is the slot\'s current one: kept');
  await c.advance(1000);
  t.truthy(c.inSlot(id, 1), 'so the restart policy still sees it');
  await c.converge();
  await c.reap();
  t.is(c.tasks(id).length, 1);
});

test('a task that may still run is never deleted, even beyond the limit', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')], 0);
  const id = await c.createService('web', { replicas: 1, update: { parallelism: 1 } });
  await c.converge();
  const old = c.inSlot(id, 1)!;
  await c.forceUpdate(id); // old gets desired shutdown, still running
  await c.reap();
  t.truthy(c.store.view((tx) => tx.get('tasks', old.id)), 'kept while still running');
  await c.converge();
  await c.reap();
  t.is(c.store.view((tx) => tx.get('tasks', old.id)), undefined, 'deleted once stopped');
  t.is(c.tasks(id).length, 1);
});
