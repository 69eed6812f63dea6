import { MemoryStore, type Proposer } from './store.js';

/**
 * A proposer that "commits" every proposal at once, in process, with no durability and no Raft.
 * For unit tests of manager components only — production stores always propose through
 * `@shoal/replication`'s RaftNode.
 */
export class LoopbackProposer implements Proposer {
  private index = 0;
  constructor(private readonly store: MemoryStore) {}
  async propose(data: Uint8Array): Promise<number> {
    await Promise.resolve();
    const index = ++this.index;
    this.store.apply({ index, data });
    return index;
  }
}

/** A store wired to a {@link LoopbackProposer} (unit tests only). */
export function newTestStore(): MemoryStore {
  const s = new MemoryStore();
  s.setProposer(new LoopbackProposer(s));
  return s;
}
