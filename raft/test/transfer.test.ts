/** Leadership transfer (Raft thesis §3.10, MsgTimeoutNow). */
import test from 'ava';
import { ProposalDroppedError } from '../src/index.js';
import { Cluster } from './harness.js';

test('transfer to an up-to-date follower: it wins the next term within a few message delays', (t) => {
  const c = new Cluster({ n: 3, seed: 70 });
  const leader = c.checkOneLeader();
  c.one('x', 3);
  const term = c.node(leader).node.raft.term;
  const target = c.ids.find((id) => id !== leader)!;
  c.node(leader).node.transferLeader(target);
  c.process(c.node(leader));
  // No election timeout needed: TimeoutNow, vote, win.
  t.true(c.runUntil(() => c.node(target).node.raft.state === 'leader', 2));
  t.is(c.node(target).node.raft.term, term + 1);
  c.one('after-transfer', 3);
  t.is(c.checkOneLeader(), target);
});

test('transfer to a lagging follower first catches it up', (t) => {
  const c = new Cluster({ n: 3, seed: 71 });
  const leader = c.checkOneLeader();
  const target = c.ids.find((id) => id !== leader)!;
  c.disconnect(target);
  for (let i = 0; i < 20; i++) c.one(`x${i}`, 2);
  c.connect(target);
  c.node(leader).node.transferLeader(target);
  c.process(c.node(leader));
  t.true(c.runUntil(() => c.node(target).node.raft.state === 'leader', 10));
  t.is(c.node(target).applied >= c.node(leader).applied - 1, true);
});

test('proposals are dropped during a transfer; a transfer to an unreachable node is abandoned', (t) => {
  const c = new Cluster({ n: 3, seed: 72 });
  const leader = c.checkOneLeader();
  const target = c.ids.find((id) => id !== leader)!;
  c.disconnect(target);
  c.one('y', 2);
  const sn = c.node(leader);
  sn.node.transferLeader(target);
  t.is(sn.node.status().leadTransferee, target);
  t.throws(() => sn.node.propose(new TextEncoder().encode('z')), { instanceOf: ProposalDroppedError, message: /transfer/ });
  c.runTicks(25); // more than an election timeout
  t.is(sn.node.status().leadTransferee, '');
  t.is(sn.node.raft.state, 'leader');
  c.one('after-abort', 2);
});

test('a follower forwards transferLeader to the leader', (t) => {
  const c = new Cluster({ n: 3, seed: 73 });
  const leader = c.checkOneLeader();
  const f = c.ids.find((id) => id !== leader)!;
  c.node(f).node.transferLeader(f);
  c.process(c.node(f));
  t.true(c.runUntil(() => c.node(f).node.raft.state === 'leader', 3));
});
