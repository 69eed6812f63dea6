/**
 * Random key-value clients against a simulated cluster, recording a history for the
 * linearizability checker. Writes (put/append) and log reads go through the log; ReadIndex reads
 * are served from the local state machine of the node the client talks to, once that node has
 * applied through the read index. The `local` read mode reads the local state machine with no
 * coordination at all — deliberately unsafe, used as a negative control.
 */
import { type Config, NotLeaderError, ProposalDroppedError } from '../src/index.js';
import { Cluster, randInt, shuffle, type KvCommand } from './harness.js';
import type { KvInput, Operation } from './linearizability.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export type ReadMode = 'readIndex' | 'log' | 'local';

interface Pending {
  opIndex: number;
  kind: 'write' | 'logRead' | 'readIndex';
  node: string;
  /** The SimNode incarnation the request went to (a restart loses the request). */
  incarnation: object;
  index?: number;
  data?: string;
  ctx?: string;
  readIndex?: number;
  deadline: number;
}

export interface KvRunOptions {
  seed: number;
  nodes?: number;
  clients?: number;
  keys?: number;
  /** Client operations to attempt in total. */
  ops?: number;
  readMode?: ReadMode;
  unreliable?: boolean;
  /** Inject partitions and crashes. */
  faults?: boolean;
  snapshotEvery?: number;
  snapshotKeep?: number;
  config?: Partial<Config>;
  persistDelay?: number;
  staggerTicks?: boolean;
}

export interface KvRun {
  history: Operation<KvInput, string>[];
  cluster: Cluster;
  completed: number;
  unknown: number;
}

