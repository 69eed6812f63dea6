/**
 * The leader's queue of ReadIndex requests (Raft thesis §6.4; etcd-io/raft `read_only.go`).
 *
 * In `safe` mode a request records the commit index at arrival, and is answered once a quorum
 * has acknowledged a heartbeat carrying its context — proving the leader was still leader when
 * the read arrived. Requests are answered in arrival order: an ack for a later request also
 * confirms every earlier one. In `lease` mode the leader answers at once, trusting its
 * check-quorum lease (and therefore bounded clock drift).
 */
import type { Message, NodeId } from './types.js';
import { bytesKey } from './util.js';

export type ReadOnlyOption = 'safe' | 'lease';

export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Set<NodeId>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  /** Queues `m` (a MsgReadIndex) to be served at commit index `index`; duplicates are ignored. */
  addRequest(index: number, m: Message): void {
    const key = bytesKey(m.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req: m, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records that `id` acknowledged the heartbeat carrying `context`; returns the acks so far. */
  recvAck(id: NodeId, context: Uint8Array | undefined): Set<NodeId> | undefined {
    const rs = this.pending.get(bytesKey(context));
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * A quorum confirmed the request with `context`: dequeue it and every request before it, and
   * return them in order.
   */
  advance(context: Uint8Array | undefined): ReadIndexStatus[] {
    const key = bytesKey(context);
    const i = this.queue.indexOf(key);
    if (i < 0) return [];
    const done = this.queue.slice(0, i + 1);
    this.queue = this.queue.slice(i + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      if (!rs) throw new Error('raft read_only: queue and pending map disagree');
      this.pending.delete(k);
      out.push(rs);
    }
    return out;
  }

  /** Context of the newest pending request (sent with heartbeats), if any. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)!.req.context;
  }

  get size(): number {
    return this.queue.length;
  }
}
