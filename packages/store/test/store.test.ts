import test from 'ava';
import type { Service, Task } from '@shoal/api';
import { SequenceConflictError } from '@shoal/api';
import { FakeProposer, newTestStore } from '@shoal/testkit';
import { MemoryStore, type StoreEvent } from '../src/index.js';

const svc = (id: string, name: string): Service => ({
  id, meta: { version: 0, createdAt: '', updatedAt: '' }, specVersion: 1,
  spec: {
    name, labels: {}, mode: { replicated: { replicas: 1 } },
    task: { container: { image: 'x' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], maxReplicas: 0 }, networks: [], forceUpdate: 0 },
  },
});
const task = (id: string, serviceId: string, nodeId = ''): Task => ({
  id, meta: { version: 0, createdAt: '', updatedAt: '' }, serviceId, serviceName: 's', slot: 1, nodeId, specVersion: 1,
  spec: svc('x', 'x').spec.task, desiredState: 'running', status: { state: 'new', timestamp: '', message: '' }, networks: [],
});

test('create then view; version is the log index', async (t) => {
  const s = newTestStore();
  await s.update((tx) => tx.create('services', svc('a', 'web')));
  const got = s.view((tx) => tx.get('services', 'a'));
  t.is(got?.spec.name, 'web');
  t.is(got?.meta.version, 1);
  t.true(Object.isFrozen(got));
  t.is(s.view((tx) => tx.byName('services', 'web'))?.id, 'a');
});

test('duplicate name is refused and nothing is written', async (t) => {
  const s = newTestStore();
  await s.update((tx) => tx.create('services', svc('a', 'web')));
  await t.throwsAsync(s.update((tx) => tx.create('services', svc('b', 'web'))), { message: /service web already exists/ });
  t.is(s.view((tx) => tx.list('services')).length, 1);
});

test('a transaction sees its own writes', async (t) => {
  const s = newTestStore();
  await s.update((tx) => {
    tx.create('services', svc('a', 'web'));
    tx.create('tasks', task('t1', 'a'));
    t.is(tx.tasksByService('a').length, 1);
    const x = tx.get('tasks', 't1')!;
    x.nodeId = 'n1';
    tx.update('tasks', x);
    t.is(tx.tasksByNode('n1').length, 1);
  });
  t.is(s.view((tx) => tx.tasksByNode('n1')).length, 1);
  t.is(s.view((tx) => tx.tasksByService('a')).length, 1);
});

test('concurrent conflicting updates: one wins, the other retries against fresh state', async (t) => {
  const s = newTestStore();
  await s.update((tx) => tx.create('tasks', task('t1', 'a')));
  let runs = 0;
  const p1 = s.update((tx) => {
    runs++;
    const x = tx.get('tasks', 't1')!;
    x.status = { ...x.status, message: x.status.message + 'A' };
    tx.update('tasks', x);
  });
  const p2 = s.update((tx) => {
    const x = tx.get('tasks', 't1')!;
    x.status = { ...x.status, message: x.status.message + 'B' };
    tx.update('tasks', x);
  });
  await Promise.all([p1, p2]);
  const msg = s.view((tx) => tx.get('tasks', 't1'))!.status.message;
  t.is(msg.length, 2, `both writes applied in some order: ${msg} (${runs} runs)`);
});

test('conflict without retries rejects with SequenceConflictError', async (t) => {
  const s = newTestStore();
  await s.update((tx) => tx.create('tasks', task('t1', 'a')));
  const stale = s.view((tx) => tx.get('tasks', 't1'))!;
  await s.update((tx) => tx.update('tasks', { ...tx.get('tasks', 't1')!, nodeId: 'n2' }));
  // Replay a write based on the stale version directly.
  await t.throwsAsync(s.commit([{ kind: 'update', table: 'tasks', object: { ...stale, nodeId: 'n3' }, expectVersion: stale.meta.version }]), {
    instanceOf: SequenceConflictError,
  });
  t.is(s.view((tx) => tx.get('tasks', 't1'))!.nodeId, 'n2');
});

