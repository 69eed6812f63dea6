/**
 * The randomized membership test: a seeded sequence of promotions, demotions, removals, new nodes
 * and `--force-new-cluster`, interleaved with kills, restarts, partitions and heals, on a
 * {@link FakeCluster} watched by a {@link MembershipChecker}. After every operation (and at the
 * end, once everything is healed and restarted) the cluster must be writable whenever a majority
 * of its current configuration is up and connected. A seed fully determines the run: a failing
 * seed replays exactly.
 */
import { FakeCluster } from './cluster.js';
import { MembershipChecker } from './checker.js';
import type { FakeHost } from './host.js';
import { renderHosts } from './render.js';
import { seededRandom } from './seeded.js';

export interface ChaosOptions {
  seed: number;
  /** Operations (default 25). */
  ops?: number;
  /** Managers and workers to start with (default 3 and 2). */
  managers?: number;
  workers?: number;
  /** Most nodes ever (added ones count; default 8). */
  maxHosts?: number;
  /** How long a write may take once a majority is up and connected, fake ms (default 20 s). */
  writeWithinMs?: number;
  /**
   * Raft snapshots every this many entries, keeping 20 behind (default 40: members that were away
   * or join catch up from snapshots, whose headers carry the membership and the removed IDs).
   */
  snapshotEvery?: number;
  /** Also require every node of the swarm to be Ready at the end (see README.md; default false). */
  strict?: boolean;
  /**
   * Weights of the operations, to aim a run (defaults: promote 20, demote 20, kill 12, restart 14,
   * partition 10, heal 10, add 6, remove 5, force-new-cluster 3).
   */
  weights?: Partial<Record<string, number>>;
}

export interface ChaosResult {
  seed: number;
  /** Safety violations (checker) and liveness failures, in order. */
  violations: string[];
  /** What was done, with fake times: print it to understand a failing seed. */
  trace: string[];
  /** Fake time the run covered, ms. */
  fakeMs: number;
}

type Op = { name: string; weight: number; run: () => Promise<string> };

