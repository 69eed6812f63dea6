import test from 'ava';
import { until } from '@shoal/testkit';
import { eventually, leaderOf, startSwarm, stopAll, type TestNode } from './fixtures.js';

// Role changes of whole nodes (certificate renewal, restart as manager or worker, Raft membership),
// in process: real gRPC with mTLS, real Raft on LevelDB, fake engines.

const role = async (via: TestNode, name: string) => (await via.call('node.inspect', { ref: name }));

test('promote → demote → promote, twice: a working manager; with one other manager gone, writes go on', async (t) => {
  const { nodes } = await startSwarm(3, 1);
  t.teardown(() => stopAll(nodes));
  const [n1, , n3, n4] = nodes as [TestNode, TestNode, TestNode, TestNode];
  await n1.call('service.create', { name: 'probe', image: 'shoal/busybox:latest' });
  const raftIds = new Set<string>();
  for (let round = 1; round <= 2; round++) {
    await n1.call('node.update', { ref: 'node4', role: 'manager' });
    const promoted = await until(async () => {
      const n = await role(n1, 'node4');
      return n.role === 'manager' && n.managerStatus?.reachability === 'reachable' ? n : undefined;
    }, `round ${round}: node4 a reachable manager`, 30_000);
    raftIds.add(promoted!.managerStatus!.raftId);
    t.is((await n4.call('swarm.info', {})).role, 'manager');
    await n1.call('node.update', { ref: 'node4', role: 'worker' });
    await until(async () => {
      const n = await role(n1, 'node4');
      return n.role === 'worker' && !n.managerStatus && (await n4.call('swarm.info', {})).role === 'worker';
    }, `round ${round}: node4 a worker again`, 30_000);
    await eventually(() => n1.call('service.scale', { ref: 'probe', replicas: round + 1 }), `round ${round}: a write`);
  }
  t.is(raftIds.size, 2, 'each promotion joined under a fresh Raft ID');
  await n1.call('node.update', { ref: 'node4', role: 'manager' });
  await until(async () => (await role(n1, 'node4')).managerStatus?.reachability === 'reachable', 'node4 a manager again', 30_000);
  // 4 managers; stop node3: 3 of 4 remain, a quorum only if node4 really votes.
  await n3.stop();
  await eventually(() => n4.call('service.scale', { ref: 'probe', replicas: 5 }), 'a write through node4 with node3 gone');
  const leader = leaderOf(nodes.filter((n) => n !== n3));
  t.truthy(leader);
});

test('the same request id runs once, also when retried on a new leader after the first one died', async (t) => {
  const { nodes } = await startSwarm(3);
  t.teardown(() => stopAll(nodes));
  const first = leaderOf(nodes)!;
  const followers = nodes.filter((n) => n !== first);
  const m = first.node.managerForTests!;
  // What a follower's forwarding does: the write with its request id, on the leader.
  const r1 = await first.node.router.runHere(m, 'service.create', { name: 'once', image: 'shoal/busybox:latest' }, 'node2/req-1');
  // The leader dies before answering; the follower retries with the same id on the new leader.
  await first.stop();
  const next = (await until(() => leaderOf(followers), 'a new leader', 20_000))!;
  const r2 = await eventually(() => next.node.router.runHere(next.node.managerForTests!, 'service.create', { name: 'once', image: 'shoal/busybox:latest' }, 'node2/req-1'), 'the retry on the new leader');
  t.deepEqual(r2, r1);
  // Two managers of three on a loaded machine may still hold another election: a read waits for it.
  const ls = await eventually(() => next.call('service.ls', {}), 'service ls after the fail-over');
  t.deepEqual(ls.map((s) => s.service.spec.name), ['once']);
});

