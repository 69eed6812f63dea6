/**
 * An in-memory network for Raft members: {@link FakeTransport} implements `@shoal/replication`'s
 * `Transport` the way `GrpcTransport` behaves (messages go to an address, whatever member listens
 * there gets them; a refusal as a removed member comes back to the sender; a snapshot's outcome is
 * reported), and {@link FakeNetwork} decides, per message, whether and when it arrives — on the
 * injected clock, so a run is repeatable.
 *
 * Connectivity is between hosts (cluster nodes), not Raft members: a partition cuts every link of
 * a node (Raft, and in the harness the dispatcher and control calls too, which ask
 * {@link FakeNetwork.reachable}).
 */
import { MessageType, type Message, type NodeId } from '@shoal/raft';
import type { Transport, TransportHandler } from '@shoal/replication';
import type { Clock } from '@shoal/runtime';

/** What the network did with one message (see {@link FakeNetwork.tap}). */
export interface NetEvent {
  /** `deliver`: taken by the member at the address; `refused`: refused as from a removed member; `drop`: lost. */
  kind: 'deliver' | 'refused' | 'drop';
  fromHost: string;
  toHost: string;
  /** Raft ID of the member that got it (deliver/refused). */
  toMember?: NodeId;
  msg: Message;
}

/**
 * The network between the hosts of one harness. Links are up unless cut:
 * - {@link partition}`([a], [b, c])`: hosts in different groups cannot reach each other; hosts in
 *   no group still reach everyone (the workers of a manager partition, unless named);
 * - {@link isolate}: a host reaches no one;
 * - {@link cut}: one link, one way or both;
 * - {@link heal}: every link up again (delays and the drop rate stay).
 * Messages take {@link delay} ms (default 0: the next step of the clock) and a message already on
 * its way is lost if its link is cut before it arrives.
 */
export class FakeNetwork {
  private readonly endpoints = new Map<string, FakeTransport>();
  private groups: string[][] | undefined;
  private readonly isolated = new Set<string>();
  private readonly cuts = new Set<string>();
  private readonly delays = new Map<string, number>();
  private dropRate = 0;
  /** Counts of messages sent, delivered (incl. refused) and lost. */
  readonly stats = { sent: 0, delivered: 0, dropped: 0 };
  /** Called for every message once its fate is known (the membership checker listens here). */
  tap: ((ev: NetEvent) => void) | undefined;

  /**
   * @param clock times deliveries.
   * @param random source of the random drops (see {@link setDropRate}); default: none are random.
   */
  constructor(readonly clock: Clock, private readonly random: () => number = () => 1) {}

  /**
   * The transport of Raft member `id` on host `host`, listening at `addr` (`host:port`). A
   * transport at the same address is replaced (the member that listened there stopped).
   */
  transport(o: { id: NodeId; host: string; addr: string }): FakeTransport {
    const t = new FakeTransport(this, o.id, o.host, o.addr);
    this.endpoints.set(o.addr, t);
    return t;
  }

  /** True when host `from` can reach host `to` now. */
  reachable(from: string, to: string): boolean {
    if (from === to) return true;
    if (this.isolated.has(from) || this.isolated.has(to)) return false;
    if (this.cuts.has(`${from}>${to}`)) return false;
    if (this.groups) {
      const gf = this.groups.findIndex((g) => g.includes(from));
      const gt = this.groups.findIndex((g) => g.includes(to));
      if (gf >= 0 && gt >= 0 && gf !== gt) return false;
    }
    return true;
  }

  /** Splits the named hosts into groups that cannot reach each other (replaces an earlier partition). */
  partition(...groups: string[][]): void {
    this.groups = groups.map((g) => [...g]);
  }

  /** Cuts every link of `host`. */
  isolate(host: string): void {
    this.isolated.add(host);
  }

  /** Undoes {@link isolate} (other cuts stay). */
  unisolate(host: string): void {
    this.isolated.delete(host);
  }

  /** Cuts the link from `from` to `to` (and back, unless `oneWay`). */
  cut(from: string, to: string, oneWay = false): void {
    this.cuts.add(`${from}>${to}`);
    if (!oneWay) this.cuts.add(`${to}>${from}`);
  }

  /** Every link up again. */
  heal(): void {
    this.groups = undefined;
    this.isolated.clear();
    this.cuts.clear();
  }

  /** Messages from `from` to `to` (default: every link) take `ms` ms. */
  delay(ms: number, from = '*', to = '*'): void {
    this.delays.set(`${from}>${to}`, Math.max(0, ms));
  }

  /** Each message is lost with probability `p` (0..1), drawn from the network's seeded `random`. */
  setDropRate(p: number): void {
    this.dropRate = Math.min(1, Math.max(0, p));
  }

