/**
 * Which peer messages a RaftNode takes (`admit`), driven through a stub transport: a real node on
 * LevelDB, messages handed straight to its transport handler, what it sends recorded.
 */
import test from 'ava';
import { rm } from 'node:fs/promises';
import { MessageType, type Message } from '@shoal/raft';
import { RaftNode, type Transport, type TransportHandler } from '../src/index.js';
import { KvApplier } from './fixtures/kv.js';
import { tempDir, waitFor } from './fixtures/cluster.js';

class StubTransport implements Transport {
  handler: TransportHandler | undefined;
  readonly sent: Message[] = [];
  constructor(readonly id: string) {}
  address(): string {
    return `${this.id}:1`;
  }
  setHandler(h: TransportHandler): void {
    this.handler = h;
  }
  addPeer(): void {}
  removePeer(): void {}
  peerAddr(id: string): string {
    return `${id}:1`;
  }
  send(msgs: readonly Message[]): void {
    this.sent.push(...msgs);
  }
  async close(): Promise<void> {}
}

const msg = (m: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message =>
  ({ logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m });

/** Member `b` of a founding configuration {a, b, c}, with elections far away (it never campaigns here). */
async function memberB(t: { teardown(fn: () => Promise<void>): void }): Promise<{ node: RaftNode; tr: StubTransport }> {
  const dir = await tempDir();
  const tr = new StubTransport('b');
  const node = await RaftNode.open({
    id: 'b', dataDir: dir, transport: tr, applier: new KvApplier(), electionTick: 1000, tickMs: 1000,
    bootstrap: { peers: ['a', 'b', 'c'].map((id) => ({ id, addr: `${id}:1` })) },
  });
  t.teardown(async () => {
    await node.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { node, tr };
}

test('a vote request from a member this node has not learned of yet is answered (Raft thesis §4.2.3)', async (t) => {
  // `d` was added while `b` was away: `b`'s configuration is still {a, b, c}. Refusing `d`'s vote
  // request would leave a majority of the current configuration unable to elect anyone.
  const { node, tr } = await memberB(t);
  const last = node.status().raft.lastIndex;
  tr.handler!.onMessage(msg({ type: MessageType.PreVote, from: 'd', to: 'b', term: 2, logTerm: 1, index: last }));
  await waitFor(() => tr.sent.some((m) => m.type === MessageType.PreVoteResp && m.to === 'd'), 'an answer to d');
  t.false(tr.sent.find((m) => m.type === MessageType.PreVoteResp)!.reject, 'granted');
});

test('a message addressed to another Raft ID (an earlier membership at this address) is dropped', async (t) => {
  const { node, tr } = await memberB(t);
  const before = node.term();
  tr.handler!.onMessage(msg({ type: MessageType.Heartbeat, from: 'a', to: 'b-old', term: before + 5 }));
  tr.handler!.onMessage(msg({ type: MessageType.Vote, from: 'a', to: 'b-old', term: before + 5, logTerm: 1, index: 99 }));
  await new Promise((r) => setTimeout(r, 50));
  t.is(node.term(), before, 'no term taken from a message for someone else');
  t.deepEqual(tr.sent.filter((m) => m.to === 'a'), [], 'nothing answered');
  // The same heartbeat addressed to this member is taken.
  tr.handler!.onMessage(msg({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: before + 5 }));
  await waitFor(() => node.term() === before + 5, 'the term of a message for this member');
  t.pass();
});
