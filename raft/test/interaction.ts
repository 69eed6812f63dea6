/**
 * Data-driven interaction scripts (after etcd-io/raft's `rafttest` InteractionEnv): a
 * `testdata/*.txt` file is a sequence of stanzas
 *
 *     command arg arg key=value
 *     ----
 *     expected output
 *
 * separated by blank lines; `#` lines are comments. The file format is the one shared by every
 * data-driven test (`@shoal/testkit/datadriven`); the runner executes each command against a small
 * in-memory cluster and compares the output. `SHOAL_REWRITE=1` rewrites the expected outputs —
 * commit the result only if you understand the diff.
 *
 * Commands:
 *   add-nodes <n> [prevote=false] [checkquorum=false] [election=<ticks>] [lease=true]
 *   campaign <id>              propose <id> <text>           propose-conf-change <id> <type> <node>
 *   tick <id> [count]          process-ready <id>             deliver-msgs <id> [drop=true]
 *   stabilize                  isolate <id>                   heal
 *   transfer-leadership <from> <to>                          read-index <id> <ctx>
 *   status <id>                raft-log <id>                  report-unreachable <id> <peer>
 *   snapshot <id>              report-snapshot <id> <peer> [ok=false]
 */
import {
  EntryType,
  MemoryStorage,
  MessageType,
  RawNode,
  bootstrap,
  decodeConfChange,
  mulberry32,
  type ConfChangeType,
  type ConfState,
  type Entry,
  type Message,
  type Ready,
} from '../src/index.js';

const dec = new TextDecoder();
const enc = new TextEncoder();

function fmtEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    return `${e.term}/${e.index} ${cc.type} ${cc.nodeId}`;
  }
  return e.data.byteLength === 0 ? `${e.term}/${e.index} (empty)` : `${e.term}/${e.index} ${JSON.stringify(dec.decode(e.data))}`;
}

