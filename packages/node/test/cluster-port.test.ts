/**
 * The cluster port's answers about a node's role come from a replica confirmed current (a read
 * barrier through the leader), never from a stale one: a manager that restarted on old data, or is
 * cut off from the leader, must not tell a demoted worker that it is still a manager (the worker
 * would promote itself; found by the cluster harness, `packages/testkit/testdata/membership-stale-manager.txt`).
 */
import test from 'ava';
import { ShoalError, type Node } from '@shoal/api';
import type { Manager } from '@shoal/manager';
import { clusterPortHandler } from '../src/cluster-port.js';
import { ControlRouter } from '../src/control.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A manager whose replica says `node2` is a manager; `confirmed` says whether a read barrier succeeds. */
function staleManager(confirmed: boolean): Manager {
  const node2 = { id: 'node2', role: 'manager', spec: { desiredRole: 'manager', labels: {}, availability: 'active' } } as unknown as Node;
  return {
    cluster: () => undefined,
    onCommit: () => () => {},
    isLeader: () => false,
    node: (id: string) => (id === 'node2' ? node2 : undefined),
    readBarrier: () => (confirmed ? Promise.resolve() : Promise.reject(new Error('no leader'))),
    localDispatcherClient: () => ({}),
  } as unknown as Manager;
}

function handler(m: Manager) {
  const router = new ControlRouter({ nodeId: () => 'node1', manager: () => m, notice: () => undefined, leaderClient: () => { throw new Error('none'); } });
  return clusterPortHandler({ log: quiet, router, leaderClient: () => { throw new Error('none'); }, removedFromRaft: () => {} }, m, 'c1');
}

const peer = { nodeId: 'node2', role: 'worker' as const };

test('node.desiredRole and certificate renewal are refused without a read barrier, answered with one', async (t) => {
  const stale = handler(staleManager(false));
  const e1 = await t.throwsAsync(stale.call('node.desiredRole', {}, peer));
  t.true(e1 instanceof ShoalError && e1.code === 'Unavailable', String(e1));
  t.regex(e1!.message, /cannot confirm it has the current cluster state/);
  const e2 = await t.throwsAsync(stale.call('ca.renewNodeCertificate', { csrPem: 'x' }, peer));
  t.true(e2 instanceof ShoalError && e2.code === 'Unavailable', String(e2));
  const current = handler(staleManager(true));
  t.deepEqual(await current.call('node.desiredRole', {}, peer), { desiredRole: 'manager' });
});
