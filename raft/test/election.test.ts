/** Leader election scenarios (Raft paper §5.2, thesis §9.6 pre-vote, §6.2 check-quorum). */
import test from 'ava';
import { Cluster, randInt } from './harness.js';

test('initial election: one leader, and the term stays put without failures', (t) => {
  const c = new Cluster({ n: 3, seed: 1 });
  const leader = c.checkOneLeader();
  const term1 = c.checkTerms();
  t.true(term1 >= 1);
  c.runTicks(40); // two election timeouts and then some
  t.is(c.checkTerms(), term1, 'term changed although nothing failed');
  t.is(c.checkOneLeader(), leader);
});

test('re-election after leader loss; no leader without quorum; leader once quorum returns', (t) => {
  const c = new Cluster({ n: 3, seed: 2 });
  const l1 = c.checkOneLeader();
  c.disconnect(l1);
  const l2 = c.checkOneLeader();
  t.not(l2, l1);
  // The old leader rejoins: it must not disrupt the new one.
  c.connect(l1);
  const l3 = c.checkOneLeader();
  t.is(l3, l2);
  // Without a quorum there is no leader.
  const others = c.ids.filter((id) => id !== l3);
  c.disconnect(l3);
  c.disconnect(others[0]!);
  c.runTicks(60);
  c.checkNoLeader();
  c.connect(others[0]!);
  c.checkOneLeader();
  c.connect(l3);
  c.checkOneLeader();
});

test('many elections: 7 nodes, random 3 disconnected, always one leader', (t) => {
  const c = new Cluster({ n: 7, seed: 3 });
  c.checkOneLeader();
  for (let round = 0; round < 10; round++) {
    const down = new Set<string>();
    while (down.size < 3) down.add(c.ids[randInt(c.rng, 7)]!);
    for (const id of down) c.disconnect(id);
    c.checkOneLeader();
    for (const id of down) c.connect(id);
  }
  t.truthy(c.checkOneLeader());
});

test('pre-vote: a rejoining node that was isolated does not disrupt the leader (term unchanged)', (t) => {
  const c = new Cluster({ n: 3, seed: 4 });
  const leader = c.checkOneLeader();
  const term = c.checkTerms();
  const victim = c.ids.find((id) => id !== leader)!;
  c.disconnect(victim);
  c.runTicks(200); // many election timeouts in isolation
  t.is(c.node(victim).node.raft.term, term, 'pre-vote keeps an isolated node from bumping its term');
  c.connect(victim);
  c.runTicks(20);
  t.is(c.checkOneLeader(), leader);
  t.is(c.checkTerms(), term);
});

test('without pre-vote, an isolated node inflates its term; after it rejoins the cluster recovers', (t) => {
  const c = new Cluster({ n: 3, seed: 5, config: { preVote: false } });
  const leader = c.checkOneLeader();
  const victim = c.ids.find((id) => id !== leader)!;
  c.disconnect(victim);
  c.runTicks(100);
  t.true(c.node(victim).node.raft.term > c.node(leader).node.raft.term);
  c.connect(victim);
  const l2 = c.checkOneLeader();
  // Its higher term deposes the leader (the disruption pre-vote prevents), but one leader emerges.
  t.truthy(l2);
  c.one('after', 3);
});

test('check-quorum: a leader cut off from a majority steps down', (t) => {
  const c = new Cluster({ n: 5, seed: 6 });
  const leader = c.checkOneLeader();
  const others = c.ids.filter((id) => id !== leader);
  c.partition([leader, others[0]!], others.slice(1));
  c.runTicks(40);
  t.not(c.node(leader).node.raft.state, 'leader');
  const l2 = c.checkOneLeader();
  t.true(others.slice(1).includes(l2));
});
