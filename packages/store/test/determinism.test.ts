import test from 'ava';
import type { Service } from '@shoal/api';
import { MemoryStore, REQUEST_TTL_MS, type Proposer } from '../src/store.js';

/**
 * A log shared by several replicas, in process: the proposer's entry is appended, then applied to
 * every replica in log order (what Raft does, minus the network). Replicas have their own clocks.
 */
class FakeLog implements Proposer {
  readonly entries: Uint8Array[] = [];
  constructor(readonly replicas: MemoryStore[]) {}
  async propose(data: Uint8Array): Promise<number> {
    await Promise.resolve();
    this.entries.push(data);
    const index = this.entries.length;
    for (const r of this.replicas) r.apply({ index, data });
    return index;
  }
  /** A fresh replica that replays the whole log (a restart). */
  replay(clock: () => number): MemoryStore {
    const s = new MemoryStore(undefined, { now: clock });
    this.entries.forEach((data, i) => s.apply({ index: i + 1, data }));
    return s;
  }
}

const svc = (id: string, name: string): Service => ({
  id, meta: { version: 0, createdAt: '', updatedAt: '' }, specVersion: 1,
  spec: { name, labels: {}, mode: { replicated: { replicas: 1 } }, task: { container: { image: 'x' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], maxReplicas: 0 }, networks: [], forceUpdate: 0 } },
});

function cluster(clocks: (() => number)[]) {
  const stores = clocks.map((now) => new MemoryStore(undefined, { now }));
  const log = new FakeLog(stores);
  for (const s of stores) s.setProposer(log);
  return { stores, log };
}

test('replicas with different clocks hold byte-identical state, also after replaying the log', async (t) => {
  let t1 = Date.UTC(2026, 0, 1);
  const { stores, log } = cluster([() => (t1 += 1000), () => Date.UTC(2030, 5, 5), () => 0]);
  const [a, b, c] = stores as [MemoryStore, MemoryStore, MemoryStore];
  // Writes proposed by different replicas (as different leaders over time would).
  await a.update((tx) => tx.create('services', svc('s1', 'web')));
  await b.update((tx) => tx.create('services', svc('s2', 'db')));
  await c.update((tx) => {
    const s = tx.get('services', 's1')!;
    tx.update('services', { ...s, spec: { ...s.spec, labels: { a: '1' } } });
  });
  await a.update((tx) => tx.delete('services', 's2'), { requestId: 'r1' });
  t.is(a.dump(), b.dump());
  t.is(a.dump(), c.dump());
  const s1 = a.view((tx) => tx.get('services', 's1'))!;
  t.truthy(s1.meta.createdAt);
  t.not(s1.meta.createdAt, s1.meta.updatedAt, 'the update kept createdAt and stamped a new updatedAt');
  // A restart replays the log with yet another clock: the same state, not re-stamped.
  const replayed = log.replay(() => Date.UTC(2040, 0, 1));
  t.is(replayed.dump(), a.dump());
  // And a snapshot restored elsewhere.
  const restored = new MemoryStore();
  restored.restore(a.snapshot(), a.appliedIndex);
  t.is(restored.dump(), a.dump());
});

test('a request id runs once: a retry through another replica gets the first result and writes nothing', async (t) => {
  const { stores } = cluster([() => 1_000, () => 2_000]);
  const [a, b] = stores as [MemoryStore, MemoryStore];
  const first = await a.update((tx) => {
    tx.create('services', svc('id-1', 'web'));
    return { id: 'id-1' };
  }, { requestId: 'req-7' });
  t.deepEqual(first, { id: 'id-1' });
  // The retry reaches b (a new leader) and would create a second service with a new id.
  let ran = 0;
  const again = await b.update((tx) => {
    ran++;
    tx.create('services', svc('id-2', 'web2'));
    return { id: 'id-2' };
  }, { requestId: 'req-7' });
  t.deepEqual(again, { id: 'id-1' });
  t.is(ran, 0, 'b knew the request from the replicated state and did not run it');
  t.is(b.view((tx) => tx.list('services').length), 1);
});

test('a duplicate that races the first write is dropped at apply, on every replica', async (t) => {
  const { stores, log } = cluster([() => 1_000, () => 1_000]);
  const [a, b] = stores as [MemoryStore, MemoryStore];
  // Both proposals are built before either is applied (two leaders in a row, the first one's
  // entry not yet applied on the second when the retry arrives).
  const p1 = a.update((tx) => {
    tx.create('services', svc('id-1', 'web'));
    return { id: 'id-1' };
  }, { requestId: 'req-9' });
  const p2 = b.update((tx) => {
    tx.create('services', svc('id-2', 'web-again'));
    return { id: 'id-2' };
  }, { requestId: 'req-9' });
  t.deepEqual(await p1, { id: 'id-1' });
  t.deepEqual(await p2, { id: 'id-1' }, 'the second proposer answers with the first outcome');
  t.is(log.entries.length, 2);
  for (const s of stores) t.deepEqual(s.view((tx) => tx.list('services').map((x) => x.id)), ['id-1']);
  t.is(a.dump(), b.dump());
});

test('request ids expire by the proposer time carried in later entries', async (t) => {
  let now = 1_000_000;
  const { stores } = cluster([() => now]);
  const [a] = stores as [MemoryStore];
  await a.update((tx) => tx.create('services', svc('s1', 'one')), { requestId: 'old' });
  t.truthy(a.request('old'));
  now += REQUEST_TTL_MS + 1;
  await a.update((tx) => tx.create('services', svc('s2', 'two')));
  t.is(a.request('old'), undefined);
});

test('a refused write records no request id: a retry runs again', async (t) => {
  const { stores } = cluster([() => 5]);
  const [a] = stores as [MemoryStore];
  await a.update((tx) => tx.create('services', svc('s1', 'web')));
  const relabel = (v: string) => (tx: Parameters<Parameters<MemoryStore['update']>[0]>[0]) => {
    const s = tx.get('services', 's1')!;
    tx.update('services', { ...s, spec: { ...s.spec, labels: { v } } });
  };
  // Both read version N; the first applied wins, the second fails its version check at apply.
  const first = a.update(relabel('1'));
  const racing = a.update(relabel('2'), { requestId: 'x', retries: 0 });
  await first;
  await t.throwsAsync(racing, { message: /out of sequence/ });
  t.is(a.request('x'), undefined);
  await a.update(relabel('2'), { requestId: 'x' });
  t.truthy(a.request('x'));
});
