/** Log replication scenarios (Raft paper §5.3–5.4; MIT 6.5840 part 3B). */
import test from 'ava';
import { MessageType } from '../src/index.js';
import { Cluster } from './harness.js';

test('basic agreement: commands land at the expected indexes on all nodes', (t) => {
  const c = new Cluster({ n: 3, seed: 10 });
  const leader = c.checkOneLeader();
  // Indexes 1..3 are the bootstrap conf changes, 4 the leader's no-op; nothing else yet.
  const base = c.node(leader).node.raft.raftLog.lastIndex();
  t.is(base, 4);
  t.is(c.nCommitted(base + 1).count, 0);
  for (let i = 1; i <= 3; i++) {
    t.is(c.one(`cmd${i}`, 3, false), base + i);
  }
});

test('RPC bytes: each entry is sent to each peer about once', (t) => {
  const c = new Cluster({ n: 3, seed: 11 });
  c.checkOneLeader();
  c.one('warmup', 3);
  c.resetCounters();
  let payload = 0;
  for (let i = 0; i < 10; i++) {
    const cmd = `${i}:${'x'.repeat(5000)}`;
    payload += cmd.length;
    c.one(cmd, 3, false);
  }
  const expected = payload * 2; // two followers
  t.true(c.counters.bytes <= expected + 50_000, `sent ${c.counters.bytes} bytes for ${expected} bytes of payload`);
});

test('follower failure: 2 of 3 commit; with only the leader left nothing commits', (t) => {
  const c = new Cluster({ n: 3, seed: 12 });
  c.one('101', 3);
  const leader1 = c.checkOneLeader();
  const f1 = c.ids.find((id) => id !== leader1)!;
  c.disconnect(f1);
  c.one('102', 2);
  c.runTicks(20);
  c.one('103', 2);
  const leader2 = c.checkOneLeader();
  for (const id of c.ids) if (id !== leader2) c.disconnect(id);
  const index = c.propose(leader2, '104');
  t.not(index, undefined);
  c.runTicks(40);
  t.is(c.nCommitted(index!).count, 0, 'committed with only the leader');
});

test('leader failure: the remaining pair elects and commits; a lone node does not', (t) => {
  const c = new Cluster({ n: 3, seed: 13 });
  c.one('101', 3);
  const l1 = c.checkOneLeader();
  c.disconnect(l1);
  c.one('102', 2);
  c.runTicks(20);
  c.one('103', 2);
  const l2 = c.checkOneLeader();
  c.disconnect(l2);
  const lastBefore = c.maxIndex;
  for (const id of c.ids) c.propose(id, '104');
  c.runTicks(40);
  t.is(c.nCommitted(lastBefore + 1).count, 0);
});

test('fail agree: a disconnected follower catches up after reconnecting', (t) => {
  const c = new Cluster({ n: 3, seed: 14 });
  c.one('101', 3);
  const leader = c.checkOneLeader();
  const f = c.ids.find((id) => id !== leader)!;
  c.disconnect(f);
  for (const x of ['102', '103', '104', '105']) c.one(x, 2);
  c.runTicks(20);
  c.connect(f);
  c.one('106', 3);
  c.runTicks(20);
  c.one('107', 3);
  t.pass();
});

test('a 3-of-5 minority cannot commit; agreement resumes after healing', (t) => {
  const c = new Cluster({ n: 5, seed: 15 });
  c.one('10', 5);
  const leader = c.checkOneLeader();
  const others = c.ids.filter((id) => id !== leader);
  for (const id of others.slice(0, 3)) c.disconnect(id);
  const index = c.propose(leader, '20');
  t.not(index, undefined);
  c.runTicks(40);
  t.is(c.nCommitted(index!).count, 0);
  for (const id of others.slice(0, 3)) c.connect(id);
  const leader2 = c.checkOneLeader();
  const index2 = c.propose(leader2, '30');
  t.not(index2, undefined);
  t.true(index2! >= index! && index2! <= index! + 2, `unexpected index ${index2}`);
  c.one('1000', 5);
});

