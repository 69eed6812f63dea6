import fs from 'node:fs';
import test from 'ava';
import { waitFor } from '../lib/harness.js';
import { testnet, shoalUntil } from '../lib/testnet.js';

// Issue "Membership and recovery bugs" on 4 namespace hosts, each with its own dockerd and shoald.
// The steps build on each other (the cluster's history is the point), so they run in order:
//   1. a node promoted, demoted and promoted again (twice) is a working manager: with one other
//      manager killed, the remaining two still accept writes;
//   2. `swarm init --force-new-cluster` on node2 while node1, node3 and node4 are down; they come
//      back with their old data, are told they were removed, and never take the forced cluster over;
//   3. `node demote` of the old, Down manager entries touches those entries only;
//   4. `swarm leave --force` on a manager that lost quorum leaves locally and says what to do.

const HOSTS = ['node1', 'node2', 'node3', 'node4'];
const rowOf = (out: string, host: string) => out.split('\n').find((l) => new RegExp(`\\s${host}\\s`).test(l)) ?? '';
const rowsOf = (out: string, host: string) => out.split('\n').filter((l) => new RegExp(`\\s${host}\\s`).test(l));
let managerToken = '';
let workerToken = '';

/** A write that must be accepted (retried while a leader is being elected). */
async function writeOk(on: string, replicas: number, what: string, timeoutMs = 20_000): Promise<void> {
  let seen = '';
  await waitFor(async () => {
    const r = await testnet.shoal(on, 'service', 'scale', `probe=${replicas}`, '--detach');
    seen = r.code === 0 ? r.stdout : r.stderr;
    return r.code === 0 ? true : undefined;
  }, { what, timeoutMs, intervalMs: 300, seen: () => seen });
}

test.before(async () => {
  await testnet.down();
  await testnet.up(4);
});

test.after.always(async () => {
  if (process.env['SHOAL_KEEP_TESTNET']) return;
  await testnet.down();
});