export async function runMembershipChaos(o: ChaosOptions): Promise<ChaosResult> {
  const c = new FakeCluster({ seed: o.seed, snapshotEvery: o.snapshotEvery ?? 40, keepEntries: 20 });
  const chk = new MembershipChecker(c);
  const rnd = seededRandom(o.seed, 'chaos');
  const pick = <T>(xs: readonly T[]): T | undefined => (xs.length ? xs[Math.floor(rnd() * xs.length)] : undefined);
  const t0 = c.clock.now();
  const trace: string[] = [];
  const liveness: string[] = [];
  const note = (s: string): void => void trace.push(`${((c.clock.now() - t0) / 1000).toFixed(1)}s ${s}`);
  const retired = new Set<string>();
  let added = 0;
  const hosts = (): FakeHost[] => [...c.hosts.values()].filter((h) => !retired.has(h.name) && h.state);
  const err = (e: unknown): string => `error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
  const via = (): string | undefined => (c.leader() ?? hosts().find((h) => h.up && h.manager))?.name;

  /** Up members of the current configuration, grouped by who can reach whom; the largest group. */
  const connectedMajority = (): { group: FakeHost[]; voters: string[] } | undefined => {
    const cur = chk.currentConfig();
    if (!cur) return undefined;
    const voters = cur.conf.voters;
    const up = voters
      .map((v) => [...c.hosts.values()].find((h) => h.state?.raftId === v && h.up && h.manager && !h.manager.removed))
      .filter((h): h is FakeHost => !!h);
    let best: FakeHost[] = [];
    for (const h of up) {
      const g = up.filter((x) => c.net.reachable(h.name, x.name) && c.net.reachable(x.name, h.name));
      if (g.every((a) => g.every((b) => c.net.reachable(a.name, b.name))) && g.length > best.length) best = g;
    }
    return best.length > voters.length / 2 ? { group: best, voters } : undefined;
  };

  let writes = 0;
  const checkWritable = async (when: string): Promise<void> => {
    const maj = connectedMajority();
    if (!maj) return;
    const deadline = c.clock.now() + (o.writeWithinMs ?? 20_000);
    let last = '';
    while (c.clock.now() < deadline) {
      const on = maj.group[writes % maj.group.length]!;
      try {
        await c.call('swarm.update', { taskHistoryLimit: 5 + (writes++ % 2) }, on.name, 15_000);
        return;
      } catch (e) {
        last = err(e);
        await c.runFor(500);
      }
      const again = connectedMajority();
      if (!again) return; // the majority fell apart meanwhile (a demotion changed the configuration)
    }
    liveness.push(`[t=${c.clock.now()}] not writable ${when}: ${maj.group.map((h) => h.name).join(', ')} (a majority of voters ${maj.voters.join(' ')}) are up and connected; last error: ${last}`);
  };

  const ops: Op[] = [
    {
      name: 'promote', weight: 20,
      run: async () => {
        const h = pick(hosts().filter((x) => x.up && x.state!.role === 'worker'));
        if (!h) return 'skip: no worker';
        await c.call('node.update', { ref: h.name, role: 'manager' }, via());
        return `promote ${h.name}`;
      },
    },
    {
      name: 'demote', weight: 20,
      run: async () => {
        const h = pick(hosts().filter((x) => x.state!.role === 'manager'));
        if (!h) return 'skip: no manager';
        await c.call('node.update', { ref: h.name, role: 'worker' }, via());
        return `demote ${h.name}`;
      },
    },
    {
      name: 'kill', weight: 12,
      run: async () => {
        const h = pick(hosts().filter((x) => x.up));
        if (!h) return 'skip: none up';
        await c.kill(h.name);
        return `kill ${h.name}`;
      },
    },
    {
      name: 'restart', weight: 14,
      run: async () => {
        const h = pick(hosts().filter((x) => !x.up));
        if (!h) return 'skip: none down';
        await c.restart(h.name);
        return `restart ${h.name}`;
      },
    },
    {
      name: 'partition', weight: 10,
      run: async () => {
        const names = hosts().map((h) => h.name);
        const a = names.filter(() => rnd() < 0.5);
        const b = names.filter((n) => !a.includes(n));
        if (!a.length || !b.length) return 'skip: one side empty';
        c.net.partition(a, b);
        return `partition ${a.join(' ')} | ${b.join(' ')}`;
      },
    },
    {
      name: 'heal', weight: 10,
      run: async () => {
        c.net.heal();
        for (const h of c.hosts.values()) if (!h.up) c.net.isolate(h.name);
        return 'heal';
      },
    },
    {
      name: 'add', weight: 6,
      run: async () => {
        if (c.hosts.size >= (o.maxHosts ?? 8)) return 'skip: enough nodes';
        const name = `new${++added}`;
        const entry = via();
        if (!entry) return `skip: no manager up to join ${name} through`;
        await c.join(name, 'worker', entry);
        return `add ${name}`;
      },
    },
    {
      name: 'remove', weight: 5,
      run: async () => {
        const h = pick(hosts().filter((x) => x.state!.role === 'worker'));
        if (!h) return 'skip: no worker';
        await c.kill(h.name);
        await c.call('node.rm', { ref: h.name, force: true }, via());
        retired.add(h.name);
        return `remove ${h.name}`;
      },
    },
    {
      name: 'force-new-cluster', weight: 3,
      run: async () => {
        const lost = hosts().filter((x) => x.up && x.manager && !x.manager.leaderNodeId());
        // Mostly where it is meant for (a manager that sees no leader); now and then on a healthy one.
        const h = pick(lost.length && rnd() < 0.8 ? lost : hosts().filter((x) => x.up && x.state!.role === 'manager'));
        if (!h) return 'skip: no manager up';
        await c.forceNewCluster(h.name);
        return `force-new-cluster ${h.name}`;
      },
    },
  ];
  for (const op of ops) op.weight = o.weights?.[op.name] ?? op.weight;
  const total = ops.reduce((s, x) => s + x.weight, 0);
  const choose = (): Op => {
    let r = rnd() * total;
    for (const op of ops) if ((r -= op.weight) < 0) return op;
    return ops[ops.length - 1]!;
  };

  try {
    await c.build(o.managers ?? 3, o.workers ?? 2);
    note(`cluster of ${o.managers ?? 3} managers and ${o.workers ?? 2} workers`);
    for (let i = 0; i < (o.ops ?? 25); i++) {
      const op = choose();
      const what = await op.run().catch((e: unknown) => `${op.name}: ${err(e)}`);
      note(what);
      await c.runFor(1000 + Math.floor(rnd() * 4000));
      note(`  ${renderHosts(c).split('\n').join('; ')}`);
      await checkWritable(`after "${what}"`);
      if (chk.violations.length) break;
    }
    // Recovery: every link up, every node back; the cluster must be writable again.
    c.net.heal();
    for (const h of hosts()) if (!h.up) await c.restart(h.name).catch((e: unknown) => note(`restart ${h.name}: ${err(e)}`));
    note('heal; restart every node');
    await c.runFor(15_000);
    await checkWritable('at the end, everything healed and restarted');
    // Strict (opt-in): every node of the swarm is back, Ready in the leader's view. Not one of the
    // required properties: see README.md for the cases it finds (a worker whose known managers are
    // all gone or all followers; members of a history a force-new-cluster left behind).
    if (o.strict) {
      const notReady = (): string[] => {
        const l = c.leader()?.manager;
        return hosts().filter((h) => h.up && l?.node(h.nodeId)?.status.state !== 'ready').map((h) => h.name);
      };
      await c.until(() => notReady().length === 0, 'every node Ready', 60_000).catch(() => {
        const why = notReady().map((n) => {
          const h = c.host(n);
          return `${n} (${h.state!.role}, knows managers ${h.state!.managers.join(' ') || 'none'}, session ${h.agent?.state().sessionId ? 'open' : 'none'})`;
        });
        liveness.push(`[t=${c.clock.now()}] at the end, everything healed and restarted, not Ready: ${why.join(', ')}`);
      });
    }
    note(`current configuration: ${JSON.stringify(chk.currentConfig())}`);
  } catch (e) {
    liveness.push(`the run failed: ${err(e)}`);
  } finally {
    await c.close().catch(() => undefined);
  }
  return { seed: o.seed, violations: [...chk.violations, ...liveness], trace, fakeMs: c.clock.now() - t0 };
}
