import test from 'ava';
import { rm } from 'node:fs/promises';
import { NotLeaderError, RaftNode } from '../src/index.js';
import { KvApplier, kv } from './fixtures/kv.js';
import { destroyCluster, freeAddrs, leaderOf, proposeAnywhere, startCluster, startMember, stopMember, tempDir, waitFor, type Member } from './fixtures/cluster.js';

test('single node: writable right after open; state replayed after reopen', async (t) => {
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let app = new KvApplier();
  // A tick every minute: open must not depend on an election timeout to make the sole voter leader.
  let node = await RaftNode.open({ id: 'solo', dataDir: dir, applier: app, tickMs: 60_000 });
  t.true(node.isLeader());
  t.is(node.leaderId(), 'solo');
  const indexes: number[] = [];
  for (let i = 0; i < 30; i++) indexes.push((await node.propose(kv(`k${i}`, `v${i}`))).index);
  // Each proposal is applied locally before its promise resolves.
  t.is(app.map.get('k29'), 'v29');
  t.deepEqual(indexes, [...indexes].sort((a, b) => a - b));
  await node.readIndex();
  await node.close();

  app = new KvApplier();
  node = await RaftNode.open({ id: 'solo', dataDir: dir, applier: app, tickMs: 60_000 });
  t.is(app.map.size, 30, 'committed entries replayed into the applier on open');
  t.is(app.map.get('k7'), 'v7');
  t.true(node.isLeader());
  const r = await node.propose(kv('after', 'restart'));
  t.true(r.index > indexes[indexes.length - 1]!);
  await node.close();
});

test('single node: snapshots compact the log and restore on reopen', async (t) => {
  const dir = await tempDir();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let app = new KvApplier();
  let node = await RaftNode.open({ id: 'solo', dataDir: dir, applier: app, snapshotEvery: 20, keepEntries: 5 });
  await Promise.all(Array.from({ length: 65 }, (_, i) => node.propose(kv(`k${i}`, `v${i}`))));
  await waitFor(() => node.status().snapshotIndex >= 60, 'a snapshot at index >= 60');
  await node.close();

  app = new KvApplier();
  node = await RaftNode.open({ id: 'solo', dataDir: dir, applier: app, snapshotEvery: 20, keepEntries: 5 });
  t.is(app.restores, 1);
  t.is(app.map.size, 65);
  t.is(app.map.get('k64'), 'v64');
  await node.close();
});

test('proposals and membership changes are refused on a follower with the leader hint; lease reads', async (t) => {
  const members = await startCluster(3, { readOnly: 'lease' });
  t.teardown(() => destroyCluster(members));
  await waitFor(() => leaderOf(members) !== undefined && members.every((m) => m.node!.leaderId() !== ''), 'a leader known to all');
  const leader = leaderOf(members)!;
  const follower = members.find((m) => m !== leader)!;
  const err = await t.throwsAsync(follower.node!.propose(kv('a', 'b')), { instanceOf: NotLeaderError });
  t.is(err?.leader, leader.id);
  await t.throwsAsync(follower.node!.addLearner('x', '127.0.0.1:1'), { instanceOf: NotLeaderError });
  await leader.node!.propose(kv('a', 'b'));
  await follower.node!.readIndex();
  t.is(follower.kv.map.get('a'), 'b');
});

