/**
 * The membership checker: watches a {@link FakeCluster} after every instant it settled and every
 * Raft message its network carried, and records a violation when
 *
 *  1. two members lead the same term (of the same cluster history — see "epochs" below);
 *  2. two members hold different entries at a committed index, or a member's configuration is not
 *     the one its committed log gives at its applied index ("the configuration each node believes
 *     is one that was committed");
 *  3. a removed Raft ID counts: a member takes a message from an ID it knows was removed, a leader
 *     tracks replication progress (its quorum) for an ID outside its configuration or removed, or a
 *     committed conf change adds back an ID removed earlier;
 *
 * and offers {@link MembershipChecker.currentConfig} for the liveness check of the randomized
 * test ("writable whenever a majority of the current configuration is up and connected").
 *
 * Epochs: `swarm init --force-new-cluster` starts a new history that shares the old one's committed
 * prefix (up to the forced member's commit index) and goes on alone; members that join the group
 * take the history of the leader that added them. Properties 1–2 hold within an epoch.
 */
import { createHash } from 'node:crypto';
import { EntryType, MessageType, applyToConfig, decodeConfChange, type ConfChange, type ConfState, type NodeId } from '@shoal/raft';
import type { Manager } from '@shoal/manager';
import type { FakeCluster } from './cluster.js';
import type { FakeHost } from './host.js';
import type { NetEvent } from './fake-network.js';

interface Epoch {
  id: number;
  /** index → signature (`term:type:digest`) of the committed entry, and who reported it first. */
  committed: Map<number, { sig: string; by: NodeId }>;
  /** Committed conf changes by index. */
  confs: Map<number, ConfChange>;
  /** term → leader. */
  leaders: Map<number, NodeId>;
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();
const sigOf = (ent: { term: number; type: unknown; data: Uint8Array }): string =>
  `${ent.term}:${String(ent.type)}:${createHash('sha1').update(ent.data).digest('hex').slice(0, 12)}`;
const confText = (c: { voters: Iterable<string>; learners: Iterable<string> }): string =>
  `voters [${sorted(c.voters).join(' ')}] learners [${sorted(c.learners).join(' ')}]`;

export class MembershipChecker {
  /** What went wrong, in order (empty when every property held). */
  readonly violations: string[] = [];
  private readonly epochs: Epoch[] = [];
  private readonly epochOf = new Map<NodeId, Epoch>();
  /** Per member: highest committed index already compared. */
  private readonly checked = new Map<NodeId, number>();
  /** Per member: the removed IDs it knew at the last step (knowledge only grows). */
  private readonly knownRemoved = new Map<NodeId, Set<NodeId>>();
  private seen = new Set<string>();
  /** Steps observed, and leader terms seen (for reports). */
  steps = 0;
  /** Messages that reached a member other than the one they were addressed to (same address). */
  misaddressed = 0;

  constructor(private readonly c: FakeCluster) {
    c.hooks.managerOpened = (host, m, how) => this.opened(host, m, how);
    c.hooks.memberJoined = (_host, raftId, leader) => {
      const e = this.epochOf.get(leader.raftStatus().id);
      if (e && !this.epochOf.has(raftId)) this.epochOf.set(raftId, e);
    };
    c.hooks.afterStep = () => this.observe();
    c.net.tap = (ev) => this.onMessage(ev);
  }

  private violation(msg: string): void {
    if (this.seen.has(msg)) return;
    this.seen.add(msg);
    const t = this.c.clock.now();
    this.violations.push(`[t=${t}] ${msg}`);
  }

  private newEpoch(): Epoch {
    const e: Epoch = { id: this.epochs.length + 1, committed: new Map(), confs: new Map(), leaders: new Map() };
    this.epochs.push(e);
    return e;
  }

  private opened(host: FakeHost, m: Manager, how: { bootstrap?: unknown; forceNewCluster?: boolean; commitBefore?: number }): void {
    const id = m.raftStatus().id;
    if (how.bootstrap) {
      this.epochOf.set(id, this.newEpoch());
      return;
    }
    if (how.forceNewCluster) {
      const old = this.epochOf.get(id);
      const e = this.newEpoch();
      const upTo = how.commitBefore ?? 0;
      if (old) {
        for (const [i, v] of old.committed) if (i <= upTo) e.committed.set(i, v);
        for (const [i, v] of old.confs) if (i <= upTo) e.confs.set(i, v);
      }
      this.epochOf.set(id, e);
      this.checked.set(id, Math.min(this.checked.get(id) ?? 0, upTo));
      void host;
    }
  }

  /** Members whose history is known: `[host, manager, raftId, epoch]`. */
  private *members(): Generator<[FakeHost, Manager, NodeId, Epoch]> {
    for (const h of this.c.hosts.values()) {
      const m = h.manager;
      if (!h.up || !m) continue;
      const id = h.state?.raftId;
      const e = id ? this.epochOf.get(id) : undefined;
      if (id && e) yield [h, m, id, e];
    }
  }

