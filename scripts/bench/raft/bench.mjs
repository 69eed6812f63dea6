// Raft benchmark: 3 voters as separate processes on loopback, real LevelDB with fsync, 128-byte
// values. Prints one JSON line per metric: {"metric","value","unit"}. Run through ../raft.sh.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeAddrs } from '../../../packages/replication/dist/test/fixtures/cluster.js';
import { findLeader, http, kill9, spawnProc, statusOf } from '../../../packages/replication/dist/test/fixtures/procs.js';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const COUNT = Number(args.count ?? 20000);
const SEQ_COUNT = Number(args['seq-count'] ?? 500);
const TRIALS = Number(args.trials ?? 20);
const SNAP_MB = Number(args['snapshot-mb'] ?? 50);
const only = args.only ? new Set(args.only.split(',')) : undefined;
const want = (k) => !only || only.has(k);

const emit = (metric, value, unit) => console.log(JSON.stringify({ metric, value: Math.round(value * 1000) / 1000, unit }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const dirs = [];
const all = [];
process.on('exit', () => {
  for (const p of all) p.child?.kill('SIGKILL');
});

async function cluster(n, extra = {}) {
  const addrs = await freeAddrs(n);
  const procs = [];
  for (let i = 0; i < n; i++) {
    const dataDir = await mkdtemp(join(args.dir ?? tmpdir(), 'shoal-bench-'));
    dirs.push(dataDir);
    procs.push({ id: `m${i + 1}`, dataDir, raftAddr: addrs[i], httpPort: 0 });
  }
  const cfg = { bootstrap: procs.map((p) => ({ id: p.id, addr: p.raftAddr })), ...extra };
  await Promise.all(procs.map((p) => spawnProc(p, cfg)));
  all.push(...procs);
  return { procs, cfg };
}

async function waitLeader(procs, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const l = await findLeader(procs);
    if (l) return l;
    if (Date.now() > end) throw new Error('no leader');
    await sleep(10);
  }
}

async function fdatasyncMs() {
  const dir = await mkdtemp(join(args.dir ?? tmpdir(), 'shoal-fsync-'));
  dirs.push(dir);
  const fh = await open(join(dir, 'f'), 'w');
  const buf = Buffer.alloc(4096, 1);
  const lat = [];
  for (let i = 0; i < 200; i++) {
    await fh.write(buf);
    const t = performance.now();
    await fh.datasync();
    lat.push(performance.now() - t);
  }
  await fh.close();
  return pct(lat, 50);
}

async function main() {
  if (want('fsync')) emit('fdatasync_p50', await fdatasyncMs(), 'ms');

  if (want('throughput') || want('sequential') || want('failover')) {
    const { procs, cfg } = await cluster(3, args.snapEvery ? { snapshotEvery: Number(args.snapEvery) } : {});
    let leader = await waitLeader(procs);
    await http(leader, '/put?k=warm', { method: 'POST', body: 'x' });
    if (want('throughput')) {
      await http(leader, `/bench?concurrency=64&count=2000&size=128`, { method: 'POST', timeoutMs: 120000 }); // warm-up
      const r = (await http(leader, `/bench?concurrency=64&count=${COUNT}&size=128`, { method: 'POST', timeoutMs: 600000 })).body;
      emit('raft_throughput_64_proposers', r.commits / r.seconds, 'commits/s');
      emit('raft_commit_latency_64_proposers_p99', r.p99, 'ms');
      emit('raft_commit_latency_64_proposers_p50', r.p50, 'ms');
    }
    if (want('sequential')) {
      const r = (await http(leader, `/bench?concurrency=1&count=${SEQ_COUNT}&size=128`, { method: 'POST', timeoutMs: 600000 })).body;
      emit('raft_sequential_throughput', r.commits / r.seconds, 'commits/s');
      emit('raft_sequential_latency_p50', r.p50, 'ms');
    }
    if (want('failover')) {
      const times = [];
      for (let trial = 0; trial < TRIALS; trial++) {
        leader = await waitLeader(procs);
        // Let heartbeats settle so every follower hears the current leader.
        await sleep(300);
        const survivors = procs.filter((p) => p !== leader);
        await kill9(leader);
        const t0 = performance.now();
        let done = false;
        let i = 0;
        while (!done) {
          for (const p of survivors) {
            try {
              const r = await http(p, `/put?k=fo${trial}-${i++}&timeoutMs=1000`, { method: 'POST', body: 'v', timeoutMs: 1500 });
              if (r.status === 200) {
                done = true;
                break;
              }
            } catch {
              /* retry */
            }
          }
          if (!done) await sleep(5);
        }
        times.push(performance.now() - t0);
        await spawnProc(leader, cfg);
        // Wait until the restarted member caught up before the next trial.
        const target = (await statusOf(await waitLeader(procs)))?.commit ?? 0;
        for (;;) {
          const st = await statusOf(leader);
          if (st && st.applied >= target) break;
          await sleep(20);
        }
      }
      emit('raft_failover_p50', pct(times, 50), 'ms');
      emit('raft_failover_p99', pct(times, 99), 'ms');
      emit('raft_failover_max', Math.max(...times), 'ms');
    }
    for (const p of procs) await kill9(p);
  }

  if (want('snapshot')) {
    const { procs } = await cluster(3, { keepEntries: 10 });
    const leader = await waitLeader(procs);
    await http(leader, `/fill?bytes=${SNAP_MB * 1e6}&size=131072`, { method: 'POST', timeoutMs: 600000 });
    // Snapshot and compact now, so the joiner must install the snapshot.
    await http(leader, '/snapshot', { method: 'POST', timeoutMs: 600000 });
    const st = await statusOf(leader);
    const [addr] = await freeAddrs(1);
    const dataDir = await mkdtemp(join(args.dir ?? tmpdir(), 'shoal-bench-'));
    dirs.push(dataDir);
    const joiner = { id: 'm4', dataDir, raftAddr: addr, httpPort: 0 };
    all.push(joiner);
    await spawnProc(joiner, { join: procs.map((p) => ({ id: p.id, addr: p.raftAddr })), keepEntries: 10 });
    const target = st.applied;
    const t0 = performance.now();
    for (let attempt = 0; ; attempt++) {
      const l = await waitLeader(procs);
      const add = await http(l, `/member?op=addLearner&id=m4&addr=${addr}`, { method: 'POST', timeoutMs: 60000 });
      if (add.status === 200) break;
      if (attempt >= 5) throw new Error(`addLearner failed: ${JSON.stringify(add.body)}`);
      await sleep(200);
    }
    let js;
    for (;;) {
      js = await statusOf(joiner);
      if (js && js.applied >= target) break;
      await sleep(10);
    }
    const s = (performance.now() - t0) / 1000;
    emit('raft_snapshot_install_seconds', s, 's');
    emit('raft_snapshot_install_throughput', js.stateBytes / 1e6 / s, 'MB/s');
    emit('raft_snapshot_state_size', js.stateBytes / 1e6, 'MB');
    for (const p of [...procs, joiner]) await kill9(p);
  }
}

try {
  await main();
} finally {
  for (const p of all) await kill9(p);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