test('3 nodes over gRPC: replicate, lose the leader, no acknowledged write lost', async (t) => {
  const members = await startCluster(3);
  t.teardown(() => destroyCluster(members));
  await waitFor(() => leaderOf(members) !== undefined, 'first leader');
  const acked = new Map<string, string>();
  for (let i = 0; i < 40; i++) {
    await proposeAnywhere(members, kv(`a${i}`, `${i}`));
    acked.set(`a${i}`, `${i}`);
  }
  // Concurrent proposals share fsyncs (group commit) and all commit.
  await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      await proposeAnywhere(members, kv(`b${i}`, `${i}`));
      acked.set(`b${i}`, `${i}`);
    }),
  );
  await waitFor(() => members.every((m) => m.kv.map.size === acked.size), 'followers caught up');

  const old = leaderOf(members)!;
  const oldTerm = old.node!.term();
  await stopMember(old);
  await waitFor(() => leaderOf(members) !== undefined, 'a new leader', 15_000);
  const nl = leaderOf(members)!;
  t.not(nl.id, old.id);
  t.true(nl.node!.term() > oldTerm);
  for (let i = 0; i < 20; i++) {
    await proposeAnywhere(members, kv(`c${i}`, `${i}`));
    acked.set(`c${i}`, `${i}`);
  }
  // The old leader restarts from its LevelDB state and catches up.
  await startMember(old);
  await waitFor(() => old.kv.map.size === acked.size, 'restarted member caught up', 15_000);
  for (const m of members) for (const [k, v] of acked) t.is(m.kv.map.get(k), v, `${m.id} has ${k}`);
  // Linearizable read barrier on a follower.
  const follower = members.find((m) => m.node && !m.node.isLeader())!;
  await follower.node!.readIndex();
  t.is(follower.kv.map.get('c19'), '19');
});

test('a member added later installs a snapshot as a learner, then becomes a voter', async (t) => {
  const members = await startCluster(3, { snapshotEvery: 30, keepEntries: 5 });
  t.teardown(() => destroyCluster(members));
  await waitFor(() => leaderOf(members) !== undefined, 'first leader');
  await Promise.all(Array.from({ length: 100 }, (_, i) => proposeAnywhere(members, kv(`k${i}`, `v${i}`))));
  const leader = leaderOf(members)!;
  await waitFor(() => leader.node!.status().snapshotIndex > 0, 'leader compacted its log');

  const [addr] = await freeAddrs(1);
  const joiner: Member = { id: 'n4', dir: await tempDir(), addr: addr!, kv: new KvApplier() };
  members.push(joiner);
  await startMember(joiner, { join: { peers: members.slice(0, 3).map((m) => ({ id: m.id, addr: m.addr })) }, snapshotEvery: 30, keepEntries: 5 });
  t.false(joiner.node!.isLeader());
  await leader.node!.addLearner('n4', joiner.addr);
  await waitFor(() => joiner.kv.map.size === 100, 'learner caught up', 15_000);
  t.is(joiner.kv.restores, 1, 'learner installed a snapshot');
  await leader.node!.promote('n4');
  await waitFor(() => joiner.node!.status().confState.voters.includes('n4'), 'n4 is a voter on n4');
  t.deepEqual(leader.node!.members().map((m) => `${m.id}:${m.voter}`).sort(), ['n1:true', 'n2:true', 'n3:true', 'n4:true']);
  // The new voter knows every peer's address (from the snapshot) and keeps replicating.
  for (const m of members.slice(0, 3)) t.is(joiner.node!.peerAddr(m.id), m.addr);
  await proposeAnywhere(members, kv('after', 'join'));
  await waitFor(() => joiner.kv.map.get('after') === 'join', 'n4 applies new entries');
  // Remove a member; the rest keep going.
  const victim = members.find((m) => m.id !== leader.id && m.id !== 'n4')!;
  await leader.node!.removeMember(victim.id);
  await stopMember(victim);
  await proposeAnywhere(members, kv('after', 'remove'));
  await waitFor(() => joiner.kv.map.get('after') === 'remove', 'n4 applies after removal');
});

