/**
 * Message-level tests, one claim of the Raft paper / thesis each (in the spirit of etcd's
 * raft_paper_test.go). Nodes are driven by hand: no harness, no randomness beyond the seed.
 */
import test from 'ava';
import { EntryType, MemoryStorage, MessageType, ProposalDroppedError, RawNode, type Config, type Message, type Ready } from '../src/index.js';
import { newMessage } from '../src/util.js';

const enc = new TextEncoder();

function mk(id: string, voters: string[], cfg: Partial<Config> = {}): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage({ voters, learners: [] });
  return { node: new RawNode({ id, electionTick: 10, ...cfg }, storage), storage };
}

/** Processes readies of a node, returning the messages it sent and the readies. */
function flush(n: { node: RawNode; storage: MemoryStorage }): { msgs: Message[]; readies: Ready[] } {
  const msgs: Message[] = [];
  const readies: Ready[] = [];
  while (n.node.hasReady()) {
    const rd = n.node.ready();
    readies.push(rd);
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    msgs.push(...rd.messages);
    n.node.advance();
  }
  return { msgs, readies };
}

/** Delivers messages among nodes until quiet. */
function settle(
  nodes: Record<string, { node: RawNode; storage: MemoryStorage }>,
  drop: (m: Message) => boolean = () => false,
  initial: Message[] = [],
): void {
  let queue: Message[] = [...initial];
  for (const n of Object.values(nodes)) queue.push(...flush(n).msgs);
  for (let i = 0; i < 1000 && queue.length > 0; i++) {
    const next: Message[] = [];
    for (const m of queue) {
      const to = nodes[m.to];
      if (!to || drop(m)) continue;
      to.node.step({ ...m, entries: m.entries.slice() });
      next.push(...flush(to).msgs);
    }
    queue = next;
  }
}

function cluster3(cfg: Partial<Config> = {}) {
  const ids = ['a', 'b', 'c'];
  const nodes = Object.fromEntries(ids.map((id) => [id, mk(id, ids, cfg)]));
  nodes.a!.node.campaign();
  settle(nodes);
  return nodes;
}

test('§5.2: a node grants at most one vote per term, and persists it before answering', (t) => {
  const n = mk('a', ['a', 'b', 'c'], { preVote: false });
  const vote = (from: string) => newMessage(MessageType.Vote, { from, to: 'a', term: 1, index: 0, logTerm: 0 });
  n.node.step(vote('b'));
  const { msgs, readies } = flush(n);
  t.is(msgs[0]!.type, MessageType.VoteResp);
  t.false(msgs[0]!.reject);
  // The vote is in the same Ready as the response, with mustSync: persisted before it is sent.
  t.is(readies[0]!.hardState!.vote, 'b');
  t.true(readies[0]!.mustSync);
  n.node.step(vote('c'));
  t.true(flush(n).msgs[0]!.reject, 'second candidate in the same term is refused');
  n.node.step(vote('b'));
  t.false(flush(n).msgs[0]!.reject, 'a duplicate request from the same candidate is granted again');
});

test('§5.4.1: votes are refused to candidates with a less up-to-date log', (t) => {
  const n = mk('a', ['a', 'b', 'c'], { preVote: false });
  n.storage.append([
    { index: 1, term: 2, type: EntryType.Normal, data: new Uint8Array() },
    { index: 2, term: 2, type: EntryType.Normal, data: new Uint8Array() },
  ]);
  n.storage.setHardState({ term: 2, vote: '', commit: 0 });
  const node = new RawNode({ id: 'a' }, n.storage);
  const ask = (index: number, logTerm: number) => {
    node.step(newMessage(MessageType.Vote, { from: 'b', to: 'a', term: 3, index, logTerm }));
    const rd = node.ready();
    node.advance();
    return rd.messages[0]!;
  };
  t.true(ask(5, 1).reject, 'older last term loses even with a longer log');
  t.true(ask(1, 2).reject, 'same last term, shorter log');
  t.false(ask(2, 2).reject, 'same last term, same length');
});

