import test from 'ava';
import { DEFAULTS, type Service, type Task } from '@shoal/api';
import { FakeCluster, node } from './helpers.js';
import { RollingUpdater, type UpdateSlot } from '../src/update.js';

test('rolling update, parallelism 1, stop-first: one slot at a time, status updating → completed', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('web', { replicas: 3, update: { parallelism: 1 } });
  await c.converge();
  await c.forceUpdate(id);
  t.is(c.service(id)?.updateStatus?.state, 'updating');
  const stale = () => c.tasks(id).filter((x) => x.specVersion === 1 && x.desiredState === 'running').length;
  t.is(stale(), 2, 'only one slot at a time');
  t.is(c.desiredRunning(id).length, 2, 'stop-first: the replacement waits for the old task to stop');
  await c.runAgents(); // old task stops → replacement created
  t.is(c.desiredRunning(id).length, 3);
  await c.converge();
  t.true(c.desiredRunning(id).every((x) => x.specVersion === 2 && x.status.state === 'running'));
  t.is(c.service(id)?.updateStatus?.state, 'updating', 'still inside the 5 s monitor window');
  await c.advance(4999);
  t.is(c.service(id)?.updateStatus?.state, 'updating');
  await c.advance(1);
  t.is(c.service(id)?.updateStatus?.state, 'completed');
  t.deepEqual(c.violations, []);
});

test('update delay: the next slot waits delayMs after the previous one is running', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 2, update: { parallelism: 1, delayMs: 10_000 } });
  await c.converge();
  await c.forceUpdate(id);
  await c.converge();
  t.is(c.desiredRunning(id).filter((x) => x.specVersion === 2).length, 1);
  await c.advance(9_999);
  await c.converge();
  t.is(c.desiredRunning(id).filter((x) => x.specVersion === 2).length, 1);
  await c.advance(1);
  await c.converge();
  t.is(c.desiredRunning(id).filter((x) => x.specVersion === 2).length, 2);
  await c.advance(5000); // update monitor
  t.is(c.service(id)?.updateStatus?.state, 'completed');
});

test('a new task failing during the update pauses it (failure action pause)', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 3, update: { parallelism: 1 }, restart: { delayMs: 1000 } });
  await c.converge();
  await c.forceUpdate(id);
  await c.runAgents(); // the first old task stops; its replacement is created
  const fresh = c.desiredRunning(id).find((x) => x.specVersion === 2)!;
  await c.end(fresh.id);
  const st = c.service(id)?.updateStatus;
  t.is(st?.state, 'paused');
  t.regex(st!.message, new RegExp(`update paused due to failure or early termination of task ${fresh.id}`));
  await c.advance(1000);
  await c.converge();
  t.is(c.desiredRunning(id).filter((x) => x.specVersion === 1).length, 2, 'no further slots while paused');
  // a new spec change resumes updating
  await c.forceUpdate(id);
  await c.converge();
  t.true(c.desiredRunning(id).every((x) => x.specVersion === 3));
  await c.advance(5000); // update monitor
  t.is(c.service(id)?.updateStatus?.state, 'completed');
});

test('failure action rollback: spec goes back to the previous one and every slot follows', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 2, update: { parallelism: 1, failureAction: 'rollback' } });
  await c.converge();
  await c.updateService(id, (s) => { s.spec.task.container.image = 'bad'; });
  await c.runAgents();
  const fresh = c.desiredRunning(id).find((x) => x.spec.container.image === 'bad')!;
  await c.end(fresh.id, 'rejected', 0, 'No such image: bad');
  const svc = c.service(id)!;
  t.is(svc.updateStatus?.state, 'rollback_started');
  t.is(svc.spec.task.container.image, 'busybox');
  t.is(svc.specVersion, 3);
  await c.converge();
  t.true(c.desiredRunning(id).every((x) => x.spec.container.image === 'busybox' && x.status.state === 'running'));
  await c.advance(5000); // update monitor
  t.is(c.service(id)?.updateStatus?.state, 'rollback_completed');
  t.deepEqual(c.violations, []);
});

test('scaling does not start an update', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 1 });
  await c.converge();
  await c.scale(id, 3);
  await c.converge();
  t.is(c.service(id)?.updateStatus, undefined);
});

test('start-first: the replacement runs before the old task is shut down', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await c.createService('web', { replicas: 2, update: { parallelism: 1, order: 'start-first' } });
  await c.converge();
  const old = c.desiredRunning(id);
  await c.forceUpdate(id);
  const during = c.desiredRunning(id);
  t.is(during.length, 3, 'one extra task while one slot is replaced');
  const slot = during.find((x) => x.specVersion === 2)!.slot;
  t.is(during.filter((x) => x.slot === slot).length, 2);
  await c.runAgents(); // the new task starts; the old one is then shut down
  const oldInSlot = old.find((x) => x.slot === slot)!;
  t.is(c.store.view((tx) => tx.get('tasks', oldInSlot.id))?.desiredState, 'shutdown');
  await c.converge();
  const after = c.desiredRunning(id);
  t.is(after.length, 2);
  t.true(after.every((x) => x.specVersion === 2 && x.status.state === 'running'));
  await c.advance(5000); // update monitor
  t.is(c.service(id)?.updateStatus?.state, 'completed');
  t.is(c.peak.get(id), 3, 'never more than replicas + parallelism');
});