test('watch gets events then commit; snapshot/restore round-trips with indexes', async (t) => {
  const s = newTestStore();
  const evs: StoreEvent[] = [];
  s.watch((e) => evs.push(e));
  await s.update((tx) => {
    tx.create('services', svc('a', 'web'));
    tx.create('tasks', task('t1', 'a', 'n1'));
  });
  t.deepEqual(evs.map((e) => e.kind), ['create', 'create', 'commit']);
  const snap = s.snapshot();
  const r = new MemoryStore();
  r.restore(snap, 7);
  t.is(r.appliedIndex, 7);
  t.is(r.view((tx) => tx.tasksByNode('n1')).length, 1);
  t.is(r.view((tx) => tx.byName('services', 'web'))?.id, 'a');
});

test('snapshotLater: the state captured when it is called, the same bytes as snapshot(), even after later writes', async (t) => {
  const s = newTestStore();
  await s.update((tx) => {
    tx.create('services', svc('a', 'web'));
    for (let i = 0; i < 3000; i++) tx.create('tasks', task(`t${i}`, 'a', `n${i % 7}`));
  });
  const want = s.snapshot();
  const later = s.snapshotLater();
  await s.update((tx) => {
    tx.create('services', svc('b', 'api'));
    tx.delete('tasks', 't1');
  });
  const got = await later();
  t.deepEqual(Buffer.from(got), Buffer.from(want));
  const empty = new MemoryStore();
  t.deepEqual(Buffer.from(await empty.snapshotLater()()), Buffer.from(empty.snapshot()));
});

test('deletes', async (t) => {
  const s = newTestStore();
  await s.update((tx) => tx.create('tasks', task('t1', 'a', 'n1')));
  await s.update((tx) => tx.delete('tasks', 't1'));
  t.is(s.view((tx) => tx.tasksByService('a')).length, 0);
  t.is(s.view((tx) => tx.get('tasks', 't1')), undefined);
});

test('names are unique and found case-insensitively (SwarmKit name index); the message names the existing one', async (t) => {
  const s = newTestStore();
  await s.update((tx) => tx.create('services', svc('a', 'api')));
  t.is(s.view((tx) => tx.byName('services', 'API'))?.id, 'a');
  await t.throwsAsync(s.update((tx) => tx.create('services', svc('b', 'API'))), {
    message: 'service API already exists as api (names are case-insensitive)',
  });
  // Inside a transaction, its own pending writes count too.
  await t.throwsAsync(s.update((tx) => {
    tx.create('services', svc('c', 'Web'));
    tx.create('services', svc('d', 'WEB'));
  }), { message: /service WEB already exists as Web/ });
  // Two transactions that each passed their own check: the second is refused when applied.
  const net = (id: string, name: string) => ({ id, meta: { version: 0, createdAt: '', updatedAt: '' }, spec: { name, labels: {}, driver: 'overlay' as const, attachable: false, ingress: false } });
  const results = await Promise.allSettled([s.update((tx) => tx.create('networks', net('n1', 'back'))), s.update((tx) => tx.create('networks', net('n2', 'BACK')))]);
  t.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected']);
  t.regex(String((results[1] as PromiseRejectedResult).reason), /network BACK already exists as back/);
  t.deepEqual(s.view((tx) => tx.list('services').map((x) => x.spec.name)), ['api']);
  t.deepEqual(s.view((tx) => tx.list('networks').map((x) => x.spec.name)), ['back']);
  // Deleting frees the name in every case.
  await s.update((tx) => tx.delete('services', 'a'));
  await s.update((tx) => tx.create('services', svc('e', 'API')));
  t.is(s.view((tx) => tx.byName('services', 'api'))?.id, 'e');
});