test('pre-vote does not change the receiver\'s term or vote', (t) => {
  const n = mk('a', ['a', 'b', 'c']);
  n.node.step(newMessage(MessageType.PreVote, { from: 'b', to: 'a', term: 5, index: 0, logTerm: 0 }));
  const { msgs } = flush(n);
  t.is(msgs[0]!.type, MessageType.PreVoteResp);
  t.false(msgs[0]!.reject);
  t.is(msgs[0]!.term, 5, 'granted with the future term');
  t.is(n.node.status().term, 0);
  t.is(n.node.status().vote, '');
});

test('check-quorum lease: a follower that hears from its leader ignores vote requests', (t) => {
  const nodes = cluster3();
  t.is(nodes.a!.node.status().role, 'leader');
  const term = nodes.b!.node.status().term;
  nodes.b!.node.step(newMessage(MessageType.Vote, { from: 'c', to: 'b', term: term + 1, index: 100, logTerm: 100 }));
  t.is(flush(nodes.b!).msgs.length, 0);
  t.is(nodes.b!.node.status().term, term);
});

test('§5.1: a stale leader learns the higher term from a response and steps down', (t) => {
  const nodes = cluster3();
  const a = nodes.a!;
  // b moved on to a higher term (e.g. elected elsewhere); a's heartbeat gets a reply at that term.
  a.node.step(newMessage(MessageType.HeartbeatResp, { from: 'b', to: 'a', term: 9 }));
  t.is(a.node.status().role, 'follower');
  t.is(a.node.status().term, 9);
});

test('§5.1: messages from older terms are ignored, stale appends get a term-carrying reply', (t) => {
  const nodes = cluster3();
  const b = nodes.b!;
  // Move everyone to a later term first (term 0 would mean a local message).
  nodes.a!.node.transferLeader('c');
  settle(nodes);
  t.is(nodes.c!.node.status().role, 'leader');
  const term = b.node.status().term;
  b.node.step(newMessage(MessageType.App, { from: 'a', to: 'b', term: term - 1, index: 0, logTerm: 0 }));
  const { msgs } = flush(b);
  t.is(msgs.length, 1);
  t.is(msgs[0]!.type, MessageType.AppResp);
  t.is(msgs[0]!.term, term);
  t.is(b.node.status().lead, 'c');
});

test('§5.2: a candidate that receives an append from a leader of its term becomes follower', (t) => {
  const n = mk('b', ['a', 'b', 'c'], { preVote: false });
  n.node.campaign();
  flush(n);
  t.is(n.node.status().role, 'candidate');
  n.node.step(newMessage(MessageType.App, { from: 'a', to: 'b', term: 1, index: 0, logTerm: 0 }));
  t.is(n.node.status().role, 'follower');
  t.is(n.node.status().lead, 'a');
});

test('heartbeats never advance a follower\'s commit past its known match', (t) => {
  const nodes = cluster3();
  const a = nodes.a!;
  a.node.propose(enc.encode('x'));
  // Deliver nothing to c.
  settle(nodes, (m) => m.to === 'c');
  a.node.tick();
  const beats = flush(a).msgs.filter((m) => m.type === MessageType.Heartbeat);
  const toC = beats.find((m) => m.to === 'c')!;
  const toB = beats.find((m) => m.to === 'b')!;
  t.is(toB.commit, a.node.status().commit);
  t.true(toC.commit < a.node.status().commit);
});

test('batching: proposals made before sending go out in one MsgApp per follower', (t) => {
  const nodes = cluster3();
  const a = nodes.a!;
  flush(a);
  // Pause b and c in probe state would force one message each; in replicate state the leader
  // streams every proposal at once, but Ready collects them into one batch of messages.
  for (let i = 0; i < 10; i++) a.node.propose(enc.encode(`p${i}`));
  const { msgs } = flush(a);
  const apps = msgs.filter((m) => m.type === MessageType.App);
  t.is(apps.reduce((n, m) => n + m.entries.length, 0), 20);
});

test('flow control: at most maxInflightMsgs unacknowledged MsgApp per follower', (t) => {
  const nodes = cluster3({ maxInflightMsgs: 3, maxSizePerMsg: 1 });
  const a = nodes.a!;
  flush(a);
  for (let i = 0; i < 10; i++) a.node.propose(enc.encode(`p${i}`));
  const sent = flush(a).msgs;
  const apps = sent.filter((m) => m.type === MessageType.App && m.to === 'b');
  t.is(apps.length, 3);
  t.is(a.node.status().progress.b!.inflight, 3);
  settle(nodes, undefined, sent);
  t.is(nodes.b!.node.status().lastIndex, a.node.status().lastIndex, 'acks release the window and the rest follows');
});

