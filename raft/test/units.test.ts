/** Unit tests of the building blocks: storage, log, inflights, progress, quorum, confchange. */
import test from 'ava';
import {
  CompactedError,
  ConfChangeError,
  EntryType,
  MemoryStorage,
  SnapshotOutOfDateError,
  UnavailableError,
  applyToConfig,
  bootstrap,
  decodeConfChange,
  encodeConfChange,
  majorityCommittedIndex,
  majorityVoteResult,
  type Entry,
} from '../src/index.js';
import { RaftLog } from '../src/log.js';
import { Inflights } from '../src/tracker/inflights.js';
import { Progress } from '../src/tracker/progress.js';
import { ReadOnly } from '../src/read_only.js';
import { newMessage } from '../src/util.js';
import { MessageType } from '../src/types.js';

const ent = (index: number, term: number, data = ''): Entry => ({ index, term, type: EntryType.Normal, data: new TextEncoder().encode(data) });

// ----------------------------------------------------------------------------- MemoryStorage

test('MemoryStorage: append, term, entries, bounds errors', (t) => {
  const s = new MemoryStorage();
  t.is(s.firstIndex(), 1);
  t.is(s.lastIndex(), 0);
  s.append([ent(1, 1), ent(2, 1), ent(3, 2)]);
  t.is(s.lastIndex(), 3);
  t.is(s.term(3), 2);
  t.deepEqual(s.entries(1, 4, Infinity).map((e) => e.index), [1, 2, 3]);
  t.throws(() => s.term(4), { instanceOf: UnavailableError });
  t.throws(() => s.entries(0, 2, Infinity), { instanceOf: CompactedError });
  t.throws(() => s.append([ent(5, 2)]), { message: /gap/ });
  // Overwrite a conflicting suffix.
  s.append([ent(2, 3), ent(3, 3)]);
  t.deepEqual(s.entries(1, 4, Infinity).map((e) => e.term), [1, 3, 3]);
});

test('MemoryStorage: entries respects the size cap but returns at least one', (t) => {
  const s = new MemoryStorage();
  s.append([ent(1, 1, 'x'.repeat(100)), ent(2, 1, 'x'.repeat(100)), ent(3, 1, 'x'.repeat(100))]);
  t.is(s.entries(1, 4, 1).length, 1);
  t.is(s.entries(1, 4, 250).length, 2);
  t.is(s.entries(1, 4, Infinity).length, 3);
});

test('MemoryStorage: snapshot, compact, apply snapshot', (t) => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
  const snap = s.createSnapshot(3, { voters: ['a'], learners: [] }, new Uint8Array([1]));
  t.is(snap.metadata.term, 2);
  t.throws(() => s.createSnapshot(2, undefined, new Uint8Array()), { instanceOf: SnapshotOutOfDateError });
  s.compact(3);
  t.is(s.firstIndex(), 4);
  t.is(s.term(3), 2); // the compaction point keeps its term
  t.throws(() => s.term(2), { instanceOf: CompactedError });
  t.throws(() => s.compact(2), { instanceOf: CompactedError });
  t.throws(() => s.compact(4), { message: /past the snapshot index 3/ });
  // Appending entries that are partly compacted keeps only the new part.
  s.append([ent(3, 2), ent(4, 2), ent(5, 3)]);
  t.is(s.lastIndex(), 5);
  const s2 = new MemoryStorage();
  s2.applySnapshot(snap);
  t.is(s2.firstIndex(), 4);
  t.is(s2.lastIndex(), 3);
  t.deepEqual(s2.initialState().confState.voters, ['a']);
  t.throws(() => s2.applySnapshot({ ...snap, metadata: { ...snap.metadata, index: 1 } }), { instanceOf: SnapshotOutOfDateError });
});

test('bootstrap writes committed conf changes at term 1 and refuses a used storage', (t) => {
  const s = new MemoryStorage();
  bootstrap(s, ['a', 'b', 'c']);
  t.is(s.lastIndex(), 3);
  t.deepEqual(s.initialState().hardState, { term: 1, vote: '', commit: 3 });
  const cc = decodeConfChange(s.entries(2, 3, Infinity)[0]!.data);
  t.deepEqual(cc, { type: 'addNode', nodeId: 'b' });
  t.throws(() => bootstrap(s, ['a']), { message: /not empty/ });
});