  /** A description of the links that are cut (`nodes` prints it). */
  describe(): string {
    const parts: string[] = [];
    if (this.groups) parts.push(`partition ${this.groups.map((g) => g.join(' ')).join(' | ')}`);
    if (this.isolated.size) parts.push(`isolated ${[...this.isolated].sort().join(' ')}`);
    if (this.cuts.size) parts.push(`cut ${[...this.cuts].sort().join(' ')}`);
    return parts.join('; ') || 'connected';
  }

  private delayOf(from: string, to: string): number {
    return this.delays.get(`${from}>${to}`) ?? this.delays.get(`${from}>*`) ?? this.delays.get(`*>${to}`) ?? this.delays.get('*>*') ?? 0;
  }

  private hostAt(addr: string): string | undefined {
    return this.endpoints.get(addr)?.host;
  }

  /** @internal */
  unregister(t: FakeTransport): void {
    if (this.endpoints.get(t.addr) === t) this.endpoints.delete(t.addr);
  }

  /** @internal Called by {@link FakeTransport.send}. */
  send(from: FakeTransport, msgs: readonly Message[]): void {
    for (const m of msgs) {
      const addr = from.peerAddr(m.to);
      if (!addr) {
        this.later(from, (h) => h.onUnreachable(m.to));
        continue;
      }
      this.stats.sent++;
      const toHost = this.hostAt(addr) ?? addr;
      if (!this.reachable(from.host, toHost) || (this.dropRate > 0 && this.random() < this.dropRate)) {
        this.lost(from, toHost, m);
        continue;
      }
      const copy = structuredClone(m);
      this.clock.setTimeout(() => this.deliver(from, addr, copy), this.delayOf(from.host, toHost));
    }
  }

  private deliver(from: FakeTransport, addr: string, m: Message): void {
    const to = this.endpoints.get(addr);
    if (!to || to.closed || !this.reachable(from.host, to.host)) {
      this.lost(from, to?.host ?? addr, m);
      return;
    }
    this.stats.delivered++;
    to.learn(from.id, from.addr);
    const verdict = to.receive(m);
    this.tap?.({ kind: verdict === 'removed' ? 'refused' : 'deliver', fromHost: from.host, toHost: to.host, toMember: to.id, msg: m });
    if (verdict === 'removed') this.later(from, (h) => h.onRemoved?.(m.to));
    if (m.type === MessageType.Snap) this.later(from, (h) => h.onSnapshotStatus(m.to, verdict !== 'removed'));
  }

  private lost(from: FakeTransport, toHost: string, m: Message): void {
    this.stats.dropped++;
    this.tap?.({ kind: 'drop', fromHost: from.host, toHost, msg: m });
    // As a broken gRPC stream does: the sender hears that the peer is unreachable.
    if (m.type === MessageType.Snap) this.later(from, (h) => h.onSnapshotStatus(m.to, false));
    else this.later(from, (h) => h.onUnreachable(m.to));
  }

  /** Calls back into the sender on a later step of the clock (never re-entrantly from `send`). */
  private later(t: FakeTransport, fn: (h: TransportHandler) => void): void {
    this.clock.setTimeout(() => {
      if (!t.closed && t.handler) fn(t.handler);
    }, 0);
  }
}

/**
 * A Raft member's end of the {@link FakeNetwork}: `Transport` as `RaftNode` uses it. Like
 * `GrpcTransport`, it hands every message that reaches its address to its handler (whatever Raft
 * ID it was addressed to) and learns a sender's address from what it receives.
 */
export class FakeTransport implements Transport {
  /** @internal */
  handler: TransportHandler | undefined;
  private readonly peers = new Map<NodeId, string>();
  /** @internal */
  closed = false;

  /** @internal Use {@link FakeNetwork.transport}. */
  constructor(
    private readonly net: FakeNetwork,
    readonly id: NodeId,
    /** The cluster node it runs on. */
    readonly host: string,
    readonly addr: string,
  ) {}

  address(): string {
    return this.addr;
  }

  setHandler(h: TransportHandler): void {
    this.handler = h;
  }

  addPeer(id: NodeId, addr: string): void {
    if (id === this.id || !addr) return;
    this.peers.set(id, addr);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  peerAddr(id: NodeId): string | undefined {
    return id === this.id ? this.addr : this.peers.get(id);
  }

  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    this.net.send(this, msgs);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.net.unregister(this);
  }

  /** @internal */
  learn(id: NodeId, addr: string): void {
    if (id !== this.id && addr && this.peers.get(id) !== addr) this.peers.set(id, addr);
  }

  /** @internal */
  receive(m: Message): void | 'removed' {
    return this.handler?.onMessage(m);
  }
}