test('flow control: maxInflightBytes bounds bytes in flight', (t) => {
  const nodes = cluster3({ maxInflightBytes: 250, maxSizePerMsg: 1 });
  const a = nodes.a!;
  flush(a);
  for (let i = 0; i < 10; i++) a.node.propose(new Uint8Array(100));
  const sent = flush(a).msgs;
  const apps = sent.filter((m) => m.type === MessageType.App && m.to === 'b');
  t.is(apps.length, 3, '3 × 116 bytes ≥ 250: the window is full after the third');
  settle(nodes, undefined, sent);
  t.is(nodes.c!.node.status().lastIndex, a.node.status().lastIndex);
});

test('maxUncommittedEntriesSize: a leader that cannot commit drops proposals past the budget', (t) => {
  const nodes = cluster3({ maxUncommittedEntriesSize: 1000 });
  const a = nodes.a!;
  flush(a);
  let dropped = 0;
  for (let i = 0; i < 20; i++) {
    try {
      a.node.propose(new Uint8Array(100));
    } catch (e) {
      t.true(e instanceof ProposalDroppedError);
      dropped++;
    }
  }
  t.is(dropped, 10);
  settle(nodes); // commits and applies free the budget
  t.notThrows(() => a.node.propose(new Uint8Array(100)));
});

test('a removed or learner node never campaigns', (t) => {
  const storage = new MemoryStorage({ voters: ['a', 'b'], learners: ['c'] });
  const node = new RawNode({ id: 'c' }, storage);
  for (let i = 0; i < 100; i++) node.tick();
  t.is(node.status().role, 'follower');
  node.campaign();
  t.is(node.status().role, 'follower');
});

test('config validation names the bad field', (t) => {
  const s = new MemoryStorage({ voters: ['a'], learners: [] });
  t.throws(() => new RawNode({ id: '' }, s), { message: /id "" is invalid/ });
  t.throws(() => new RawNode({ id: 'a', electionTick: 1, heartbeatTick: 1 }, s), { message: /electionTick = 1 must be greater/ });
  t.throws(() => new RawNode({ id: 'a', maxInflightMsgs: 0 }, s), { message: /maxInflightMsgs = 0/ });
});

test('status() reports progress on the leader only', (t) => {
  const nodes = cluster3();
  const st = nodes.a!.node.status();
  t.is(st.role, 'leader');
  t.deepEqual(Object.keys(st.progress).sort(), ['a', 'b', 'c']);
  t.is(st.progress.b!.state, 'replicate');
  t.deepEqual(nodes.b!.node.status().progress, {});
  t.deepEqual(st.config, { voters: ['a', 'b', 'c'], learners: [] });
});

test('maxCommittedSizePerReady splits a large commit across Readies, in order', (t) => {
  const n = mk('a', ['a'], { maxCommittedSizePerReady: 300 });
  n.node.campaign();
  flush(n);
  for (let i = 0; i < 10; i++) n.node.propose(new Uint8Array(100));
  const { readies } = flush(n);
  const sizes = readies.map((rd) => rd.committedEntries.length).filter((x) => x > 0);
  t.true(sizes.length > 1, `one Ready carried everything: ${sizes}`);
  t.true(sizes.every((x) => x <= 3));
  const indexes = readies.flatMap((rd) => rd.committedEntries.map((e) => e.index));
  t.deepEqual(indexes, Array.from({ length: 10 }, (_, i) => i + 2));
});

test('bad arguments are refused with a one-line error naming the fix', (t) => {
  const n = mk('a', ['a']);
  t.throws(() => n.node.propose('x' as unknown as Uint8Array), { instanceOf: TypeError, message: /Uint8Array/ });
  t.throws(() => n.node.readIndex(new Uint8Array()), { instanceOf: RangeError, message: /non-empty/ });
  t.throws(() => n.node.transferLeader(''), { instanceOf: RangeError, message: /voter id/ });
  t.throws(() => n.node.proposeConfChange({ type: 'addNode', nodeId: '' }), { message: /non-empty node id/ });
});