test('a failure inside the monitor window after the last slot still triggers the failure action', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 1, update: { parallelism: 1, monitorMs: 5000 } });
  await c.converge();
  await c.forceUpdate(id);
  await c.converge();
  await c.advance(2000);
  await c.end(c.inSlot(id, 1)!.id);
  t.is(c.service(id)?.updateStatus?.state, 'paused');
});


/** What ControlApi.updateService({ rollback: true }) writes: the previous spec back, rollback_started. */
async function manualRollback(c: FakeCluster, id: string): Promise<void> {
  await c.store.update((tx) => {
    const s = tx.get('services', id)!;
    tx.update('services', {
      ...s, spec: s.previousSpec!, previousSpec: s.spec, specVersion: s.specVersion + 1,
      updateStatus: { state: 'rollback_started', startedAt: new Date(c.clock.now()).toISOString(), message: 'manually requested rollback' },
    });
  });
}
test('manual rollback (the control API sets rollback_started): slots follow the rollback config; status ends rollback_completed, never updating', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 2, update: { parallelism: 0 } });
  await c.updateService(id, (s) => { s.spec.rollback = { ...s.spec.update!, parallelism: 1, monitorMs: 1000 }; });
  await c.converge();
  await c.updateService(id, (s) => { s.spec.task.container.image = 'v2'; });
  await c.converge();
  await c.advance(5000);
  t.is(c.service(id)?.updateStatus?.state, 'completed');
  const states: string[] = [];
  c.store.watch((ev) => {
    if (ev.kind === 'update' && ev.table === 'services') states.push(String((ev.object as { updateStatus?: { state: string } }).updateStatus?.state));
  });
  await manualRollback(c, id);
  await c.settle();
  const v = c.service(id)!.specVersion;
  t.is(c.tasks(id).filter((x) => x.specVersion !== v && x.desiredState === 'running').length, 1, 'rollback parallelism 1: one slot at a time');
  await c.converge();
  t.true(c.desiredRunning(id).every((x) => x.spec.container.image === 'busybox' && x.status.state === 'running'));
  t.is(c.service(id)?.updateStatus?.state, 'rollback_started', 'inside the rollback monitor window');
  await c.advance(1000);
  const st = c.service(id)?.updateStatus;
  t.like(st, { state: 'rollback_completed', message: 'rollback completed' });
  t.truthy(st?.completedAt);
  t.false(states.includes('updating'), `states seen: ${states.join(', ')}`);
  t.deepEqual(c.violations, []);
});

test('a manual rollback whose tasks fail pauses as rollback_paused', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await c.createService('web', { replicas: 2, update: { parallelism: 1 } });
  await c.converge();
  await c.updateService(id, (s) => { s.spec.task.container.image = 'v2'; });
  await c.converge();
  await c.advance(5000);
  await manualRollback(c, id);
  await c.settle();
  await c.runAgents();
  const fresh = c.desiredRunning(id).find((x) => x.specVersion === c.service(id)!.specVersion)!;
  await c.end(fresh.id);
  const st = c.service(id)?.updateStatus;
  t.is(st?.state, 'rollback_paused');
  t.regex(st!.message, /^rollback paused due to failure or early termination of task /);
});

test('stop-first: a replacement the scheduler cannot place (pending with a reason) does not hold up the update (B03)', (t) => {
  // The planner alone: slot 1's replacement is pending "no suitable node", slot 2 is still out of date.
  const u = new RollingUpdater();
  const svc = { id: 's1', specVersion: 2, spec: { update: { ...DEFAULTS.update, parallelism: 1 } }, updateStatus: { state: 'updating', startedAt: '', message: '' } } as unknown as Service;
  const task = (slot: number, specVersion: number, state: Task['status']['state'], err?: string) =>
    ({ id: `t${slot}v${specVersion}`, slot, specVersion, status: { state, timestamp: '', message: '', ...(err ? { err } : {}) } }) as unknown as Task;
  const pending = task(1, 2, 'pending', 'no suitable node (max replicas per node limit exceed on 1 node)');
  const slots: UpdateSlot[] = [
    { key: '1', cur: pending, prev: task(1, 1, 'shutdown'), stopped: false },
    { key: '2', cur: task(2, 1, 'running'), stopped: false },
  ];
  t.deepEqual(u.plan(svc, slots, 0).replace, ['2'], 'the next slot goes');
  // Without a reason yet (not scheduled so far) the replacement is still in flight.
  const u2 = new RollingUpdater();
  t.deepEqual(u2.plan(svc, [{ ...slots[0]!, cur: task(1, 2, 'pending') }, slots[1]!], 0).replace, []);
  // Every slot done as far as it can go: the update completes after the monitor window.
  t.deepEqual(u.plan(svc, [slots[0]!, { key: '2', cur: task(2, 2, 'starting'), prev: task(2, 1, 'shutdown'), stopped: false }], 500).replace, []);
  const done: UpdateSlot[] = [slots[0]!, { key: '2', cur: task(2, 2, 'running'), prev: task(2, 1, 'shutdown'), stopped: false }];
  t.is(u.plan(svc, done, 1000).status, undefined, 'inside the monitor window');
  t.is(u.plan(svc, done, 1000 + DEFAULTS.update.monitorMs).status?.state, 'completed');
  // Start-first keeps waiting for its replacement (the old task still runs until it does).
  const sf = { ...svc, spec: { update: { ...DEFAULTS.update, parallelism: 1, order: 'start-first' } } } as unknown as Service;
  t.deepEqual(new RollingUpdater().plan(sf, slots, 0).replace, []);
});