test.serial('three managers and a worker', async (t) => {
  const init = await testnet.shoal('node1', 'swarm', 'init', '--advertise-addr', await testnet.ip('node1'));
  t.is(init.code, 0, init.stderr);
  managerToken = (await testnet.shoal('node1', 'swarm', 'join-token', '-q', 'manager')).stdout.trim();
  workerToken = (await testnet.shoal('node1', 'swarm', 'join-token', '-q', 'worker')).stdout.trim();
  for (const [h, tok] of [['node2', managerToken], ['node3', managerToken], ['node4', workerToken]] as const) {
    const r = await testnet.shoal(h, 'swarm', 'join', '--token', tok, '--advertise-addr', await testnet.ip(h), '10.99.0.11:2377');
    t.is(r.code, 0, `${h}: ${r.stderr}`);
  }
  await shoalUntil('node1', ['node', 'ls'], (o) => (o.match(/Ready/g) ?? []).length === 4 && (o.match(/Reachable/g) ?? []).length === 2, '4 Ready, 2 Reachable');
  const c = await testnet.shoal('node1', 'service', 'create', '--name', 'probe', '--replicas', '1', '--detach', 'shoal/busybox:latest', 'sleep', '1000000');
  t.is(c.code, 0, c.stderr);
  // Every manager prints the same service, timestamps included, also after one restarts (apply
  // is a pure function of the log: a replayed log re-stamps nothing).
  const inspectAll = async () => Promise.all(['node1', 'node2', 'node3'].map(async (h) => (await testnet.shoal(h, 'service', 'inspect', 'probe')).stdout));
  const before = await inspectAll();
  t.regex(before[0]!, /"updatedAt": "20/);
  t.true(before.every((x) => x === before[0]), 'the same JSON on every manager');
  await testnet.kill('node3');
  await testnet.start('node3');
  await shoalUntil('node1', ['node', 'ls'], (o) => (o.match(/Reachable|Leader/g) ?? []).length === 3, 'node3 back', 60_000);
  const after = await inspectAll();
  t.deepEqual(after, before);
});

test.serial('promote → demote → promote, twice: a working manager that counts toward quorum', async (t) => {
  for (let round = 1; round <= 2; round++) {
    const p = await testnet.shoal('node1', 'node', 'promote', 'node4');
    t.is(p.code, 0, p.stderr);
    await shoalUntil('node1', ['node', 'ls'], (o) => /Reachable/.test(rowOf(o, 'node4')), `round ${round}: node4 Reachable`, 60_000);
    // It stays a manager (the bug: Reachable for a second, then Unreachable for good).
    await new Promise((r) => setTimeout(r, 4000));
    const ls = await shoalUntil('node1', ['node', 'ls'], (o) => /Reachable/.test(rowOf(o, 'node4')), `round ${round}: node4 still Reachable`, 20_000);
    t.regex(rowOf(ls, 'node4'), /Reachable/);
    const info = await testnet.shoal('node4', 'info');
    t.regex(info.stdout, /Is Manager: true/, info.stdout);
    const d = await testnet.shoal('node1', 'node', 'demote', 'node4');
    t.is(d.code, 0, d.stderr);
    await shoalUntil('node1', ['node', 'ls'], (o) => !/Reachable|Unreachable|Leader/.test(rowOf(o, 'node4')) && /Ready/.test(rowOf(o, 'node4')), `round ${round}: node4 a Ready worker`, 60_000);
    await writeOk('node1', round + 1, `round ${round}: a write after the demotion`);
  }
  // Promote once more: 4 managers (node1-4). Kill node3: 3 of 4 remain, writes must go on.
  const p = await testnet.shoal('node1', 'node', 'promote', 'node4');
  t.is(p.code, 0, p.stderr);
  await shoalUntil('node1', ['node', 'ls'], (o) => /Reachable/.test(rowOf(o, 'node4')), 'node4 Reachable', 60_000);
  await new Promise((r) => setTimeout(r, 3000));
  await testnet.kill('node3');
  await writeOk('node4', 5, 'a write with node3 dead (3 of 4 managers up)', 30_000);
  await writeOk('node1', 6, 'a write through node1 with node3 dead', 30_000);
  await testnet.start('node3');
  await shoalUntil('node1', ['node', 'ls'], (o) => HOSTS.every((h) => /Ready/.test(rowOf(o, h))) && (o.match(/Reachable|Leader/g) ?? []).length === 4, 'all 4 managers back', 90_000);
});

test.serial('force-new-cluster: the old managers that come back are told they were removed and never lead it', async (t) => {
  // Quorum lost for good: node1, node3 and node4 go down; node2 is forced into a new cluster.
  for (const h of ['node1', 'node3', 'node4']) await testnet.kill(h);
  const f = await testnet.shoal('node2', 'swarm', 'init', '--force-new-cluster');
  t.is(f.code, 0, f.stderr);
  await writeOk('node2', 2, 'the forced cluster accepts writes');
  // node1 and node4 come back with their old data (with node3 that would be a quorum of the old
  // configuration); node3 stays down for good.
  for (const h of ['node1', 'node4']) await testnet.start(h);
  for (const h of ['node1', 'node4']) {
    const r = await waitFor(async () => {
      const x = await testnet.shoal(h, 'node', 'ls');
      return x.code !== 0 && /removed from the swarm's managers/.test(x.stderr) ? x : undefined;
    }, { what: `${h} says it was removed`, timeoutMs: 60_000, intervalMs: 500 });
    t.regex(r.stderr, /not a swarm manager.*shoal node promote/);
  }
  // node2 never followed them: it still leads alone and accepts writes; they are workers now.
  await writeOk('node2', 3, 'the forced cluster still accepts writes after the old managers returned');
  const ls = await shoalUntil('node2', ['node', 'ls'], (o) => ['node1', 'node4'].every((h) => /Ready/.test(rowOf(o, h)) && !/Leader|Reachable|Unreachable/.test(rowOf(o, h))),
    'node1 and node4 Ready workers', 60_000);
  t.regex(rowOf(ls, 'node2'), /Leader/);
  // node3's entry is an old manager that is gone for good.
  t.regex(rowOf(ls, 'node3'), /Down.*Unreachable/);
  // Every daemon is still up (no uncaught exception from the Raft core ended one).
  for (const h of ['node1', 'node2', 'node4']) t.is((await testnet.shoal(h, 'info')).code, 0, `${h} shoald answers`);
});

test.serial('demote of the old, Down manager entry acts on that entry only', async (t) => {
  // node3 comes back as a new machine (its data gone) and joins the forced cluster as a manager.
  fs.rmSync('/var/lib/shoal-testnet/node3/shoal', { recursive: true, force: true });
  await testnet.start('node3');
  const mt = (await testnet.shoal('node2', 'swarm', 'join-token', '-q', 'manager')).stdout.trim();
  const j = await testnet.shoal('node3', 'swarm', 'join', '--token', mt, '--advertise-addr', await testnet.ip('node3'), '10.99.0.12:2377');
  t.is(j.code, 0, j.stderr);
  const ls = await shoalUntil('node2', ['node', 'ls'], (o) => rowsOf(o, 'node3').some((l) => /Ready.*Reachable/.test(l)), 'the new node3 Reachable', 60_000);
  // Two entries named node3 now: a name that matches both is refused (Docker: ambiguous).
  t.is(rowsOf(ls, 'node3').length, 2, ls);
  const amb = await testnet.shoal('node2', 'node', 'demote', 'node3');
  t.not(amb.code, 0);
  t.regex(amb.stderr, /ambiguous/);
  // Demote the old entry by its ID: the live managers (node2, the new node3) are untouched.
  const oldId = rowsOf(ls, 'node3').find((l) => /Down/.test(l))!.trim().split(/\s+/)[0]!;
  const d = await testnet.shoal('node2', 'node', 'demote', oldId);
  t.is(d.code, 0, d.stderr);
  await shoalUntil('node2', ['node', 'ls'], (o) => rowsOf(o, 'node3').some((l) => l.startsWith(oldId) && !/Unreachable/.test(l)), 'the old entry a worker', 30_000);
  const rm = await testnet.shoal('node2', 'node', 'rm', oldId);
  t.is(rm.code, 0, rm.stderr);
  await writeOk('node2', 4, 'writes go on after demoting the old entry');
  await writeOk('node3', 5, 'the new node3 is a working manager');
  const after = await testnet.shoal('node2', 'node', 'ls');
  t.is(rowsOf(after.stdout, 'node3').length, 1);
  t.regex(rowOf(after.stdout, 'node3'), /Ready.*(Leader|Reachable)/);
});

test.serial('swarm leave --force on a manager without quorum leaves locally and says what to do', async (t) => {
  // node2 and the new node3 are the 2 managers: kill node3, node2 has no quorum.
  await testnet.kill('node3');
  await waitFor(async () => {
    const r = await testnet.shoal('node2', 'service', 'scale', 'probe=1', '--detach');
    return r.code !== 0 && /leader/i.test(r.stderr) ? true : undefined;
  }, { what: 'node2 without quorum', timeoutMs: 30_000 });
  const leave = await testnet.shoal('node2', 'swarm', 'leave', '--force');
  t.is(leave.code, 0, leave.stderr);
  t.regex(leave.stdout, /Node left the swarm/);
  t.regex(leave.stderr, /node demote/);
  const info = await testnet.shoal('node2', 'info');
  t.regex(info.stdout, /Swarm: inactive/);
});