/** Runs random clients; returns the history (with a logical clock that orders every event). */
export function runKvClients(o: KvRunOptions): KvRun {
  const c = new Cluster({ n: o.nodes ?? 5, seed: o.seed, snapshotEvery: o.snapshotEvery ?? 0, snapshotKeep: o.snapshotKeep ?? 0, config: o.config ?? {}, persistDelay: o.persistDelay ?? 0, staggerTicks: o.staggerTicks ?? false });
  c.unreliable = o.unreliable ?? false;
  const clients = o.clients ?? 4;
  const keys = o.keys ?? 3;
  const total = o.ops ?? 200;
  const readMode = o.readMode ?? 'readIndex';
  const history: Operation<KvInput, string>[] = [];
  let clock = 0;
  let issued = 0;
  let seq = 0;
  let completed = 0;
  let unknown = 0;
  const busy: (Pending | undefined)[] = new Array(clients).fill(undefined);
  /** Indexes of history entries for operations that certainly had no effect. */
  const dropped = new Set<number>();
  /** Each client's current server guess. */
  const server = Array.from({ length: clients }, (_, i) => c.ids[i % c.ids.length]!);
  const timeout = 20 * c.stepsPerTick;
  c.checkOneLeader();

  const finish = (cl: number, output: string | undefined, happened: 'yes' | 'maybe' | 'no') => {
    const p = busy[cl]!;
    busy[cl] = undefined;
    const op = history[p.opIndex]!;
    if (happened === 'no') {
      // Definitely did not take effect (or a read that never returned): drop it.
      dropped.add(p.opIndex);
      return;
    }
    if (happened === 'maybe') {
      op.ret = Infinity;
      op.output = undefined;
      unknown++;
      return;
    }
    op.ret = ++clock;
    op.output = output;
    completed++;
  };

  const tryIssue = (cl: number) => {
    if (issued >= total) return;
    const r = c.rng();
    const key = `k${randInt(c.rng, keys)}`;
    let input: KvInput;
    if (r < 0.4) input = { op: 'get', key };
    else if (r < 0.7) input = { op: 'put', key, value: `${cl}.${seq++}` };
    else input = { op: 'append', key, value: `${cl}.${seq++};` };
    // ReadIndex and local reads may go to any node (followers included); writes and log reads
    // chase the leader.
    const anyNode = input.op === 'get' && readMode !== 'log';
    const id = anyNode ? c.ids[randInt(c.rng, c.ids.length)]! : server[cl]!;
    const sn = c.live.get(id);
    if (!sn || !c.isConnected(id)) {
      if (!anyNode) server[cl] = c.ids[randInt(c.rng, c.ids.length)]!;
      return;
    }
    const opId = `c${cl}-${seq++}`;
    const call = ++clock;
    const opIndex = history.length;
    if (input.op === 'get' && readMode === 'local') {
      history.push({ clientId: cl, input, output: sn.sm.get(key) ?? '', call, ret: ++clock });
      issued++;
      completed++;
      return;
    }
    if (input.op === 'get' && readMode === 'readIndex') {
      try {
        sn.node.readIndex(enc.encode(opId));
      } catch (e) {
        if (e instanceof ProposalDroppedError) {
          server[cl] = c.ids[randInt(c.rng, c.ids.length)]!;
          return;
        }
        throw e;
      }
      history.push({ clientId: cl, input, output: undefined, call, ret: Infinity });
      busy[cl] = { opIndex, kind: 'readIndex', node: id, incarnation: sn, ctx: opId, deadline: c.now + timeout };
      issued++;
      c.process(sn);
      return;
    }
    // Writes and log reads: propose at the leader (clients find it by trying servers).
    const cmd: KvCommand = { op: input.op, key, id: opId, ...(input.value !== undefined ? { value: input.value } : {}) };
    const data = JSON.stringify(cmd);
    if (sn.node.raft.state !== 'leader') {
      const lead = sn.node.raft.lead;
      server[cl] = lead && c.ids.includes(lead) ? lead : c.ids[randInt(c.rng, c.ids.length)]!;
      return;
    }
    try {
      sn.node.propose(enc.encode(data));
    } catch (e) {
      if (e instanceof ProposalDroppedError || e instanceof NotLeaderError) return;
      throw e;
    }
    const index = sn.node.raft.raftLog.lastIndex();
    history.push({ clientId: cl, input, output: undefined, call, ret: Infinity });
    busy[cl] = {
      opIndex,
      kind: input.op === 'get' ? 'logRead' : 'write',
      node: id,
      incarnation: sn,
      index,
      data,
      deadline: c.now + timeout,
    };
    issued++;
    c.process(sn);
  };

  const poll = (cl: number) => {
    const p = busy[cl]!;
    const sn = c.live.get(p.node);
    const lost = sn !== p.incarnation;
    if (p.kind === 'readIndex') {
      if (lost || c.now > p.deadline) return finish(cl, undefined, 'no');
      const rs = sn!.readStates.find((x) => dec.decode(x.requestCtx) === p.ctx);
      if (rs && sn!.applied >= rs.index) {
        const key = history[p.opIndex]!.input.key;
        finish(cl, sn!.sm.get(key) ?? '', 'yes');
      }
      return;
    }
    const outcome = c.committedAt.get(p.index!);
    if (outcome !== undefined && outcome !== p.data) {
      // Another entry committed at our index: ours never will (it was appended only there).
      return finish(cl, undefined, 'no');
    }
    if (!lost && outcome === p.data && sn!.outputs.has(p.index!)) {
      return finish(cl, sn!.outputs.get(p.index!)!, 'yes');
    }
    if (lost || c.now > p.deadline) {
      // Crash or timeout: the write may still commit later. A log read has no effect. Try
      // another server next time (this one may be a deposed leader).
      server[cl] = c.ids[randInt(c.rng, c.ids.length)]!;
      return finish(cl, undefined, p.kind === 'write' ? 'maybe' : 'no');
    }
  };

  const faults = o.faults ?? true;
  let guard = 0;
  while ((issued < total || busy.some((b) => b !== undefined)) && guard++ < 200_000) {
    for (let cl = 0; cl < clients; cl++) {
      if (busy[cl]) poll(cl);
      if (!busy[cl] && c.rng() < 0.5) tryIssue(cl);
    }
    c.run(1);
    if (faults && c.rng() < 0.03) {
      const id = c.ids[randInt(c.rng, c.ids.length)]!;
      const r = c.rng();
      if (r < 0.2) {
        // Isolate the current leader (the classic stale-read setup).
        const leaders = [...c.leaders().values()].flat();
        c.heal();
        if (leaders.length > 0) c.partition([leaders[0]!], c.ids.filter((x) => x !== leaders[0]));
      } else if (r < 0.35) {
        // Partition a random minority (possibly containing the leader) from the rest.
        const shuffled = [...c.ids];
        shuffle(shuffled, c.rng);
        const k = 1 + randInt(c.rng, Math.floor((c.ids.length - 1) / 2));
        c.heal();
        c.partition(shuffled.slice(0, k), shuffled.slice(k));
      } else if (r < 0.45) {
        // Leadership transfer to a random node (it may be unreachable: then it is abandoned).
        const leaders = [...c.leaders().values()].flat();
        const l = leaders.length > 0 ? c.live.get(leaders[0]!) : undefined;
        if (l) {
          l.node.transferLeader(id);
          c.process(l);
        }
      } else if (r < 0.55) c.heal();
      else if (r < 0.7) c.crash(id);
      else c.startNode(id);
    }
    // Keep a quorum alive most of the time so clients make progress.
    let up = 0;
    for (const x of c.ids) if (c.live.has(x)) up++;
    if (up <= Math.floor(c.ids.length / 2)) for (const x of c.ids) c.startNode(x);
  }
  // Drain: heal everything and let the stragglers finish.
  c.heal();
  c.unreliable = false;
  for (const x of c.ids) c.startNode(x);
  for (let i = 0; i < 400 && busy.some((b) => b !== undefined); i++) {
    for (let cl = 0; cl < clients; cl++) if (busy[cl]) poll(cl);
    c.run(1);
  }
  for (let cl = 0; cl < clients; cl++) if (busy[cl]) finish(cl, undefined, busy[cl]!.kind === 'write' ? 'maybe' : 'no');
  return { history: history.filter((_, i) => !dropped.has(i)), cluster: c, completed, unknown };
}
