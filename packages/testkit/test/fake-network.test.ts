import test from 'ava';
import { EntryType, MessageType, type Message } from '@shoal/raft';
import type { TransportHandler } from '@shoal/replication';
import { FakeClock } from '../src/index.js';
import { FakeDisk, FakeNetwork, FakeRaftStorage } from '../src/cluster/index.js';

const msg = (from: string, to: string, type = MessageType.Heartbeat): Message =>
  ({ type, from, to, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });

function endpoint(net: FakeNetwork, id: string, host: string, verdict?: 'removed') {
  const got: string[] = [];
  const t = net.transport({ id, host, addr: `${host}:2377` });
  const h: TransportHandler = {
    onMessage: (m) => {
      got.push(`${m.from}->${m.to} ${m.type}`);
      return verdict;
    },
    onUnreachable: (p) => got.push(`unreachable ${p}`),
    onSnapshotStatus: (p, ok) => got.push(`snapshot ${p} ${ok}`),
    onRemoved: (p) => got.push(`removed by ${p}`),
  };
  t.setHandler(h);
  return { t, got };
}

test('FakeNetwork: delivery on the clock, partitions, one-way cuts, delays, heal', (t) => {
  const clock = new FakeClock(0);
  const net = new FakeNetwork(clock);
  const a = endpoint(net, 'a', 'n1');
  const b = endpoint(net, 'b', 'n2');
  a.t.addPeer('b', 'n2:2377');
  b.t.addPeer('a', 'n1:2377');
  a.t.send([msg('a', 'b')]);
  t.deepEqual(b.got, [], 'never delivered from inside send');
  clock.advance(0);
  t.deepEqual(b.got, ['a->b MsgHeartbeat']);
  net.partition(['n1'], ['n2']);
  a.t.send([msg('a', 'b')]);
  clock.advance(0);
  t.deepEqual(a.got, ['unreachable b'], 'a lost message reads as an unreachable peer');
  net.heal();
  net.cut('n1', 'n2', true);
  b.t.send([msg('b', 'a')]);
  a.t.send([msg('a', 'b')]);
  clock.advance(0);
  t.true(a.got.includes('b->a MsgHeartbeat'), 'the other way still works');
  t.is(b.got.length, 1);
  net.heal();
  net.delay(50);
  a.t.send([msg('a', 'b')]);
  clock.advance(49);
  t.is(b.got.length, 1);
  clock.advance(1);
  t.is(b.got.length, 2);
  // In flight when the link is cut: lost.
  a.t.send([msg('a', 'b')]);
  net.isolate('n2');
  clock.advance(50);
  t.is(b.got.length, 2);
  t.deepEqual(net.stats, { sent: 6, delivered: 3, dropped: 3 });
});

test('FakeNetwork: whoever listens at the address gets the message; a refusal reaches the sender as removed', (t) => {
  const clock = new FakeClock(0);
  const net = new FakeNetwork(clock);
  const a = endpoint(net, 'a', 'n1');
  const old = endpoint(net, 'b1', 'n2');
  a.t.addPeer('b1', 'n2:2377');
  void old.t.close();
  const fresh = endpoint(net, 'b2', 'n2', 'removed');
  a.t.send([msg('a', 'b1')]);
  clock.advance(0);
  t.deepEqual(fresh.got, ['a->b1 MsgHeartbeat'], 'the address decides, as with gRPC');
  t.deepEqual(a.got, ['removed by b1']);
});

test('FakeRaftStorage: what was saved survives a reopen of the same disk; a wipe starts fresh', async (t) => {
  const disk = new FakeDisk();
  const s1 = await FakeRaftStorage.open(disk);
  t.true(s1.loaded.fresh);
  const ents = [1, 2, 3].map((index) => ({ term: 1, index, type: EntryType.Normal, data: new Uint8Array([index]) }));
  await s1.save({ term: 1, vote: 'a', commit: 2 }, ents);
  await s1.saveSnapshot(2, { voters: ['a'], learners: [] }, new Uint8Array([9]), 2);
  await s1.close();
  const s2 = await FakeRaftStorage.open(disk);
  t.false(s2.loaded.fresh);
  t.deepEqual(s2.loaded.hardState, { term: 1, vote: 'a', commit: 2 });
  t.is(s2.snapshot().metadata.index, 2);
  t.is(s2.lastIndex(), 3);
  t.deepEqual([...s2.entries(3, 4, Infinity)[0]!.data], [3]);
  disk.wipe();
  t.true((await FakeRaftStorage.open(disk)).loaded.fresh);
});
