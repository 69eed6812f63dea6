import test from 'ava';
import { HTTPD, IMAGE, waitFor } from '../lib/harness.js';
import { testnet, runningOn, shoalUntil } from '../lib/testnet.js';
import { answered, failures, requestsFromHost } from '../lib/mesh.js';

// Acceptance case B07 (moby/moby#34864): a global service with a
// published port, created right after `swarm init`, gets exactly one running task on each node that
// joins — joined at once, as a worker and as a manager, and later — even with restart condition
// `none`, and the routing mesh answers on the newest node.

const HOSTS = ['node1', 'node2', 'node3', 'node4'];
const IP: Record<string, string> = {};
const rowOf = (out: string, host: string) => out.split('\n').find((l) => new RegExp(`\\s${host}\\s`).test(l)) ?? '';

async function must(node: string, ...args: string[]): Promise<string> {
  const r = await testnet.shoal(node, ...args);
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} on ${node} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Running `agent` containers per host. */
async function perHost(hosts: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const h of hosts) out[h] = (await runningOn(h, 'agent')).length;
  return out;
}

/** Samples the per-host counts until `until` holds; fails if any sample shows 2 or more on a host. */
async function exactlyOneEach(t: { true(v: boolean, m?: string): void }, hosts: string[], what: string): Promise<void> {
  let seen: Record<string, number> = {};
  await waitFor(async () => {
    seen = await perHost(hosts);
    for (const h of hosts) t.true((seen[h] ?? 0) <= 1, `${h} ran ${seen[h]} agent tasks at once`);
    return hosts.every((h) => seen[h] === 1);
  }, { what, timeoutMs: 90_000, seen: () => JSON.stringify(seen) });
}

test.before(async () => {
  await testnet.down();
  await testnet.up(4);
  for (const h of HOSTS) IP[h] = await testnet.ip(h);
});

test.after.always(async () => {
  if (!process.env['SHOAL_KEEP_TESTNET']) await testnet.down();
});

test.serial('B07: a global service with a published port runs one task on every node that joins, at once or later', async (t) => {
  await must('node1', 'swarm', 'init', '--advertise-addr', IP['node1']!);
  await must('node1', 'service', 'create', '--name', 'agent', '--mode', 'global', '--restart-condition', 'none', '--publish', '8080:80', '--detach', IMAGE, ...HTTPD);
  // Right away, no sleep: a worker and a manager join.
  const wt = (await must('node1', 'swarm', 'join-token', '-q', 'worker')).trim();
  const mt = (await must('node1', 'swarm', 'join-token', '-q', 'manager')).trim();
  await Promise.all([
    must('node2', 'swarm', 'join', '--token', wt, '--advertise-addr', IP['node2']!, `${IP['node1']}:2377`),
    must('node3', 'swarm', 'join', '--token', mt, '--advertise-addr', IP['node3']!, `${IP['node1']}:2377`),
  ]);
  const first = HOSTS.slice(0, 3);
  await exactlyOneEach(t, first, 'one agent task on each of the first 3 nodes');
  await shoalUntil('node1', ['service', 'ls'], (o) => /agent\s+global\s+3\/3\s/.test(o), 'agent 3/3 in service ls', 30_000);
  // The manager that joined answers too, with the same view.
  await shoalUntil('node3', ['service', 'ls'], (o) => /agent\s+global\s+3\/3\s/.test(o), 'agent 3/3 on the new manager', 30_000);
  const ps = await must('node1', 'service', 'ps', '-f', 'desired-state=running', 'agent');
  for (const h of first) t.is(ps.split('\n').filter((l) => new RegExp(`\\s${h}\\s`).test(l)).length, 1, `one desired-running task on ${h}\n${ps}`);
  t.notRegex(ps, /Failed|Rejected/);

  // Later, a fourth node joins: it gets exactly one task and the routing mesh answers there.
  await must('node4', 'swarm', 'join', '--token', wt, '--advertise-addr', IP['node4']!, `${IP['node1']}:2377`);
  await shoalUntil('node1', ['node', 'ls'], (o) => /Ready/.test(rowOf(o, 'node4')), 'node4 Ready', 60_000);
  await exactlyOneEach(t, HOSTS, 'one agent task on each of the 4 nodes');
  await shoalUntil('node1', ['service', 'ls'], (o) => /agent\s+global\s+4\/4\s/.test(o), 'agent 4/4 in service ls', 30_000);
  const tally = await waitFor(async () => {
    const r = await requestsFromHost('node1', `http://${IP['node4']}:8080/`, 40);
    return failures(r) === 0 && Object.keys(r).length === 4 ? r : undefined;
  }, { what: 'node4:8080 reaching all 4 agent tasks', timeoutMs: 30_000 });
  t.is(answered(tally), 40);
  t.is(failures(tally), 0);
});