test('concurrent proposals in one term all commit', (t) => {
  const c = new Cluster({ n: 3, seed: 16 });
  const leader = c.checkOneLeader();
  const term = c.node(leader).node.raft.term;
  const idx: number[] = [];
  for (let i = 0; i < 5; i++) {
    const index = c.propose(leader, `c${i}`);
    t.not(index, undefined);
    idx.push(index!);
  }
  c.runTicks(5);
  t.is(c.node(leader).node.raft.term, term);
  for (const [i, index] of idx.entries()) {
    const { count, value } = c.nCommitted(index);
    t.is(count, 3);
    t.is(value, `c${i}`);
  }
});

test('rejoin: a deposed leader\'s uncommitted entries are overwritten', (t) => {
  const c = new Cluster({ n: 3, seed: 17 });
  c.one('101', 3);
  const l1 = c.checkOneLeader();
  c.disconnect(l1);
  // The partitioned leader accepts entries it can never commit.
  c.propose(l1, '102');
  c.propose(l1, '103');
  c.propose(l1, '104');
  const l2 = c.checkOneLeader();
  c.one('103', 2);
  c.disconnect(l2);
  c.connect(l1);
  c.one('104', 2);
  c.connect(l2);
  c.one('105', 3);
  t.pass();
});

test('fast backup over 50+ conflicting entries', (t) => {
  const c = new Cluster({ n: 5, seed: 18 });
  c.one('init', 5);
  const l1 = c.checkOneLeader();
  const others = c.ids.filter((id) => id !== l1);
  // Leader + 1 follower get 50 uncommitted entries.
  for (const id of others.slice(1)) c.disconnect(id);
  for (let i = 0; i < 50; i++) c.propose(l1, `a${i}`);
  c.runTicks(4);
  c.disconnect(l1);
  c.disconnect(others[0]!);
  // The other three commit 50 entries.
  for (const id of others.slice(1)) c.connect(id);
  for (let i = 0; i < 50; i++) c.one(`b${i}`, 3);
  // Now partition again: the new leader + 1 get 50 uncommitted entries.
  const l2 = c.checkOneLeader();
  const other = others.slice(1).find((id) => id !== l2)!;
  c.disconnect(other);
  for (let i = 0; i < 50; i++) c.propose(l2, `c${i}`);
  c.runTicks(4);
  // Bring back the original leader's pair plus `other`.
  for (const id of c.ids) c.disconnect(id);
  c.connect(l1);
  c.connect(others[0]!);
  c.connect(other);
  c.resetCounters();
  for (let i = 0; i < 50; i++) c.one(`d${i}`, 3);
  // Backtracking skips a whole term per round trip, not one entry: a handful of rejections.
  t.true(c.counters.appRejects > 0);
  t.true(c.counters.appRejects <= 12, `${c.counters.appRejects} rejected MsgApps while backing up`);
  for (const id of c.ids) c.connect(id);
  c.one('final', 5);
});

test('bounded RPC counts: election, agreement, and idle', (t) => {
  const c = new Cluster({ n: 3, seed: 19 });
  c.checkOneLeader(1);
  const electionRpcs = c.counters.rpcs;
  // 2 election timeouts of heartbeats are included here; the election itself is a handful.
  t.true(electionRpcs <= 30 + 2 * 20 * 2 * 2, `election used ${electionRpcs} RPCs`);
  const leader = c.checkOneLeader(1);
  c.resetCounters();
  const start = c.propose(leader, 'x0')!;
  for (let i = 1; i < 10; i++) c.propose(leader, `x${i}`);
  c.run(10);
  t.is(c.nCommitted(start + 9).count, 3);
  // MIT bound: (iters + 1 + 3) × 3 RPCs, i.e. twice that in messages (request + response).
  // Per proposal and follower we send one MsgApp with the entry and one carrying the new commit
  // index (etcd behaviour), each answered.
  const appMsgs = (c.counters.byType[MessageType.App] ?? 0) + (c.counters.byType[MessageType.AppResp] ?? 0);
  t.true(appMsgs <= (10 + 1 + 3) * 3 * 2, `agreement used ${appMsgs} MsgApp/MsgAppResp`);
  c.resetCounters();
  c.runTicks(10); // one "second" at 100 ms ticks
  // Idle: a heartbeat and its response per follower per tick.
  t.true(c.counters.rpcs <= 60, `idle second used ${c.counters.rpcs} RPCs`);
  t.true(c.counters.rpcs >= 20, 'heartbeats flowing');
});
