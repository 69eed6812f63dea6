/** Membership changes, one server at a time (Raft thesis §4.1, §4.2.2 learners). */
import test from 'ava';
import { ProposalDroppedError } from '../src/index.js';
import { Cluster, randInt } from './harness.js';

function voters(c: Cluster, id: string): string[] {
  return [...c.node(id).node.raft.trk.config.voters].sort();
}

test('add a voter: it catches up from the log (learning the founding config) and votes', (t) => {
  const c = new Cluster({ n: 3, seed: 60 });
  const leader = c.checkOneLeader();
  c.one('before', 3);
  c.addNode('n4');
  const idx = c.proposeConfChange(leader, { type: 'addNode', nodeId: 'n4' });
  t.not(idx, undefined);
  t.true(c.runUntil(() => c.node('n4').applied >= idx!));
  c.one('after', 4);
  for (const id of c.ids) t.deepEqual(voters(c, id), ['n1', 'n2', 'n3', 'n4']);
  // 4 voters: losing 2 leaves no quorum.
  const l = c.checkOneLeader();
  const others = c.ids.filter((id) => id !== l);
  c.disconnect(others[0]!);
  c.disconnect(others[1]!);
  const i = c.propose(l, 'no-quorum');
  c.runTicks(30);
  t.is(c.nCommitted(i!).count, 0);
});

test('a learner replicates but does not vote; promoting it makes it a voter', (t) => {
  const c = new Cluster({ n: 3, seed: 61 });
  const leader = c.checkOneLeader();
  c.addNode('n4');
  const idx = c.proposeConfChange(leader, { type: 'addLearner', nodeId: 'n4' });
  t.true(c.runUntil(() => c.node('n4').applied >= idx!));
  t.true(c.node('n4').node.raft.isLearner);
  c.one('x', 4);
  // A learner never campaigns, even when isolated from every leader.
  c.disconnect(leader);
  const l2 = c.checkOneLeader();
  t.not(l2, 'n4');
  t.is(c.node('n4').node.raft.state, 'follower');
  c.connect(leader);
  c.runTicks(10);
  const idx2 = c.proposeConfChange(c.checkOneLeader(), { type: 'addNode', nodeId: 'n4' });
  t.not(idx2, undefined);
  t.true(c.runUntil(() => c.ids.every((id) => c.node(id).applied >= idx2!)));
  t.false(c.node('n4').node.raft.isLearner);
  t.deepEqual(voters(c, 'n1'), ['n1', 'n2', 'n3', 'n4']);
});

test('remove a follower; the rest keep committing with the smaller quorum', (t) => {
  const c = new Cluster({ n: 5, seed: 62 });
  const leader = c.checkOneLeader();
  const victim = c.ids.find((id) => id !== leader)!;
  const idx = c.proposeConfChange(leader, { type: 'removeNode', nodeId: victim });
  t.true(c.runUntil(() => c.ids.filter((id) => id !== victim).every((id) => c.node(id).applied >= idx!)));
  c.crash(victim);
  // 4 voters now: 3 of them are a quorum.
  const others = c.ids.filter((id) => id !== victim && id !== leader);
  c.disconnect(others[0]!);
  c.one('three-of-four', 3);
  t.deepEqual(voters(c, leader), c.ids.filter((id) => id !== victim).sort());
});

test('remove the leader: it steps down and the others elect a new leader', (t) => {
  const c = new Cluster({ n: 3, seed: 63 });
  const leader = c.checkOneLeader();
  c.one('x', 3);
  const idx = c.proposeConfChange(leader, { type: 'removeNode', nodeId: leader });
  t.not(idx, undefined);
  t.true(c.runUntil(() => c.node(leader).applied >= idx!));
  t.not(c.node(leader).node.raft.state, 'leader');
  c.crash(leader);
  const l2 = c.checkOneLeader();
  t.not(l2, leader);
  c.one('after-removal', 2);
});

test('one change at a time: a second conf change is refused while the first is pending', (t) => {
  const c = new Cluster({ n: 3, seed: 64 });
  const leader = c.checkOneLeader();
  c.addNode('n4');
  c.addNode('n5');
  const sn = c.node(leader);
  sn.node.proposeConfChange({ type: 'addNode', nodeId: 'n4' });
  t.throws(() => sn.node.proposeConfChange({ type: 'addNode', nodeId: 'n5' }), { instanceOf: ProposalDroppedError, message: /pending/ });
  c.process(sn);
  t.true(c.runUntil(() => c.node(leader).applied >= sn.node.raft.pendingConfIndex));
  t.notThrows(() => sn.node.proposeConfChange({ type: 'addNode', nodeId: 'n5' }));
});

test('a new leader refuses conf changes until it has committed an entry of its term', (t) => {
  const c = new Cluster({ n: 3, seed: 65 });
  const leader = c.checkOneLeader();
  const follower = c.ids.find((id) => id !== leader)!;
  // Force an election and catch the new leader before its no-op commits.
  c.disconnect(leader);
  const sn = c.node(follower);
  sn.node.campaign(); // pre-vote round starts
  c.process(sn);
  const ok = c.runUntil(() => c.live.get(follower)!.node.raft.state === 'leader' || c.leaders().size > 0, 50);
  t.true(ok);
  const l2 = [...c.leaders().values()].flat().find((id) => id !== leader)!;
  const r = c.node(l2).node.raft;
  t.true(r.raftLog.committed < r.raftLog.lastIndex(), 'no-op not committed yet');
  t.throws(() => c.node(l2).node.proposeConfChange({ type: 'removeNode', nodeId: leader }), { instanceOf: ProposalDroppedError });
  c.runTicks(3);
  t.notThrows(() => c.node(l2).node.proposeConfChange({ type: 'removeNode', nodeId: leader }));
});

test('membership add/remove under leader changes keeps the log consistent', (t) => {
  const c = new Cluster({ n: 3, seed: 66 });
  c.checkOneLeader();
  const members = new Set(c.ids);
  let nextId = 4;
  for (let round = 0; round < 8; round++) {
    const leader = c.checkOneLeader();
    let cc: { type: 'addNode' | 'removeNode'; nodeId: string };
    if (members.size <= 3 || randInt(c.rng, 2) === 0) {
      const id = `n${nextId++}`;
      c.addNode(id);
      cc = { type: 'addNode', nodeId: id };
    } else {
      const cands = [...members].filter((id) => id !== leader);
      cc = { type: 'removeNode', nodeId: cands[randInt(c.rng, cands.length)]! };
    }
    let idx: number | undefined;
    t.true(c.runUntil(() => (idx = c.proposeConfChange(c.checkOneLeader(1), cc)) !== undefined, 100), `round ${round}: could not propose`);
    // Crash the leader right after proposing, sometimes.
    if (randInt(c.rng, 2) === 0) {
      c.run(2);
      const l = c.checkOneLeader(1);
      c.crash(l);
      c.runTicks(30);
      c.startNode(l);
    }
    // Wait until the change is applied (or lost with the crash, then retry next round).
    c.runTicks(30);
    const applied = c.committedAt.get(idx!) === `cc:${JSON.stringify(cc)}`;
    if (applied) {
      if (cc.type === 'addNode') members.add(cc.nodeId);
      else {
        members.delete(cc.nodeId);
        c.crash(cc.nodeId);
      }
    }
    c.one(`round-${round}`, Math.floor(members.size / 2) + 1);
  }
  c.runTicks(30);
  const l = c.checkOneLeader();
  t.deepEqual(voters(c, l), [...members].sort());
  for (const id of members) t.deepEqual(voters(c, id), [...members].sort());
});
