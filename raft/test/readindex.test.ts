/** Linearizable reads with ReadIndex (Raft thesis §6.4) and leases (§6.4.1). */
import test from 'ava';
import { ProposalDroppedError } from '../src/index.js';
import { Cluster } from './harness.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const put = (key: string, value: string, id: string) => JSON.stringify({ op: 'put', key, value, id });

test('ReadIndex on the leader returns the commit index after a heartbeat round', (t) => {
  const c = new Cluster({ n: 3, seed: 80 });
  const leader = c.checkOneLeader();
  const idx = c.one(put('k', 'v1', 'w1'), 3);
  const sn = c.node(leader);
  sn.node.readIndex(enc.encode('r1'));
  c.process(sn);
  t.is(sn.readStates.length, 0, 'safe mode waits for a quorum of heartbeat acks');
  c.run(3);
  t.is(sn.readStates.length, 1);
  t.is(dec.decode(sn.readStates[0]!.requestCtx), 'r1');
  t.true(sn.readStates[0]!.index >= idx);
});

test('ReadIndex on a follower is forwarded to the leader', (t) => {
  const c = new Cluster({ n: 3, seed: 81 });
  const leader = c.checkOneLeader();
  const idx = c.one(put('k', 'v1', 'w1'), 3);
  const f = c.node(c.ids.find((id) => id !== leader)!);
  f.node.readIndex(enc.encode('r2'));
  c.process(f);
  c.run(6);
  t.is(f.readStates.length, 1);
  t.true(f.readStates[0]!.index >= idx);
});

test('ReadIndex with no known leader throws ProposalDroppedError', (t) => {
  const c = new Cluster({ n: 3, seed: 82 });
  const sn = c.node('n1');
  t.throws(() => sn.node.readIndex(enc.encode('r')), { instanceOf: ProposalDroppedError });
});

test('a partitioned old leader never answers ReadIndex with stale data', (t) => {
  const c = new Cluster({ n: 5, seed: 83 });
  const old = c.checkOneLeader();
  c.one(put('k', 'v1', 'w1'), 5);
  const others = c.ids.filter((id) => id !== old);
  c.partition([old], others);
  // The old leader still believes it leads (its check-quorum round has not run yet).
  t.is(c.node(old).node.raft.state, 'leader');
  const sn = c.node(old);
  sn.node.readIndex(enc.encode('stale?'));
  c.process(sn);
  // Meanwhile the majority elects a new leader and overwrites the value.
  const l2 = c.checkOneLeader();
  t.not(l2, old);
  c.one(put('k', 'v2', 'w2'), 4);
  c.runTicks(40);
  t.is(sn.readStates.length, 0, 'the old leader must not confirm a read without a quorum');
  t.not(sn.node.raft.state, 'leader', 'check-quorum stepped it down');
  // After healing, the old node reads the new value through the new leader.
  c.heal();
  c.runTicks(5);
  sn.readStates.length = 0;
  sn.node.readIndex(enc.encode('fresh'));
  c.process(sn);
  t.true(c.runUntil(() => sn.readStates.some((r) => dec.decode(r.requestCtx) === 'fresh'), 10));
  const rs = sn.readStates.find((r) => dec.decode(r.requestCtx) === 'fresh')!;
  t.true(c.runUntil(() => sn.applied >= rs.index, 10));
  t.is(sn.sm.get('k'), 'v2');
});

test('a new leader defers ReadIndex until it has committed an entry of its term', (t) => {
  const c = new Cluster({ n: 3, seed: 84 });
  const l1 = c.checkOneLeader();
  c.one(put('k', 'v1', 'w1'), 3);
  c.disconnect(l1);
  const l2 = c.checkOneLeader(1);
  const sn = c.node(l2);
  // Catch the leader just after election: its no-op may or may not be committed. Either way,
  // any ReadState must be at or after its no-op (the index it became leader at).
  const noop = sn.node.raft.raftLog.lastIndex();
  sn.node.readIndex(enc.encode('r'));
  c.process(sn);
  t.true(c.runUntil(() => sn.readStates.length > 0, 10));
  t.true(sn.readStates[0]!.index >= noop);
  t.is(sn.node.raft.raftLog.zeroTermOnOutOfBounds(sn.readStates[0]!.index), sn.node.raft.term);
});

test('lease-based reads are answered by the leader at once (requires check-quorum)', (t) => {
  const c = new Cluster({ n: 3, seed: 85, config: { readOnlyOption: 'lease' } });
  const leader = c.checkOneLeader();
  c.one(put('k', 'v1', 'w1'), 3);
  const sn = c.node(leader);
  sn.node.readIndex(enc.encode('lease'));
  c.process(sn);
  t.is(sn.readStates.length, 1);
  t.throws(() => new Cluster({ n: 1, config: { readOnlyOption: 'lease', checkQuorum: false } }), { message: /requires checkQuorum/ });
});

test('a single-voter cluster answers ReadIndex immediately', (t) => {
  const c = new Cluster({ n: 1, seed: 86 });
  c.checkOneLeader();
  const sn = c.node('n1');
  c.one(put('k', 'v', 'w'), 1);
  sn.node.readIndex(enc.encode('solo'));
  c.process(sn);
  t.is(sn.readStates.length, 1);
});

test('lease reads fall back to a heartbeat round when the lease cannot be vouched for', (t) => {
  const c = new Cluster({ n: 3, seed: 87, config: { readOnlyOption: 'lease' } });
  const leader = c.checkOneLeader();
  c.one(put('k', 'v1', 'w1'), 3);
  const sn = c.node(leader);
  // A transfer (even abandoned) disables the lease for the rest of the term: a delayed
  // MsgTimeoutNow could still elect its target inside the lease.
  const target = c.ids.find((id) => id !== leader)!;
  c.disconnect(target);
  sn.node.transferLeader(target);
  c.runTicks(25);
  t.is(sn.node.status().leadTransferee, '');
  t.is(sn.node.raft.state, 'leader');
  sn.node.readIndex(enc.encode('after-transfer'));
  c.process(sn);
  t.is(sn.readStates.length, 0, 'not answered from the lease');
  c.run(3);
  t.is(sn.readStates.length, 1, 'answered after a heartbeat quorum');
  // A leader whose followers went silent has no lease either.
  const c2 = new Cluster({ n: 3, seed: 88, config: { readOnlyOption: 'lease', electionTick: 20 } });
  const l2 = c2.checkOneLeader();
  c2.one(put('k', 'v1', 'w1'), 3);
  c2.partition([l2], c2.ids.filter((id) => id !== l2));
  c2.runTicks(18);
  t.is(c2.node(l2).node.raft.state, 'leader', 'check-quorum has not stepped it down yet');
  t.false(c2.node(l2).node.raft.leaseValid());
});