test('leadership transfer hands over to another voter; addMember joins a voter', async (t) => {
  const members = await startCluster(3);
  t.teardown(() => destroyCluster(members));
  await waitFor(() => leaderOf(members) !== undefined, 'first leader');
  await proposeAnywhere(members, kv('x', '1'));
  const leader = leaderOf(members)!;
  const target = members.find((m) => m !== leader)!;
  await waitFor(() => target.kv.map.get('x') === '1', 'target caught up');
  let seenAtAnnounce: string | undefined = 'not announced';
  target.node!.on('leader-change', (id: string, local: boolean) => {
    if (local) seenAtAnnounce = target.kv.map.get('y');
  });
  // Committed just before the transfer: the new leader announces itself only after applying it.
  await leader.node!.propose(kv('y', '2'));
  await leader.node!.transferLeadership(target.id);
  await waitFor(() => target.node!.isLeader(), 'target leads');
  t.is(leader.node!.leaderId(), target.id);
  await waitFor(() => seenAtAnnounce !== 'not announced', 'leader-change (self, true) on the new leader');
  t.is(seenAtAnnounce, '2');

  // addMember: learner, catch up, promote — in one call.
  const [addr] = await freeAddrs(1);
  const joiner: Member = { id: 'n4', dir: await tempDir(), addr: addr!, kv: new KvApplier() };
  members.push(joiner);
  await startMember(joiner, { join: { peers: [{ id: target.id, addr: target.addr }] } });
  await target.node!.addMember('n4', joiner.addr);
  t.true(target.node!.status().confState.voters.includes('n4'));
  await waitFor(() => joiner.kv.map.get('y') === '2', 'n4 has the state');
});

test('two membership changes at once: the second waits for the first to apply instead of failing', async (t) => {
  const members = await startCluster(3);
  t.teardown(() => destroyCluster(members));
  await waitFor(() => leaderOf(members) !== undefined, 'first leader');
  const leader = leaderOf(members)!;
  const [a5, a6] = await freeAddrs(2);
  // Neither learner process exists: a learner does not count for quorum, so both changes commit.
  const [r5, r6] = await Promise.all([leader.node!.addLearner('n5', a5!), leader.node!.addLearner('n6', a6!)]);
  t.not(r5.index, r6.index);
  t.true(leader.node!.status().confState.learners.includes('n5'));
  t.true(leader.node!.status().confState.learners.includes('n6'));
  await Promise.all([leader.node!.removeMember('n5'), leader.node!.removeMember('n6')]);
  t.false(leader.node!.status().confState.learners.includes('n5'));
});

test('forceNewCluster restarts one member as a single-voter cluster with its state', async (t) => {
  const members = await startCluster(3);
  t.teardown(() => destroyCluster(members));
  await waitFor(() => leaderOf(members) !== undefined, 'first leader');
  for (let i = 0; i < 10; i++) await proposeAnywhere(members, kv(`k${i}`, `${i}`));
  const survivor = leaderOf(members)!;
  for (const m of members) await stopMember(m);
  await startMember(survivor, { forceNewCluster: true });
  t.true(survivor.node!.isLeader());
  t.deepEqual(survivor.node!.status().confState, { voters: [survivor.id], learners: [] });
  t.is(survivor.kv.map.size, 10);
  await survivor.node!.propose(kv('solo', 'yes'));
  t.is(survivor.kv.map.get('solo'), 'yes');
});

test('a leader that loses its quorum steps down and rejects pending proposals (no hang)', async (t) => {
  const members = await startCluster(3);
  t.teardown(() => destroyCluster(members));
  await waitFor(() => leaderOf(members) !== undefined, 'first leader');
  await proposeAnywhere(members, kv('a', '1'));
  const leader = leaderOf(members)!;
  for (const m of members) if (m !== leader) await stopMember(m);
  // No quorum: the proposal cannot commit. Check-quorum makes the leader step down after an
  // election timeout, which must reject the pending proposal rather than leave it to time out.
  const err = await t.throwsAsync(leader.node!.propose(kv('b', '2'), 60_000), { instanceOf: NotLeaderError });
  t.truthy(err);
  t.false(leader.node!.isLeader());
  await t.throwsAsync(leader.node!.propose(kv('c', '3')), { instanceOf: NotLeaderError });
});
