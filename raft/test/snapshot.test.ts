/** Snapshots and log compaction (Raft paper §7; MIT 6.5840 part 3D). */
import test from 'ava';
import { MessageType } from '../src/index.js';
import { Cluster, randInt } from './harness.js';

/** Persisted log bound (MIT MAXLOGSIZE is 2000 bytes with snapshots every 10 entries). */
const MAX_LOG_BYTES = 2000;

interface SnapOpts {
  disconnect: boolean;
  reliable: boolean;
  crash: boolean;
  seed: number;
  iters?: number;
  persistDelay?: number;
}

function snapCommon(o: SnapOpts): Cluster {
  const c = new Cluster({ n: 3, seed: o.seed, snapshotEvery: 10, persistDelay: o.persistDelay ?? 0 });
  c.unreliable = !o.reliable;
  c.one(`${randInt(c.rng, 1e6)}`, 3, true, 400);
  let leader1 = c.checkOneLeader();
  let snapsSent = 0;
  for (let i = 0; i < (o.iters ?? 30); i++) {
    let victim = c.ids[(c.ids.indexOf(leader1) + 1) % 3]!;
    let sender = leader1;
    if (i % 3 === 1) {
      sender = c.ids[(c.ids.indexOf(leader1) + 1) % 3]!;
      victim = leader1;
    }
    if (o.disconnect) {
      c.disconnect(victim);
      c.one(`${randInt(c.rng, 1e6)}`, 2, true, 400);
    }
    if (o.crash) {
      c.crash(victim);
      c.one(`${randInt(c.rng, 1e6)}`, 2, true, 400);
    }
    // Enough entries to trigger a snapshot.
    const nn = 11;
    for (let k = 0; k < nn; k++) c.propose(sender, `${randInt(c.rng, 1e6)}`);
    // Let applier threads catch up with the proposals.
    if (!o.disconnect && !o.crash) c.one(`${randInt(c.rng, 1e6)}`, 3, true, 400);
    else c.one(`${randInt(c.rng, 1e6)}`, 2, true, 400);
    for (const id of c.ids) {
      if (c.persistedLogBytes(id) > MAX_LOG_BYTES) throw new Error(`${id}: persisted log is ${c.persistedLogBytes(id)} bytes > ${MAX_LOG_BYTES}`);
    }
    snapsSent += c.counters.byType[MessageType.Snap] ?? 0;
    c.resetCounters();
    if (o.disconnect) {
      // Reconnect a follower, which may be behind and need a snapshot.
      c.connect(victim);
      c.one(`${randInt(c.rng, 1e6)}`, 3, true, 400);
      leader1 = c.checkOneLeader();
    }
    if (o.crash) {
      c.startNode(victim);
      c.connect(victim);
      c.one(`${randInt(c.rng, 1e6)}`, 3, true, 400);
      leader1 = c.checkOneLeader();
    }
  }
  snapsSent += c.counters.byType[MessageType.Snap] ?? 0;
  if ((o.disconnect || o.crash) && snapsSent === 0) throw new Error('no InstallSnapshot was needed; the scenario is too weak');
  return c;
}

test('snapshot basic: the persisted log stays bounded and agreement continues', (t) => {
  snapCommon({ disconnect: false, reliable: true, crash: false, seed: 50 });
  t.pass();
});

test('InstallSnapshot to a lagging (disconnected) follower', (t) => {
  snapCommon({ disconnect: true, reliable: true, crash: false, seed: 51 });
  t.pass();
});

test('InstallSnapshot on an unreliable network', (t) => {
  snapCommon({ disconnect: true, reliable: false, crash: false, seed: 52, iters: 15 });
  t.pass();
});

test('InstallSnapshot to a crashed follower', (t) => {
  snapCommon({ disconnect: false, reliable: true, crash: true, seed: 53 });
  t.pass();
});

test('InstallSnapshot to a crashed follower on an unreliable network', (t) => {
  snapCommon({ disconnect: false, reliable: false, crash: true, seed: 54, iters: 15 });
  t.pass();
});

test('InstallSnapshot with async persistence: crashed follower, unreliable network', (t) => {
  snapCommon({ disconnect: false, reliable: false, crash: true, seed: 58, iters: 10, persistDelay: 2 });
  t.pass();
});

test('InstallSnapshot with async persistence: lagging follower, unreliable network', (t) => {
  snapCommon({ disconnect: true, reliable: false, crash: false, seed: 59, iters: 10, persistDelay: 2 });
  t.pass();
});

test('all crash after snapshots: restart from snapshot + log tail, indexes keep growing', (t) => {
  const c = new Cluster({ n: 3, seed: 55, snapshotEvery: 10 });
  c.one(`${randInt(c.rng, 1e6)}`, 3);
  for (let i = 0; i < 5; i++) {
    for (let k = 0; k < 11; k++) c.one(`${randInt(c.rng, 1e6)}`, 3);
    const index1 = c.one(`${randInt(c.rng, 1e6)}`, 3);
    for (const id of c.ids) c.crash(id);
    for (const id of c.ids) c.startNode(id);
    const index2 = c.one(`${randInt(c.rng, 1e6)}`, 3);
    t.true(index2 > index1, `index decreased from ${index1} to ${index2}`);
    for (const id of c.ids) t.true(c.storages.get(id)!.snapshot().metadata.index > 0);
  }
});

test('snapshot init: the snapshot is reloaded on restart and not lost by later persists', (t) => {
  const c = new Cluster({ n: 3, seed: 56, snapshotEvery: 10 });
  c.one(`${randInt(c.rng, 1e6)}`, 3);
  for (let k = 0; k < 11; k++) c.one(`${randInt(c.rng, 1e6)}`, 3);
  for (const id of c.ids) c.crash(id);
  for (const id of c.ids) c.startNode(id);
  c.one(`${randInt(c.rng, 1e6)}`, 3);
  for (const id of c.ids) c.crash(id);
  for (const id of c.ids) c.startNode(id);
  c.one(`${randInt(c.rng, 1e6)}`, 3);
  for (const id of c.ids) t.true(c.storages.get(id)!.snapshot().metadata.index >= 10);
});

test('state machine state survives snapshot install (KV contents equal on all nodes)', (t) => {
  const c = new Cluster({ n: 3, seed: 57, snapshotEvery: 5 });
  const leader = c.checkOneLeader();
  const victim = c.ids.find((id) => id !== leader)!;
  c.disconnect(victim);
  for (let i = 0; i < 20; i++) c.one(JSON.stringify({ op: 'put', key: `k${i % 4}`, value: `v${i}`, id: `w${i}` }), 2, false);
  c.connect(victim);
  c.one(JSON.stringify({ op: 'append', key: 'k0', value: '!', id: 'w-last' }), 2, false);
  c.runTicks(20);
  for (const id of c.ids) {
    t.is(c.node(id).sm.get('k0'), 'v16!');
    t.is(c.node(id).sm.get('k3'), 'v19');
  }
});