export function fmtMsg(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} term=${m.term}`];
  switch (m.type) {
    case MessageType.App:
      parts.push(`log=${m.logTerm}/${m.index}`, `commit=${m.commit}`);
      if (m.entries.length > 0) parts.push(`entries=[${m.entries.map(fmtEntry).join(', ')}]`);
      break;
    case MessageType.AppResp:
      parts.push(m.reject ? `rejected ${m.index} hint=${m.logTerm}/${m.rejectHint}` : `index=${m.index}`);
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      parts.push(`last=${m.logTerm}/${m.index}`);
      if (m.context) parts.push('(transfer)');
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      parts.push(m.reject ? 'rejected' : 'granted');
      break;
    case MessageType.Heartbeat:
      parts.push(`commit=${m.commit}`);
      if (m.context?.byteLength) parts.push(`ctx=${dec.decode(m.context)}`);
      break;
    case MessageType.HeartbeatResp:
      if (m.context?.byteLength) parts.push(`ctx=${dec.decode(m.context)}`);
      break;
    case MessageType.Snap:
      parts.push(`snapshot=${m.snapshot!.metadata.term}/${m.snapshot!.metadata.index}`);
      break;
    case MessageType.ReadIndex:
    case MessageType.ReadIndexResp:
      parts.push(`index=${m.index}`, `ctx=${dec.decode(m.context ?? new Uint8Array())}`);
      break;
    case MessageType.Prop:
      parts.push(`entries=[${m.entries.map(fmtEntry).join(', ')}]`);
      break;
    default:
      break;
  }
  return parts.join(' ');
}

interface EnvNode {
  id: string;
  node: RawNode;
  storage: MemoryStorage;
  applied: number;
  confState: ConfState;
}

/** The cluster a script drives. Messages wait in per-recipient inboxes until delivered. */
export class InteractionEnv {
  nodes = new Map<string, EnvNode>();
  inbox = new Map<string, Message[]>();
  isolated = new Set<string>();

  handle(command: string): string {
    const [cmd, ...rest] = command.trim().split(/\s+/);
    const args = rest.filter((a) => !a.includes('='));
    const kv = Object.fromEntries(rest.filter((a) => a.includes('=')).map((a) => a.split('=') as [string, string]));
    try {
      return this.run(cmd!, args, kv);
    } catch (e) {
      return `error: ${(e as Error).message}`;
    }
  }

  private get(id: string | undefined): EnvNode {
    const n = id === undefined ? undefined : this.nodes.get(id);
    if (!n) throw new Error(`unknown node ${id}`);
    return n;
  }

  private run(cmd: string, args: string[], kv: Record<string, string>): string {
    switch (cmd) {
      case 'add-nodes': {
        const n = Number(args[0]);
        const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
        for (const id of ids) {
          const storage = new MemoryStorage();
          bootstrap(storage, ids);
          const node = new RawNode(
            {
              id,
              preVote: kv.prevote !== 'false',
              checkQuorum: kv.checkquorum !== 'false',
              electionTick: Number(kv.election ?? 10),
              readOnlyOption: kv.lease === 'true' ? 'lease' : 'safe',
              random: mulberry32(Number(id.slice(1))),
            },
            storage,
          );
          this.nodes.set(id, { id, node, storage, applied: 0, confState: { voters: [], learners: [] } });
          this.inbox.set(id, []);
        }
        // Apply the bootstrap conf changes so the nodes know their peers.
        const out: string[] = [];
        for (const id of ids) this.processReady(this.get(id), out, true);
        return 'ok';
      }
      case 'campaign':
        this.get(args[0]).node.campaign();
        return 'ok';
      case 'propose':
        this.get(args[0]).node.propose(enc.encode(args.slice(1).join(' ')));
        return 'ok';
      case 'propose-conf-change':
        this.get(args[0]).node.proposeConfChange({ type: args[1] as ConfChangeType, nodeId: args[2]! });
        return 'ok';
      case 'tick': {
        const n = this.get(args[0]);
        const count = Number(args[1] ?? 1);
        for (let i = 0; i < count; i++) n.node.tick();
        return 'ok';
      }
      case 'process-ready': {
        const out: string[] = [];
        this.processReady(this.get(args[0]), out, false);
        return out.join('\n') || '(none)';
      }
      case 'deliver-msgs': {
        const out: string[] = [];
        this.deliver(this.get(args[0]), out, kv.drop === 'true');
        return out.join('\n') || '(none)';
      }
      case 'stabilize': {
        const out: string[] = [];
        for (let round = 0; round < 100; round++) {
          let progress = false;
          for (const n of this.nodes.values()) {
            if (n.node.hasReady()) {
              this.processReady(n, out, false);
              progress = true;
            }
          }
          for (const n of this.nodes.values()) {
            if ((this.inbox.get(n.id) ?? []).length > 0) {
              this.deliver(n, out, false);
              progress = true;
            }
          }
          if (!progress) break;
        }
        return out.join('\n') || '(none)';
      }
      case 'isolate':
        this.isolated.add(this.get(args[0]).id);
        return 'ok';
      case 'heal':
        this.isolated.clear();
        return 'ok';
      case 'transfer-leadership':
        this.get(args[0]).node.transferLeader(this.get(args[1]).id);
        return 'ok';
      case 'read-index':
        this.get(args[0]).node.readIndex(enc.encode(args[1] ?? ''));
        return 'ok';
      case 'snapshot': {
        // Snapshot the (empty) state machine at the applied index and compact the log to it.
        const n = this.get(args[0]);
        n.storage.createSnapshot(n.applied, n.confState, new Uint8Array());
        n.storage.compact(n.applied);
        return `snapshot at ${n.applied}; log starts at ${n.storage.firstIndex()}`;
      }
      case 'report-snapshot':
        this.get(args[0]).node.reportSnapshot(this.get(args[1]).id, kv.ok !== 'false');
        return 'ok';
      case 'report-unreachable':
        this.get(args[0]).node.reportUnreachable(this.get(args[1]).id);
        return 'ok';
      case 'status': {
        const st = this.get(args[0]).node.status();
        const lines = [`${st.id} ${st.role} term=${st.term} vote=${st.vote || '-'} lead=${st.lead || '-'} commit=${st.commit} applied=${st.applied} last=${st.lastIndex}`];
        for (const [id, p] of Object.entries(st.progress).sort()) {
          lines.push(`  ${id}: ${p.state} match=${p.match} next=${p.next}${p.isLearner ? ' learner' : ''}${p.inflight ? ` inflight=${p.inflight}` : ''}`);
        }
        return lines.join('\n');
      }
      case 'raft-log': {
        const n = this.get(args[0]);
        const lo = n.storage.firstIndex();
        const hi = n.storage.lastIndex();
        if (hi < lo) return '(empty)';
        return n.storage.entries(lo, hi + 1, Infinity).map(fmtEntry).join('\n');
      }
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  }

  private processReady(n: EnvNode, out: string[], quiet: boolean): void {
    while (n.node.hasReady()) {
      const rd: Ready = n.node.ready();
      if (!quiet) {
        out.push(`> ${n.id} handling Ready`);
        if (rd.softState) out.push(`  ${rd.softState.role}${rd.softState.lead ? ` lead=${rd.softState.lead}` : ''}`);
        if (rd.hardState) out.push(`  HardState term=${rd.hardState.term} vote=${rd.hardState.vote || '-'} commit=${rd.hardState.commit}`);
        if (rd.entries.length > 0) out.push(`  Entries: ${rd.entries.map(fmtEntry).join(', ')}`);
        if (rd.snapshot) out.push(`  Snapshot ${rd.snapshot.metadata.term}/${rd.snapshot.metadata.index}`);
        if (rd.committedEntries.length > 0) out.push(`  Committed: ${rd.committedEntries.map(fmtEntry).join(', ')}`);
        for (const rs of rd.readStates) out.push(`  ReadState index=${rs.index} ctx=${dec.decode(rs.requestCtx)}`);
        for (const m of rd.messages) out.push(`  ${fmtMsg(m)}`);
      }
      if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) this.inbox.get(m.to)?.push(m);
      if (rd.snapshot) {
        n.applied = rd.snapshot.metadata.index;
        n.confState = rd.snapshot.metadata.confState;
      }
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) n.confState = n.node.applyConfChange(decodeConfChange(e.data));
        n.applied = e.index;
      }
      n.node.advance();
    }
  }

  private deliver(n: EnvNode, out: string[], drop: boolean): void {
    const msgs = this.inbox.get(n.id) ?? [];
    this.inbox.set(n.id, []);
    if (msgs.length > 0) out.push(`> ${n.id} receiving messages`);
    for (const m of msgs) {
      if (drop || this.isolated.has(m.from) || this.isolated.has(m.to)) {
        out.push(`  dropped: ${fmtMsg(m)}`);
        continue;
      }
      out.push(`  ${fmtMsg(m)}`);
      n.node.step({ ...m, entries: m.entries.slice() });
    }
  }
}
