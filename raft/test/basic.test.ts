import test from 'ava';
import { MemoryStorage, RawNode, ProposalDroppedError, EntryType, MessageType, bootstrap, decodeConfChange, type Ready } from '../src/index.js';
import { Cluster } from './harness.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Runs the Ready loop of a lone node, returning applied payloads. */
function drain(node: RawNode, storage: MemoryStorage): { applied: string[]; readies: Ready[] } {
  const applied: string[] = [];
  const readies: Ready[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    readies.push(rd);
    if (rd.snapshot) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) if (e.type === EntryType.Normal && e.data.length) applied.push(dec.decode(e.data));
    node.advance();
  }
  return { applied, readies };
}

test('a single voter elects itself on campaign() and commits proposals immediately', (t) => {
  const storage = new MemoryStorage({ voters: ['a'], learners: [] });
  const node = new RawNode({ id: 'a' }, storage);
  t.throws(() => node.propose(enc.encode('x')), { instanceOf: ProposalDroppedError });
  node.campaign();
  t.is(node.status().role, 'leader');
  t.is(node.status().term, 1);
  drain(node, storage);
  node.propose(enc.encode('x'));
  node.propose(enc.encode('y'));
  const { applied, readies } = drain(node, storage);
  t.deepEqual(applied, ['x', 'y']);
  t.true(readies[0]!.mustSync);
  t.is(storage.lastIndex(), 3); // no-op + 2
  t.is(node.status().commit, 3);
});

test('a single voter elects itself after an election timeout', (t) => {
  const storage = new MemoryStorage({ voters: ['a'], learners: [] });
  const node = new RawNode({ id: 'a', electionTick: 5 }, storage);
  for (let i = 0; i < 10 && node.status().role !== 'leader'; i++) node.tick();
  t.is(node.status().role, 'leader');
});

test('restart from storage keeps term, vote and log; applied is not redelivered', (t) => {
  const storage = new MemoryStorage({ voters: ['a'], learners: [] });
  let node = new RawNode({ id: 'a' }, storage);
  node.campaign();
  drain(node, storage);
  node.propose(enc.encode('x'));
  drain(node, storage);
  node = new RawNode({ id: 'a', applied: 2 }, storage);
  t.is(node.status().term, 1);
  t.is(node.status().commit, 2);
  t.is(node.status().applied, 2);
  t.false(node.hasReady());
  node.campaign();
  drain(node, storage);
  t.is(node.status().term, 2);
});

test('three nodes elect one leader and replicate', (t) => {
  const c = new Cluster({ n: 3, seed: 7 });
  const leader = c.checkOneLeader();
  t.truthy(leader);
  const i1 = c.one('hello', 3);
  const i2 = c.one('world', 3);
  t.is(i2, i1 + 1);
  t.is(c.nCommitted(i1).value, 'hello');
});

test('follower forwards proposals to the leader', (t) => {
  const c = new Cluster({ n: 3, seed: 3 });
  const leader = c.checkOneLeader();
  const follower = c.ids.find((id) => id !== leader)!;
  const sn = c.node(follower);
  sn.node.propose(enc.encode('fwd'));
  c.process(sn);
  c.runTicks(3);
  const idx = [...c.committedAt].find(([, v]) => v === 'fwd');
  t.truthy(idx);
  t.is(c.nCommitted(idx![0]).count, 3);
});

test('ready() twice without advance() throws', (t) => {
  const storage = new MemoryStorage({ voters: ['a'], learners: [] });
  const node = new RawNode({ id: 'a' }, storage);
  node.campaign();
  node.ready();
  t.throws(() => node.ready(), { message: /advance/ });
});

test('step() refuses local message types', (t) => {
  const node = new RawNode({ id: 'a' }, new MemoryStorage({ voters: ['a'], learners: [] }));
  t.throws(() =>
    node.step({ type: MessageType.Hup, to: 'a', from: 'a', term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 }),
  );
});

test('a lagging follower catches up through a snapshot after compaction', (t) => {
  const c = new Cluster({ n: 3, seed: 11, snapshotEvery: 10 });
  const leader = c.checkOneLeader();
  c.one('a0', 3);
  const victim = c.ids.find((id) => id !== leader)!;
  c.disconnect(victim);
  for (let i = 1; i <= 30; i++) c.one(`a${i}`, 2);
  t.true(c.storages.get(leader)!.firstIndex() > 5, 'leader compacted its log');
  c.connect(victim);
  c.resetCounters();
  const last = c.one('final', 3);
  t.true((c.counters.byType[MessageType.Snap] ?? 0) >= 1, 'a MsgSnap was sent');
  t.is(c.node(victim).applied, last);
  t.is(c.node(victim).sm.get('x'), undefined);
});

test('a bootstrapped single voter elects itself on campaign() once the first Ready is applied', (t) => {
  const storage = new MemoryStorage();
  bootstrap(storage, ['a']);
  const node = new RawNode({ id: 'a' }, storage);
  node.campaign(); // refused: the bootstrap conf change is not applied yet
  t.is(node.status().role, 'follower');
  const rd = node.ready();
  t.is(rd.committedEntries.length, 1);
  t.is(rd.committedEntries[0]!.type, EntryType.ConfChange);
  node.applyConfChange(decodeConfChange(rd.committedEntries[0]!.data));
  node.advance();
  node.campaign();
  t.is(node.status().role, 'leader');
  drain(node, storage);
  node.propose(enc.encode('x'));
  t.deepEqual(drain(node, storage).applied, ['x']);
});