test('replicas hold byte-identical state, also after one restarts and replays its log', async (t) => {
  const { nodes } = await startSwarm(3, 1);
  t.teardown(() => stopAll(nodes));
  const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
  await n2.call('service.create', { name: 'web', image: 'shoal/busybox:latest', replicas: 3 });
  await n3.call('network.create', { name: 'back' });
  await n1.call('service.update', { ref: 'web', spec: { env: ['A=1'] } });
  await n2.call('node.update', { ref: 'node4', labelAdd: { zone: 'a' } });
  await n3.call('service.scale', { ref: 'web', replicas: 2 });
  await n1.call('swarm.update', { taskHistoryLimit: 3 });
  const dumps = async () => {
    await n1.call('service.ls', {}); // a read barrier on the leader
    return until(() => {
      const d = [n1, n2, n3].map((n) => n.node.managerForTests!.dump());
      return d.every((x) => x === d[0]) ? d[0] : undefined;
    }, 'every manager applied the same entries', 15_000);
  };
  const before = await dumps();
  t.truthy(before);
  t.regex(before!, /"updatedAt":"20/);
  // Restart a follower: it replays its log (no snapshot yet) and must re-stamp nothing.
  const f = nodes.find((n) => n !== leaderOf(nodes) && n.name !== 'node4')!;
  await f.stop();
  await f.start();
  // The restarted replica applied its log again and holds the same bytes as the others (the
  // cluster moved on meanwhile, so compare the three, not before with after).
  const after = await dumps();
  t.truthy(after);
  t.regex(after!, /"name":"back"/);
});

test('force-new-cluster: the old managers come back as workers, told why; the forced manager leads alone', async (t) => {
  const { nodes } = await startSwarm(3, 1);
  t.teardown(() => stopAll(nodes));
  const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
  await n1.call('service.create', { name: 'keep', image: 'shoal/busybox:latest' });
  for (const n of [n1, n2, n3]) await n.stop();
  await n2.start();
  await n2.call('swarm.init', { forceNewCluster: true });
  await eventually(() => n2.call('service.scale', { ref: 'keep', replicas: 2 }), 'the forced cluster writes');
  // The old managers come back with their old data: a quorum of the old configuration.
  await n1.start();
  await n3.start();
  for (const n of [n1, n3]) {
    const info = await until(async () => {
      const i = await n.call('swarm.info', {});
      return i.role === 'worker' ? i : undefined;
    }, `${n.name} a worker`, 30_000);
    t.regex(info!.error ?? '', /removed from the swarm's managers/);
    const e = await t.throwsAsync(n.call('node.ls', {}));
    t.regex(e!.message, /not a swarm manager.*removed from the swarm's managers/);
  }
  t.true(n2.node.managerForTests!.isLeader());
  t.is(n2.node.managerForTests!.members().length, 1);
  // The leader recorded them as workers (their entries no longer pretend to be managers).
  await until(async () => {
    const ls = await n2.call('node.ls', {});
    return ['node1', 'node3'].every((h) => ls.nodes.find((x) => x.description?.hostname === h)?.role === 'worker');
  }, 'node1 and node3 recorded as workers', 30_000);
  await eventually(() => n2.call('service.scale', { ref: 'keep', replicas: 3 }), 'still writable');
});

test('swarm leave --force on a manager without quorum leaves locally and says what is left to do', async (t) => {
  const { nodes } = await startSwarm(2);
  t.teardown(() => stopAll(nodes));
  const [n1, n2] = nodes as [TestNode, TestNode];
  await n2.stop();
  const refused = await t.throwsAsync(n1.call('service.create', { name: 'x', image: 'shoal/busybox:latest' }), undefined, 'no quorum');
  t.regex(refused!.message, /does not have a leader|quorum/);
  const left = await n1.call('swarm.leave', { force: true });
  t.regex(left.message ?? '', /could not be told|node demote/);
  t.is((await n1.call('swarm.info', {})).localNodeState, 'inactive');
});

test('a worker learns of a promoted manager during its session (the assignment stream carries the manager list)', async (t) => {
  const { nodes } = await startSwarm(1, 2);
  t.teardown(() => stopAll(nodes));
  const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
  t.deepEqual(n3.node.identity!.managers, [n1.node.identity!.advertiseAddr]);
  await n1.call('node.update', { ref: 'node2', role: 'manager' });
  await until(async () => (await role(n1, 'node2')).managerStatus?.reachability === 'reachable', 'node2 a reachable manager', 30_000);
  const addr2 = n2.node.identity!.advertiseAddr;
  await until(() => n3.node.identity!.managers.includes(addr2), 'node3 knows node2 is a manager, without a new session', 15_000);
  t.pass();
});
