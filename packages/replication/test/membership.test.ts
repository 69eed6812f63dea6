import test from 'ava';
import { rm } from 'node:fs/promises';
import { kv, KvApplier } from './fixtures/kv.js';
import { destroyCluster, freeAddrs, leaderOf, proposeAnywhere, startCluster, startMember, stopMember, tempDir, waitFor, type Member } from './fixtures/cluster.js';

// Issue "Membership and recovery bugs", at the Raft host's level (real RaftNodes, gRPC, LevelDB).

test('a removed Raft ID is never re-added; the node comes back under a fresh ID as a working voter', async (t) => {
  const members = await startCluster(3);
  t.teardown(() => destroyCluster(members));
  await waitFor(() => leaderOf(members) !== undefined, 'a leader');
  const leader = leaderOf(members)!;
  const gone = members.find((m) => m !== leader)!;
  const other = members.find((m) => m !== leader && m !== gone)!;
  let removedEvents = 0;
  gone.node!.on('removed', () => removedEvents++);
  await leader.node!.removeMember(gone.id);
  await waitFor(() => removedEvents === 1, 'the removed member learns it');
  await stopMember(gone);
  await t.throwsAsync(leader.node!.addLearner(gone.id, gone.addr), { instanceOf: RangeError, message: /fresh Raft ID/ });
  // The same machine rejoins with empty Raft data under a fresh ID (what a re-promotion does).
  await rm(gone.dir, { recursive: true, force: true });
  const back: Member = { id: `${gone.id}b`, dir: await tempDir(), addr: gone.addr, kv: new KvApplier() };
  members.push(back);
  await startMember(back, { join: { peers: [{ id: leader.id, addr: leader.addr }] }, nodeId: 'node-of-gone' });
  let backRemoved = 0;
  back.node!.on('removed', () => backRemoved++);
  await leader.node!.addMember(back.id, back.addr, 30_000, 'node-of-gone');
  await proposeAnywhere(members, kv('after', 'rejoin'));
  await waitFor(() => back.kv.map.get('after') === 'rejoin', 'the rejoined member applies');
  t.is(backRemoved, 0, 'replaying the old removal does not remove the new membership');
  t.deepEqual(leader.node!.members().find((m) => m.id === back.id), { id: back.id, nodeId: 'node-of-gone', addr: back.addr, voter: true });
  t.true(leader.node!.isRemoved(gone.id));
  // Lose one of the other two: the rejoined voter counts toward quorum, so writes go on.
  await stopMember(other);
  await proposeAnywhere(members.filter((m) => m.node), kv('with', 'quorum'), 15_000);
  await waitFor(() => back.kv.map.get('with') === 'quorum', 'the write applied on the rejoined member');
  t.pass();
});

test('force-new-cluster: old members restarted with their data are told they were removed and never lead it', async (t) => {
  const addrs = await freeAddrs(4);
  const members: Member[] = [];
  for (let i = 0; i < 4; i++) members.push({ id: `n${i + 1}`, dir: await tempDir(), addr: addrs[i]!, kv: new KvApplier() });
  t.teardown(() => destroyCluster(members));
  const peers = members.map((m) => ({ id: m.id, addr: m.addr }));
  await Promise.all(members.map((m) => startMember(m, { bootstrap: { peers } })));
  await waitFor(() => leaderOf(members) !== undefined, 'a leader');
  for (let i = 0; i < 5; i++) await proposeAnywhere(members, kv(`k${i}`, `${i}`));
  await waitFor(() => members.every((m) => m.kv.map.size === 5), 'all applied');
  // Quorum lost for good: everyone stops; n2 is forced into a new single-voter cluster.
  for (const m of members) await stopMember(m);
  const forced = members[1]!;
  await startMember(forced, { forceNewCluster: true });
  t.true(forced.node!.isLeader());
  await forced.node!.propose(kv('forced', 'yes'));
  // The three old members come back with their old data: 3 of the old 4, a quorum of the old configuration.
  const old = [members[0]!, members[2]!, members[3]!];
  const removed = new Set<string>();
  for (const m of old) {
    await startMember(m);
    m.node!.on('removed', () => removed.add(m.id));
  }
  await waitFor(() => removed.size === 3, 'every old member told it was removed', 20_000);
  // The forced member never followed them and still writes alone.
  t.true(forced.node!.isLeader());
  t.deepEqual(forced.node!.status().confState, { voters: [forced.id], learners: [] });
  await forced.node!.propose(kv('still', 'alone'));
  t.deepEqual(forced.node!.status().removed.sort(), ['n1', 'n3', 'n4']);
});