// ----------------------------------------------------------------------------- RaftLog

function logWith(ents: Entry[]): RaftLog {
  const s = new MemoryStorage();
  s.append(ents);
  return new RaftLog(s);
}

test('RaftLog.maybeAppend: consistency check, conflicts truncate, duplicates do not', (t) => {
  const log = logWith([ent(1, 1), ent(2, 2), ent(3, 3)]);
  t.is(log.maybeAppend(3, 2, 0, [ent(4, 3)]), undefined, 'prev term mismatch');
  t.is(log.maybeAppend(4, 3, 0, []), undefined, 'prev beyond the log');
  t.is(log.maybeAppend(3, 3, 3, []), 3, 'heartbeat-like append');
  t.is(log.committed, 3);
  // A stale duplicate of an older append must not truncate entries after it (bug #4).
  t.is(log.maybeAppend(1, 1, 3, [ent(2, 2)]), 2);
  t.is(log.lastIndex(), 3);
  const log2 = logWith([ent(1, 1), ent(2, 2), ent(3, 3)]);
  t.is(log2.maybeAppend(1, 1, 0, [ent(2, 4), ent(3, 4), ent(4, 4)]), 4);
  t.deepEqual([1, 2, 3, 4].map((i) => log2.term(i)), [1, 4, 4, 4]);
  log2.commitTo(2);
  t.throws(() => log2.maybeAppend(1, 1, 0, [ent(2, 9)]), { message: /conflicts with committed/ });
});

test('RaftLog.findConflictByTerm and isUpToDate', (t) => {
  const log = logWith([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 5), ent(6, 5)]);
  t.deepEqual(log.findConflictByTerm(6, 4), [4, 2]);
  t.deepEqual(log.findConflictByTerm(6, 5), [6, 5]);
  t.deepEqual(log.findConflictByTerm(6, 1), [2, 1]);
  t.deepEqual(log.findConflictByTerm(6, 0), [0, 0]);
  // Election restriction: compare last terms, then lengths.
  t.true(log.isUpToDate(1, 6));
  t.true(log.isUpToDate(6, 5));
  t.false(log.isUpToDate(5, 5));
  t.false(log.isUpToDate(100, 4));
});

test('RaftLog.maybeCommit only commits entries of the given term (§5.4.2)', (t) => {
  const log = logWith([ent(1, 1), ent(2, 2), ent(3, 3)]);
  t.false(log.maybeCommit(2, 3));
  t.is(log.committed, 0);
  t.true(log.maybeCommit(3, 3));
  t.is(log.committed, 3);
  t.false(log.maybeCommit(2, 2), 'never moves back');
});

test('RaftLog: unstable entries, stableTo, next committed entries', (t) => {
  const log = logWith([ent(1, 1)]);
  log.append([ent(2, 1), ent(3, 2)]);
  t.deepEqual(log.unstableEntries().map((e) => e.index), [2, 3]);
  log.commitTo(3);
  t.deepEqual(log.nextCommittedEnts().map((e) => e.index), [1, 2, 3]);
  log.stableTo(2, 1);
  t.deepEqual(log.unstableEntries().map((e) => e.index), [3]);
  log.stableTo(3, 9); // wrong term: not stable
  t.deepEqual(log.unstableEntries().map((e) => e.index), [3]);
  log.appliedTo(2);
  t.deepEqual(log.nextCommittedEnts().map((e) => e.index), [3]);
  t.throws(() => log.appliedTo(4));
  t.throws(() => log.commitTo(10), { message: /out of range/ });
});

// ----------------------------------------------------------------------------- flow control

test('Inflights: bounded by count and by bytes; freeLE; freeFirstOne', (t) => {
  const inf = new Inflights(3, 100);
  inf.add(1, 10);
  inf.add(2, 10);
  t.false(inf.full());
  inf.add(3, 10);
  t.true(inf.full());
  t.throws(() => inf.add(4, 10));
  inf.freeLE(2);
  t.is(inf.count, 1);
  t.is(inf.bytes, 10);
  inf.add(4, 95);
  t.true(inf.full(), 'byte limit reached');
  inf.freeFirstOne();
  t.is(inf.count, 1);
  t.false(inf.full());
  for (let i = 5; i < 500; i++) {
    inf.freeLE(i - 1);
    inf.add(i, 1);
  }
  t.is(inf.count, 1);
});

