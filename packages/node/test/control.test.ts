import test from 'ava';
import { until } from '@shoal/testkit';
import { NO_LEADER } from '../src/index.js';
import { eventually, leaderOf, startNode, startSwarm, stopAll, type TestNode } from './fixtures.js';

// Control calls of whole nodes, in process (real gRPC with mTLS, real Raft on LevelDB, fake
// engines): what a user sees through the control socket when the leader dies, when a name is
// ambiguous, and when a service's published ports change.

test('the first write after the leader died: Docker\'s leaderless message, not a connection error', async (t) => {
  // Two managers (no quorum without the leader, so no new one is elected) and slow ticks (an
  // election timeout of 5–10 s), so the follower still believes in the dead leader when the
  // write comes: forwarding to it fails to connect, and that is reported as no leader.
  const { nodes } = await startSwarm(2, 0, { tickMs: 1000 });
  t.teardown(() => stopAll(nodes));
  const leader = leaderOf(nodes)!;
  const follower = nodes.find((n) => n !== leader)!;
  const leaderAddr = follower.node.managerForTests!.leaderAddr();
  t.truthy(leaderAddr, 'the follower knows the leader');
  await leader.stop();
  const forwarded = follower.node.managerForTests!.leaderAddr() === leaderAddr;
  const e = await t.throwsAsync(follower.call('service.create', { name: 'web', image: 'shoal/busybox:latest' }));
  t.true(forwarded, 'the write was forwarded to the dead leader (the follower had not noticed yet)');
  t.is(e!.message, `${NO_LEADER} (2 managers, 2 required)`);
  t.notRegex(e!.message, /ECONNREFUSED|control\.call|could not reach/);
  // Reads say the same.
  const r = await t.throwsAsync(follower.call('service.ls', {}));
  t.regex(r!.message, /^The swarm does not have a leader\./);
});

test('a node name two nodes have is refused by every node method, never guessed; the ID works', async (t) => {
  const { nodes, leaderAddr, tokens } = await startSwarm(1, 1);
  const twin = await startNode('node2');
  nodes.push(twin);
  t.teardown(() => stopAll(nodes));
  const [n1] = nodes as [TestNode];
  await twin.call('swarm.join', { token: tokens.worker, remoteAddr: leaderAddr });
  const ids = (await until(async () => {
    const ls = await n1.call('node.ls', {});
    const named = ls.nodes.filter((x) => x.description?.hostname === 'node2' && x.status.state === 'ready');
    return named.length === 2 ? named.map((x) => x.id).sort() : undefined;
  }, 'two ready nodes named node2', 30_000))!;
  const ambiguous = `node node2 is ambiguous (2 matches found: ${ids.join(', ')}); use the node ID`;
  const refused = async (what: string, p: Promise<unknown>) => {
    const e = await t.throwsAsync(p, undefined, what);
    t.is(e?.message, ambiguous, what);
  };
  await refused('node rm', n1.call('node.rm', { ref: 'node2', force: true }));
  await refused('node inspect', n1.call('node.inspect', { ref: 'node2' }));
  await refused('node ps', n1.call('node.ps', { ref: 'node2' }));
  await refused('node update', n1.call('node.update', { ref: 'node2', availability: 'drain' }));
  await refused('node promote', n1.call('node.update', { ref: 'node2', role: 'manager' }));
  await n1.call('service.create', { name: 'web', image: 'shoal/busybox:latest' });
  await refused('service ps -f node=', n1.call('service.ps', { ref: 'web', node: 'node2' }));
  // Nothing changed, and the ID picks one.
  const ls = await n1.call('node.ls', {});
  t.is(ls.nodes.length, 3);
  for (const x of ls.nodes.filter((n) => n.description?.hostname === 'node2')) t.like(x.spec, { availability: 'active', desiredRole: 'worker' });
  const first = ids[0]!;
  t.is((await n1.call('node.inspect', { ref: first })).id, first);
});

test('service update of the published ports rolls the tasks through the rolling update, like Docker', async (t) => {
  const { nodes } = await startSwarm(1, 1);
  t.teardown(() => stopAll(nodes));
  const [n1] = nodes as [TestNode];
  const { id } = await n1.call('service.create', { name: 'web', image: 'shoal/busybox:latest', replicas: 2 });
  const running = async (specVersion: number) => {
    const { tasks } = await n1.call('service.ps', { ref: id });
    const live = tasks.filter((x) => x.desiredState === 'running' && x.status.state === 'running' && x.specVersion === specVersion);
    return live.length === 2 ? live.map((x) => x.id).sort() : undefined;
  };
  const before = (await until(() => running(1), 'two tasks running', 30_000))!;
  const port = { targetPort: 80, publishedPort: 8080, protocol: 'tcp' as const, publishMode: 'ingress' as const };
  for (const [step, ports, specVersion] of [['--publish-add', [port], 2], ['--publish-rm', [], 3]] as const) {
    const cur = await n1.call('service.inspect', { ref: id });
    await n1.call('service.update', { ref: id, version: cur.meta.version, spec: { ports: [...ports] } });
    const after = (await until(() => running(specVersion), `${step}: two new tasks running`, 30_000))!;
    const old = cur.specVersion === 1 ? before : undefined;
    if (old) t.deepEqual(after.filter((x) => old.includes(x)), [], `${step}: every task replaced`);
    const svc = await until(async () => {
      const s = await n1.call('service.inspect', { ref: id });
      return s.updateStatus?.state === 'completed' ? s : undefined;
    }, `${step}: the rolling update completed`, 30_000);
    t.is(svc!.specVersion, specVersion);
    t.deepEqual(svc!.spec.endpoint?.ports ?? [], [...ports]);
  }
  const { tasks } = await n1.call('service.ps', { ref: id });
  t.true(tasks.filter((x) => before.includes(x.id)).every((x) => x.desiredState !== 'running'), 'the first tasks were shut down');
  await eventually(() => n1.call('service.rm', { ref: id }), 'remove');
});
