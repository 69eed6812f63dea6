/**
 * The Raft group's membership as the host knows it: the configuration (voters and learners), each
 * member's address and the ID of the cluster node it belongs to, and the Raft IDs removed from the
 * group (SwarmKit `manager/state/raft/membership`; etcd's `removed` set in `rafthttp`).
 *
 * Rules this module keeps:
 * - A Raft ID names one membership of one node. A node that leaves the group and comes back (a
 *   demotion followed by a promotion) joins under a fresh Raft ID; an ID is never reused after its
 *   removal. That is what makes a re-promoted node a working voter: replaying the old log cannot
 *   remove it again (the entry that removed it names its old ID).
 * - Removed IDs are remembered (in the log, and in every snapshot's header), so messages from a
 *   removed member are refused and the member is told so, whichever member it reaches.
 * - The configuration is changed only by applying committed conf-change entries, with the core's
 *   own `applyToConfig` (one server at a time, Raft thesis §4.1).
 */
import { applyToConfig, decodeConfChange, type ConfChange, type ConfState, type NodeId } from '@shoal/raft';

/** One member: its Raft ID, the cluster node it belongs to, its address, and whether it votes. */
export interface Member {
  /** Raft ID (unique per membership, never reused). */
  id: NodeId;
  /** The cluster node (`Node.id`) this member runs on; '' for members added by older versions. */
  nodeId: string;
  /** `host:port` of its Raft transport; '' if unknown. */
  addr: string;
  voter: boolean;
}

/**
 * Conf-change `context` (JSON): the member's address and node ID, and the proposer's request tag
 * (`instance:seq`, to settle the proposer's promise when the change applies).
 */
export interface ConfContext {
  addr?: string;
  nodeId?: string;
  req?: string;
}

export function parseConfContext(ctx: string | undefined): ConfContext {
  if (!ctx) return {};
  try {
    const v = JSON.parse(ctx) as unknown;
    return typeof v === 'object' && v !== null ? (v as ConfContext) : {};
  } catch {
    return { addr: ctx };
  }
}

/** What a snapshot carries besides the state machine: the membership at its index. */
export interface MembershipHeader {
  /** Raft ID → address. */
  peers: Record<NodeId, string>;
  /** Raft ID → cluster node ID. */
  nodes: Record<NodeId, string>;
  /** Removed Raft IDs. */
  removed: NodeId[];
}

export class Membership {
  private confState: ConfState = { voters: [], learners: [] };
  private readonly addrs = new Map<NodeId, string>();
  private readonly nodeIds = new Map<NodeId, string>();
  private readonly removedIds = new Set<NodeId>();

  /** The configuration (copies). */
  conf(): ConfState {
    return { voters: [...this.confState.voters], learners: [...this.confState.learners] };
  }

  /** Voters and learners, with their node IDs and addresses. */
  members(addrOf: (id: NodeId) => string | undefined = (id) => this.addrs.get(id)): Member[] {
    const m = (id: NodeId, voter: boolean): Member => ({ id, nodeId: this.nodeIds.get(id) ?? '', addr: addrOf(id) ?? '', voter });
    return [...this.confState.voters.map((id) => m(id, true)), ...this.confState.learners.map((id) => m(id, false))];
  }

  has(id: NodeId): boolean {
    return this.confState.voters.includes(id) || this.confState.learners.includes(id);
  }

  isVoter(id: NodeId): boolean {
    return this.confState.voters.includes(id);
  }

  /** True once the configuration has at least one member (a node that joins starts with none). */
  known(): boolean {
    return this.confState.voters.length + this.confState.learners.length > 0;
  }

  isRemoved(id: NodeId): boolean {
    return this.removedIds.has(id);
  }

  removed(): NodeId[] {
    return [...this.removedIds];
  }

  addr(id: NodeId): string | undefined {
    return this.addrs.get(id);
  }

  /** The member (current) that runs on cluster node `nodeId`, if any. */
  memberOfNode(nodeId: string): Member | undefined {
    return this.members().find((m) => m.nodeId === nodeId);
  }

  /** Records an address learned outside the log (a join hint, the transport). */
  setAddr(id: NodeId, addr: string): void {
    if (addr) this.addrs.set(id, addr);
  }

  /**
   * Applies a committed conf change (after the core accepted it with `applyConfChange`, which
   * returned `conf`). @returns the member's context (address, node, request tag).
   */
  apply(cc: ConfChange, conf: ConfState): ConfContext {
    const ctx = parseConfContext(cc.context);
    this.confState = { voters: [...conf.voters], learners: [...conf.learners] };
    if (cc.type === 'removeNode') {
      this.removedIds.add(cc.nodeId);
      this.addrs.delete(cc.nodeId);
      this.nodeIds.delete(cc.nodeId);
    } else {
      if (ctx.addr) this.addrs.set(cc.nodeId, ctx.addr);
      if (ctx.nodeId) this.nodeIds.set(cc.nodeId, ctx.nodeId);
    }
    return ctx;
  }

  /** Replaces everything with a snapshot's configuration and header. */
  restore(conf: ConfState, h: MembershipHeader): void {
    this.confState = { voters: [...conf.voters], learners: [...conf.learners] };
    this.addrs.clear();
    this.nodeIds.clear();
    this.removedIds.clear();
    for (const [id, a] of Object.entries(h.peers)) this.addrs.set(id, a);
    for (const [id, n] of Object.entries(h.nodes)) this.nodeIds.set(id, n);
    for (const id of h.removed) this.removedIds.add(id);
  }

  /** The header a snapshot taken now carries (`self` = this member's own address, if known). */
  header(selfId: NodeId, selfAddr: string | undefined, addrOf: (id: NodeId) => string | undefined): MembershipHeader {
    const peers: Record<NodeId, string> = {};
    const nodes: Record<NodeId, string> = {};
    for (const id of [...this.confState.voters, ...this.confState.learners]) {
      const a = addrOf(id) ?? this.addrs.get(id);
      if (a) peers[id] = a;
      const n = this.nodeIds.get(id);
      if (n) nodes[id] = n;
    }
    if (selfAddr) peers[selfId] = selfAddr;
    return { peers, nodes, removed: [...this.removedIds] };
  }
}

/**
 * The conf changes that turn the configuration `conf`, followed by the committed conf-change entries
 * `committed` (raw entry data), into a single-voter configuration of `self` (`swarm init
 * --force-new-cluster`): every other member is removed (and so remembered as removed), `self` is
 * added if it was not a voter. Uses the core's `applyToConfig`, so the result is the configuration
 * the core will compute when these entries apply.
 */
export function forceNewClusterChanges(conf: ConfState, committed: Uint8Array[], self: { id: NodeId; addr: string; nodeId: string }): ConfChange[] {
  let cfg = { voters: new Set(conf.voters), learners: new Set(conf.learners) };
  for (const data of committed) {
    const cc = decodeConfChange(data);
    // A committed change that would leave no voter was refused by the core when it applied; skip it here too.
    try {
      cfg = applyToConfig(cfg, cc);
    } catch {
      /* refused by the core too */
    }
  }
  const changes: ConfChange[] = [];
  if (!cfg.voters.has(self.id)) changes.push({ type: 'addNode', nodeId: self.id, context: JSON.stringify({ addr: self.addr, nodeId: self.nodeId }) });
  for (const id of [...cfg.voters, ...cfg.learners]) if (id !== self.id) changes.push({ type: 'removeNode', nodeId: id });
  return changes;
}
