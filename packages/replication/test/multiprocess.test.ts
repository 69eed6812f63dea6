import test from 'ava';
import { rm } from 'node:fs/promises';
import { freeAddrs, tempDir, waitFor } from './fixtures/cluster.js';
import { findLeader, http, kill9, spawnProc, statusOf, type Proc } from './fixtures/procs.js';

test('3 processes: kill -9 and restart members (one, then all) under writes, no acknowledged write is lost', async (t) => {
  const addrs = await freeAddrs(6);
  const procs: Proc[] = [];
  for (let i = 0; i < 3; i++) {
    procs.push({ id: `p${i + 1}`, dataDir: await tempDir('shoal-mp-'), raftAddr: addrs[i]!, httpPort: Number(addrs[i + 3]!.split(':')[1]) });
  }
  let stop = false;
  t.teardown(async () => {
    stop = true;
    for (const p of procs) await kill9(p);
    for (const p of procs) await rm(p.dataDir, { recursive: true, force: true });
  });
  const peers = procs.map((p) => ({ id: p.id, addr: p.raftAddr }));
  const cfg = { bootstrap: peers, tickMs: 50, snapshotEvery: 150, keepEntries: 20 };
  await Promise.all(procs.map((p) => spawnProc(p, cfg)));

  const acked = new Map<string, string>();
  let leader: Proc | undefined;
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; !stop; ) {
      if (leader && !leader.child) leader = undefined;
      const target = leader ?? procs[(i + w + Math.floor(Date.now() / 100)) % procs.length]!;
      if (!target.child) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const k = `w${w}-${i}`;
      try {
        const r = await http<{ index?: number; leader?: string }>(target, `/put?k=${k}&timeoutMs=2000`, { method: 'POST', body: `${i}`, timeoutMs: 3_000 });
        if (r.status === 200) {
          acked.set(k, `${i}`);
          i++;
          continue;
        }
        leader = r.status === 421 && r.body.leader ? procs.find((p) => p.id === r.body.leader) : undefined;
      } catch {
        leader = undefined;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const writers = [0, 1, 2, 3].map(writer);
  const waitProgress = async (n: number): Promise<void> => {
    const target = acked.size + n;
    await waitFor(() => acked.size >= target, `${n} more acknowledged writes`, 20_000);
  };

  await waitProgress(50);
  // Round 1: kill the leader. Round 2: kill a follower. Round 3: kill the leader again.
  for (const victimKind of ['leader', 'follower', 'leader'] as const) {
    const l = await findLeader(procs);
    const victim = victimKind === 'leader' && l ? l : procs.find((p) => p !== l && p.child)!;
    await kill9(victim);
    if (leader === victim) leader = undefined;
    await waitProgress(40);
    await spawnProc(victim, cfg);
    await waitProgress(20);
  }
  // Finally every member crashes at once mid-write, and all restart from disk.
  await Promise.all(procs.map(kill9));
  await Promise.all(procs.map((p) => spawnProc(p, cfg)));
  await waitProgress(20);
  stop = true;
  await Promise.all(writers);

  // Every member converges on a state holding every acknowledged write.
  let dumps: { applied: number; map: Record<string, string> }[] = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    dumps = await Promise.all(procs.map(async (p) => (await http<{ applied: number; map: Record<string, string> }>(p, '/dump')).body));
    const applied = dumps.map((d) => d.applied);
    if (applied.every((a) => a === applied[0]) && dumps.every((d) => [...acked].every(([k, v]) => d.map[k] === v))) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.true(acked.size >= 230, `acknowledged ${acked.size} writes`);
  for (const [i, d] of dumps.entries()) {
    const missing = [...acked].filter(([k, v]) => d.map[k] !== v).map(([k]) => k);
    t.deepEqual(missing, [], `${procs[i]!.id} lost acknowledged writes`);
  }
  const sts = await Promise.all(procs.map(statusOf));
  t.true(sts.some((s) => (s?.snapshotIndex ?? 0) > 0), 'members took snapshots during the run');
  // A linearizable read through a follower sees the last acknowledged write.
  const follower = procs.find((p, i) => !sts[i]?.isLeader)!;
  const lastKey = [...acked.keys()].pop()!;
  t.is((await http<{ value: string }>(follower, `/get?k=${lastKey}`)).body.value, acked.get(lastKey)!);
});