test('Progress: probe pauses after a send; replicate is optimistic; rejections move next back', (t) => {
  const pr = new Progress(11, 4, Infinity, false);
  t.is(pr.state, 'probe');
  pr.sentEntries(2, 20, 12);
  t.true(pr.isPaused());
  t.false(pr.maybeDecrTo(5, 0), 'stale rejection');
  t.true(pr.maybeDecrTo(10, 6));
  t.is(pr.next, 7);
  t.false(pr.isPaused());
  t.true(pr.maybeUpdate(8));
  pr.becomeReplicate();
  t.is(pr.next, 9);
  pr.sentEntries(3, 30, 11);
  pr.sentEntries(1, 10, 12);
  t.is(pr.next, 13);
  t.is(pr.inflights.count, 2);
  t.false(pr.maybeDecrTo(8, 8), 'rejection at or below match is stale');
  t.true(pr.maybeDecrTo(11, 9));
  t.is(pr.next, 9);
  pr.becomeSnapshot(20);
  t.true(pr.isPaused());
  pr.becomeProbe();
  t.is(pr.next, 21);
});

test('quorum: majority commit index and vote results', (t) => {
  const voters = new Set(['a', 'b', 'c', 'd', 'e']);
  const match: Record<string, number> = { a: 5, b: 9, c: 3, d: 7, e: 1 };
  t.is(majorityCommittedIndex(voters, (id) => match[id]!), 5);
  t.is(majorityCommittedIndex(new Set(['a']), () => 4), 4);
  t.is(majorityCommittedIndex(new Set(), () => 0), Infinity);
  t.is(majorityCommittedIndex(new Set(['a', 'b']), (id) => (id === 'a' ? 5 : 2)), 2);
  const votes = new Map([
    ['a', true],
    ['b', true],
  ]);
  t.is(majorityVoteResult(voters, votes), 'pending');
  votes.set('c', true);
  t.is(majorityVoteResult(voters, votes), 'won');
  t.is(majorityVoteResult(voters, new Map([['a', false], ['b', false], ['c', false]])), 'lost');
});

test('ReadOnly: requests are released in order once a later one is acknowledged', (t) => {
  const ro = new ReadOnly('safe');
  const ctx = (s: string) => new TextEncoder().encode(s);
  ro.addRequest(5, newMessage(MessageType.ReadIndex, { context: ctx('r1') }));
  ro.addRequest(6, newMessage(MessageType.ReadIndex, { context: ctx('r2') }));
  ro.addRequest(6, newMessage(MessageType.ReadIndex, { context: ctx('r2') })); // duplicate
  t.is(ro.size, 2);
  t.deepEqual([...ro.recvAck('b', ctx('r2'))!], ['b']);
  const done = ro.advance(ctx('r2'));
  t.deepEqual(done.map((d) => d.index), [5, 6]);
  t.is(ro.size, 0);
  t.is(ro.recvAck('b', ctx('zz')), undefined);
});

test('conf changes: encode/decode, apply, validation', (t) => {
  const cc = { type: 'addLearner' as const, nodeId: 'd', context: 'addr' };
  t.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
  t.throws(() => decodeConfChange(new TextEncoder().encode('{"type":"bogus","nodeId":"x"}')), { instanceOf: ConfChangeError, message: /bogus/ });
  t.throws(() => decodeConfChange(new TextEncoder().encode('{"type":"addNode","nodeId":""}')), { instanceOf: ConfChangeError });
  let cfg = { voters: new Set(['a', 'b', 'c']), learners: new Set<string>() };
  cfg = applyToConfig(cfg, cc);
  t.deepEqual([...cfg.learners], ['d']);
  cfg = applyToConfig(cfg, { type: 'addNode', nodeId: 'd' });
  t.deepEqual([...cfg.voters].sort(), ['a', 'b', 'c', 'd']);
  t.is(cfg.learners.size, 0);
  cfg = applyToConfig(cfg, { type: 'addLearner', nodeId: 'a' });
  t.false(cfg.voters.has('a'));
  t.true(cfg.learners.has('a'));
  t.throws(() => applyToConfig({ voters: new Set(['a']), learners: new Set() }, { type: 'removeNode', nodeId: 'a' }), {
    instanceOf: ConfChangeError,
  });
});
