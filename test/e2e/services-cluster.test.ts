import test from 'ava';
import { IMAGE, waitFor } from '../lib/harness.js';
import { testnet, runningOn, shoalUntil } from '../lib/testnet.js';

// Issue 9 on several hosts (scripts/testnet): `--placement-pref spread=node.labels.zone` over two
// zones of unequal size puts half the replicas in each; a global job runs once on every node,
// including one that joins after it finished.

const HOSTS = ['node1', 'node2', 'node3', 'node4'];
const IP: Record<string, string> = {};

async function must(node: string, ...args: string[]): Promise<string> {
  const r = await testnet.shoal(node, ...args);
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} on ${node} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

test.before(async () => {
  await testnet.down();
  await testnet.up(4);
  for (const h of HOSTS) IP[h] = await testnet.ip(h);
  await must('node1', 'swarm', 'init', '--advertise-addr', IP['node1']!);
  const wt = (await must('node1', 'swarm', 'join-token', '-q', 'worker')).trim();
  for (const h of ['node2', 'node3']) await must(h, 'swarm', 'join', '--token', wt, '--advertise-addr', IP[h]!, `${IP['node1']}:2377`);
  await shoalUntil('node1', ['node', 'ls'], (o) => (o.match(/Ready/g) ?? []).length === 3, '3 nodes Ready', 60_000);
  // Zone a: node1 and node2; zone b: node3 alone.
  for (const [h, zone] of [['node1', 'a'], ['node2', 'a'], ['node3', 'b']] as const) await must('node1', 'node', 'update', '--label-add', `zone=${zone}`, h);
});

test.after.always(async () => {
  if (!process.env['SHOAL_KEEP_TESTNET']) await testnet.down();
});

test.serial('--placement-pref spread=node.labels.zone puts half the replicas in each zone', async (t) => {
  await must('node1', 'service', 'create', '--name', 'web', '--replicas', '4', '--placement-pref', 'spread=node.labels.zone', '--detach', IMAGE, 'sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait');
  let seen: Record<string, number> = {};
  await waitFor(async () => {
    seen = {};
    for (const h of ['node1', 'node2', 'node3']) seen[h] = (await runningOn(h, 'web')).length;
    return (seen['node1'] ?? 0) + (seen['node2'] ?? 0) + (seen['node3'] ?? 0) === 4;
  }, { what: '4 web tasks running', timeoutMs: 90_000, seen: () => JSON.stringify(seen) });
  t.is(seen['node3'], 2, `zone b (node3 alone) holds half: ${JSON.stringify(seen)}`);
  t.is((seen['node1'] ?? 0) + (seen['node2'] ?? 0), 2);
  t.regex(await must('node1', 'service', 'inspect', '--pretty', 'web'), /Preferences: +\[spread=node\.labels\.zone\]/);
  await must('node1', 'service', 'rm', 'web');
});

test.serial('a global job runs once on each node, and on a node that joins afterwards', async (t) => {
  const r = await testnet.shoal('node1', 'service', 'create', '--name', 'once', '--mode', 'global-job', IMAGE, 'sh', '-c', 'hostname');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /job complete/);
  await shoalUntil('node1', ['service', 'ls'], (o) => /once\s+global job\s+0\/0 \(3\/3 completed\)/.test(o), 'once 3/3 completed', 60_000);
  const wt = (await must('node1', 'swarm', 'join-token', '-q', 'worker')).trim();
  await must('node4', 'swarm', 'join', '--token', wt, '--advertise-addr', IP['node4']!, `${IP['node1']}:2377`);
  await shoalUntil('node1', ['service', 'ls'], (o) => /once\s+global job\s+0\/0 \(4\/4 completed\)/.test(o), 'once completed on node4 too', 90_000);
  const ps = await must('node1', 'service', 'ps', 'once');
  t.is(ps.match(/Complete\s+Complete/g)?.length, 4, ps);
  t.regex(ps, /\snode4\s/);
});