test('a rename may not take another name in any case; names stored twice before stay usable, exact match first', async (t) => {
  const s = newTestStore();
  await s.update((tx) => {
    tx.create('services', svc('a', 'api'));
    tx.create('services', svc('b', 'web'));
  });
  await t.throwsAsync(s.update((tx) => tx.update('services', { ...tx.get('services', 'b')!, spec: { ...tx.get('services', 'b')!.spec, name: 'Api' } })), {
    message: /service Api already exists as api/,
  });
  await s.update((tx) => tx.update('services', { ...tx.get('services', 'b')!, spec: { ...tx.get('services', 'b')!.spec, name: 'WEB' } }));
  t.is(s.view((tx) => tx.byName('services', 'web'))?.spec.name, 'WEB');
  // A snapshot from before names were case-insensitive may hold `api` and `API`.
  const legacy = new TextEncoder().encode(JSON.stringify({ tables: { services: [svc('x', 'api'), svc('y', 'API')] } }));
  const r = new MemoryStore();
  r.restore(legacy, 3);
  t.is(r.view((tx) => tx.byName('services', 'API'))?.id, 'y');
  t.is(r.view((tx) => tx.byName('services', 'api'))?.id, 'x');
  t.is(r.view((tx) => tx.byName('services', 'Api'))?.id, 'x');
  r.setProposer(new FakeProposer(r));
  // Updating one of them without renaming it is fine.
  await r.update((tx) => tx.update('services', { ...tx.get('services', 'y')!, specVersion: 2 }));
  t.is(r.view((tx) => tx.get('services', 'y'))?.specVersion, 2);
});

test('one transaction may rename an object and give its old name to a new one (a stack\'s replaced config); the apply checks names in order', async (t) => {
  const s = newTestStore();
  await s.update((tx) => tx.create('services', svc('a', 'api')));
  await s.update((tx) => {
    tx.update('services', { ...tx.get('services', 'a')!, spec: { ...tx.get('services', 'a')!.spec, name: 'api.old' } });
    tx.create('services', svc('b', 'api'));
  });
  t.is(s.view((tx) => tx.byName('services', 'api'))?.id, 'b');
  t.is(s.view((tx) => tx.byName('services', 'api.old'))?.id, 'a');
  // Taking a name before it is freed, in the same transaction, is still refused.
  await t.throwsAsync(s.update((tx) => {
    tx.create('services', svc('c', 'api.old'));
    tx.update('services', { ...tx.get('services', 'a')!, spec: { ...tx.get('services', 'a')!.spec, name: 'api.older' } });
  }), { message: /service api.old already exists/ });
  t.falsy(s.view((tx) => tx.get('services', 'c')));
});

test('every written object gets createdAt (kept across updates) and updatedAt, even when the writer left them empty', async (t) => {
  const s = newTestStore();
  await s.update((tx) => tx.create('services', svc('a', 'web')));
  const created = s.view((tx) => tx.get('services', 'a'))!.meta;
  t.regex(created.createdAt, /^\d{4}-\d\d-\d\dT/);
  t.is(created.updatedAt, created.createdAt);
  await new Promise((r) => setTimeout(r, 5));
  await s.update((tx) => tx.update('services', { ...tx.get('services', 'a')!, meta: { version: 0, createdAt: '', updatedAt: '' } }));
  const updated = s.view((tx) => tx.get('services', 'a'))!.meta;
  t.is(updated.createdAt, created.createdAt);
  t.true(updated.updatedAt > created.updatedAt);
  // A record restored without createdAt gets one at its next write.
  const r = new MemoryStore();
  r.restore(new TextEncoder().encode(JSON.stringify({ tables: { services: [svc('b', 'old')] } })), 1);
  r.setProposer(new FakeProposer(r));
  await r.update((tx) => tx.update('services', tx.get('services', 'b')!));
  t.regex(r.view((tx) => tx.get('services', 'b'))!.meta.createdAt, /^\d{4}-/);
});
