import test from 'ava';
import { taskStateRank } from '@shoal/api';
import { FakeCluster, node } from './helpers.js';

/** Deterministic PRNG (mulberry32) so the scenario is the same on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = (process.env.ORCH_SEEDS ?? '42,7,1234').split(',').map(Number);

for (const seed of SEEDS) test(`random operations (seed ${seed}): after each step the cluster converges to exactly the wanted tasks`, async (t) => {
  const rand = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const names = ['n1', 'n2', 'n3', 'n4'];
  const c = await new FakeCluster().init(names.map((n) => node(n)), 2);
  let web = await c.createService('web', { replicas: 4, restart: { delayMs: 1000 }, update: { parallelism: 2 } });
  const agent = await c.createService('agent', { global: true, restart: { delayMs: 1000 } });
  let replicas = 4;
  const ops: string[] = [];
  for (let step = 0; step < 60; step++) {
    const op = async (alone: boolean): Promise<void> => {
      const r = rand();
      if (r < 0.2) {
        replicas = Math.floor(rand() * 7);
        ops.push(`scale ${replicas}`);
        await c.scale(web, replicas);
      } else if (r < 0.45) {
        const victims = c.tasks().filter((x) => x.status.state === 'running' && x.desiredState === 'running');
        if (victims.length) {
          const v = pick(victims);
          ops.push(`fail ${v.serviceName}.${v.slot || v.nodeId}`);
          await c.end(v.id, pick(['failed', 'complete', 'rejected'] as const), 1);
        }
      } else if (r < 0.6) {
        const n = pick(names);
        const state = pick(['ready', 'down'] as const);
        ops.push(`${n} ${state}`);
        await c.updateNode(n, (x) => { x.status.state = state; });
      } else if (r < 0.75) {
        const n = pick(names);
        const av = pick(['active', 'drain', 'pause'] as const);
        ops.push(`${n} ${av}`);
        await c.updateNode(n, (x) => { x.spec.availability = av; });
      } else if (r < 0.8 && alone) {
        ops.push('rm + create web');
        const old = web;
        await c.store.update((tx) => {
          for (const x of tx.tasksByService(old)) tx.update('tasks', { ...x, desiredState: 'remove' });
          tx.delete('services', old);
        });
        web = await c.createService('web', { replicas, restart: { delayMs: 1000 }, update: { parallelism: 2 } });
      } else if (r < 0.87) {
        ops.push('force update');
        await c.forceUpdate(pick([web, agent]));
      } else {
        ops.push('new leader');
        await c.newLeader();
      }
    };
    // Sometimes several operations race (store conflicts, passes overlapping with writes).
    if (rand() < 0.3) await Promise.all([op(false), op(false), op(false), c.runAgents()]);
    else await op(true);
    // let every delay pass and every agent act
    for (let i = 0; i < 4; i++) {
      await c.converge();
      await c.advance(1000);
    }
    await c.reap();
    await c.converge();

    const nodes = c.store.view((tx) => tx.list('nodes'));
    const usable = nodes.filter((n) => n.status.state === 'ready' && n.spec.availability === 'active');
    const where = `after step ${step} (${ops.slice(-3).join(', ')})`;
    const w = c.desiredRunning(web);
    t.is(w.length, replicas, `web desired-running ${where}`);
    t.deepEqual(new Set(w.map((x) => x.slot)).size, w.length, `web slots unique ${where}`);
    if (usable.length > 0) {
      const svc = c.service(web)!;
      // A new-spec task failing during an update (monitor window included) pauses it: stale tasks stay.
      const paused = svc.updateStatus?.state === 'paused';
      t.true(w.every((x) => x.status.state === 'running' && (paused || x.specVersion === svc.specVersion)),
        `web all running${paused ? '' : ', up to date'} ${where}: ${JSON.stringify(svc.updateStatus)}`);
    }
    const g = c.desiredRunning(agent);
    const gNodes = g.map((x) => x.nodeId);
    t.is(new Set(gNodes).size, gNodes.length, `agent at most one per node ${where}`);
    for (const n of usable) t.true(gNodes.includes(n.id), `agent on usable node ${n.id} ${where}`);
    for (const n of nodes.filter((x) => x.status.state === 'down' || x.spec.availability === 'drain')) {
      t.false(gNodes.includes(n.id), `no agent on down/drained node ${n.id} ${where}`);
    }
    for (const s of [web, agent]) {
      const bySlot = new Map<string, number>();
      for (const x of c.tasks(s)) {
        const k = x.slot ? String(x.slot) : x.nodeId;
        bySlot.set(k, (bySlot.get(k) ?? 0) + 1);
      }
      for (const [k, n] of bySlot) t.true(n <= 3 || c.tasks(s).some((x) => (x.slot ? String(x.slot) : x.nodeId) === k && taskStateRank(x.status.state) < taskStateRank('complete') && x.desiredState !== 'running'), `history of ${k} bounded (${n}) ${where}`);
    }
  }
  t.deepEqual(c.violations, []);
});