  /** Checks properties 1–3 on every member now. */
  observe(): void {
    this.steps++;
    for (const [h, m, id, e] of this.members()) {
      const st = m.raftStatus();
      if (m.removed) continue;
      // 1. One leader per term.
      if (st.role === 'leader') {
        const other = e.leaders.get(st.term);
        if (other && other !== id) this.violation(`epoch ${e.id} term ${st.term}: two leaders, ${other} and ${id}`);
        else e.leaders.set(st.term, id);
      }
      // 2a. Committed entries agree — and stay: the last one checked is still there (by the Log
      // Matching property, so is everything before it).
      const disk = h.disk;
      const commit = disk.hardState.commit;
      const last = this.checked.get(id) ?? 0;
      const lastEnt = last > 0 ? disk.entry(last) : undefined;
      const lastSig = e.committed.get(last);
      if (lastEnt && lastSig && lastSig.sig !== sigOf(lastEnt)) {
        this.violation(`${id} on ${h.name}: committed entry ${last} was overwritten (${lastSig.sig} → ${sigOf(lastEnt)})`);
      }
      for (let i = last + 1; i <= commit; i++) {
        const ent = disk.entry(i);
        if (!ent) continue; // compacted into the snapshot
        const sig = sigOf(ent);
        const prev = e.committed.get(i);
        if (prev && prev.sig !== sig) this.violation(`epoch ${e.id} index ${i}: committed as ${prev.sig} on ${prev.by} but as ${sig} on ${id}`);
        else if (!prev) e.committed.set(i, { sig, by: id });
        if (ent.type === EntryType.ConfChange && !e.confs.has(i)) e.confs.set(i, decodeConfChange(ent.data));
      }
      this.checked.set(id, Math.max(this.checked.get(id) ?? 0, commit));
      // 2b. The configuration is the one the committed log gives at the applied index.
      const snap = disk.snapshot.metadata;
      if (snap.index <= st.applied) {
        let cfg = { voters: new Set(snap.confState.voters), learners: new Set(snap.confState.learners) };
        for (const ent of disk.entries) {
          if (ent.index <= snap.index || ent.index > st.applied) continue;
          if (ent.type !== EntryType.ConfChange) continue;
          try {
            cfg = applyToConfig(cfg, decodeConfChange(ent.data));
          } catch {
            /* refused by the core as well */
          }
        }
        if (confText(cfg) !== confText(st.confState)) {
          this.violation(`${id} on ${h.name} believes ${confText(st.confState)} at applied index ${st.applied}; its committed log gives ${confText(cfg)}`);
        }
      }
      // 3. Removed IDs never count.
      const removed = new Set(st.removed);
      this.knownRemoved.set(id, removed);
      for (const v of [...st.confState.voters, ...st.confState.learners]) {
        if (removed.has(v)) this.violation(`${id} on ${h.name} has removed ID ${v} in its configuration`);
      }
      if (st.role === 'leader') {
        const members = new Set([...st.confState.voters, ...st.confState.learners]);
        for (const p of Object.keys(st.raft.progress ?? {})) {
          if (!members.has(p) || removed.has(p)) this.violation(`leader ${id} (term ${st.term}) tracks ${p}, which is ${removed.has(p) ? 'removed' : 'not in its configuration'}`);
        }
      }
    }
    for (const e of this.epochs) this.checkConfHistory(e);
  }

  /** 3. A committed conf change never adds back an ID removed earlier (Raft IDs are never reused). */
  private checkConfHistory(e: Epoch): void {
    const removed = new Set<NodeId>();
    for (const i of [...e.confs.keys()].sort((a, b) => a - b)) {
      const cc = e.confs.get(i)!;
      if (cc.type === 'removeNode') removed.add(cc.nodeId);
      else if (removed.has(cc.nodeId)) this.violation(`epoch ${e.id} index ${i}: ${cc.type} ${cc.nodeId}, an ID removed earlier`);
    }
  }

  /** 3. A member never takes a message from an ID it knows was removed. */
  private onMessage(ev: NetEvent): void {
    if (ev.kind !== 'deliver' || !ev.toMember) return;
    if (ev.msg.to !== ev.toMember) this.misaddressed++;
    const known = this.knownRemoved.get(ev.toMember);
    if (known?.has(ev.msg.from)) {
      const kind = ev.msg.type === MessageType.VoteResp || ev.msg.type === MessageType.PreVoteResp ? `${ev.msg.type}${ev.msg.reject ? ' (rejected)' : ' (granted)'}` : ev.msg.type;
      this.violation(`${ev.toMember} on ${ev.toHost} took ${kind} from ${ev.msg.from}, which it knows was removed`);
    }
  }

  /**
   * The configuration last committed in the newest history (epoch) that has a member running, and
   * that epoch. Undefined before the cluster exists.
   */
  currentConfig(): { epoch: number; conf: ConfState } | undefined {
    const live = new Set<Epoch>();
    for (const [, , , e] of this.members()) live.add(e);
    const e = [...live].sort((a, b) => b.id - a.id)[0];
    if (!e) return undefined;
    let cfg = { voters: new Set<string>(), learners: new Set<string>() };
    for (const i of [...e.confs.keys()].sort((a, b) => a - b)) {
      try {
        cfg = applyToConfig(cfg, e.confs.get(i)!);
      } catch {
        /* refused */
      }
    }
    return { epoch: e.id, conf: { voters: sorted(cfg.voters), learners: sorted(cfg.learners) } };
  }

  /** The epoch of member `raftId`, if known. */
  epochOfMember(raftId: NodeId): number | undefined {
    return this.epochOf.get(raftId)?.id;
  }
}
