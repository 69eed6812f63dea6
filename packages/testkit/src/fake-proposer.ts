import { MemoryStore, type Proposer } from '@shoal/store';

/**
 * A {@link Proposer} that "commits" every proposal at once, in process, with no durability and no
 * Raft: the next microtask applies it to the store with the next log index (1, 2, …). For unit
 * tests of manager components — production stores always propose through `@shoal/replication`'s
 * RaftNode.
 */
export class FakeProposer implements Proposer {
  private index = 0;
  constructor(private readonly store: MemoryStore) {}
  async propose(data: Uint8Array): Promise<number> {
    await Promise.resolve();
    const index = ++this.index;
    this.store.apply({ index, data });
    return index;
  }
}

/** A fresh {@link MemoryStore} wired to a {@link FakeProposer}. */
export function newTestStore(): MemoryStore {
  const s = new MemoryStore();
  s.setProposer(new FakeProposer(s));
  return s;
}
