import test from 'ava';
import { type RestartPolicy, type Service, type Task, DEFAULTS, newId, taskStateRank } from '@shoal/api';
import { FakeCluster, node, serviceSpec } from './helpers.js';

const meta0 = () => ({ version: 0, createdAt: '', updatedAt: '' });

async function createJob(c: FakeCluster, name: string, mode: Service['spec']['mode'], restart: Partial<RestartPolicy> = {}): Promise<string> {
  const id = newId();
  const spec = serviceSpec(name, { restart });
  spec.mode = mode;
  await c.store.update((tx) => tx.create('services', { id, meta: meta0(), spec, specVersion: 1, jobStatus: { jobIteration: 0, lastExecution: '' } }));
  await c.settle();
  return id;
}

/** Like controlapi's update of a job: a new iteration every time. */
async function rerun(c: FakeCluster, id: string): Promise<void> {
  await c.updateService(id, (s) => { s.jobStatus = { jobIteration: s.jobStatus!.jobIteration + 1, lastExecution: '' }; });
}

const active = (ts: Task[]) => ts.filter((t) => t.desiredState === 'running' && t.status.state !== 'complete');
const ofRun = (c: FakeCluster, id: string) => c.tasks(id).filter((t) => t.jobIteration === c.service(id)!.jobStatus!.jobIteration);

test('replicated job: 6 completions, never more than 2 at once, ends with 6 Complete', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await createJob(c, 'batch', { replicatedJob: { maxConcurrent: 2, totalCompletions: 6 } });
  let peak = 0;
  c.store.watch((ev) => {
    if (ev.kind === 'commit') peak = Math.max(peak, active(c.tasks(id)).length);
  });
  for (let round = 0; round < 10; round++) {
    await c.converge();
    const running = c.tasks(id).filter((x) => x.status.state === 'running');
    if (running.length === 0) break;
    for (const r of running) await c.end(r.id, 'complete', 0);
  }
  const ts = c.tasks(id);
  t.is(ts.length, 6);
  t.true(ts.every((x) => x.status.state === 'complete' && x.desiredState === 'complete' && x.jobIteration === 0));
  t.deepEqual(ts.map((x) => x.slot).sort(), [1, 2, 3, 4, 5, 6]);
  t.true(peak <= 2, `at most 2 tasks active at once (saw ${peak})`);
  await c.advance(60_000);
  t.is(c.tasks(id).length, 6, 'a finished job makes no more tasks');
});

test('replicated job: a failed task is retried in its slot after the restart delay; a completed one never', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await createJob(c, 'batch', { replicatedJob: { maxConcurrent: 1, totalCompletions: 1 } }, { condition: 'any', delayMs: 5000 });
  await c.converge();
  const [first] = c.tasks(id);
  await c.end(first!.id, 'failed', 3);
  t.is(c.tasks(id).length, 1, 'no replacement before the delay');
  t.is(c.tasks(id)[0]!.desiredState, 'shutdown');
  await c.advance(5000);
  const retry = c.desiredRunning(id);
  t.is(retry.length, 1);
  t.is(retry[0]!.slot, 1);
  t.not(retry[0]!.id, first!.id);
  await c.converge();
  await c.end(retry[0]!.id, 'complete', 0);
  await c.advance(10_000);
  t.is(c.tasks(id).length, 2);
  t.is(c.desiredRunning(id).length, 0, 'condition any acts as on-failure for jobs');
});

test('replicated job: max attempts used up leaves the slot failed, with the reason in its error', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await createJob(c, 'batch', { replicatedJob: { maxConcurrent: 1, totalCompletions: 2 } }, { condition: 'on-failure', delayMs: 0, maxAttempts: 1 });
  await c.converge();
  const a = c.desiredRunning(id)[0]!;
  await c.end(a.id, 'failed');
  await c.converge();
  const b = c.desiredRunning(id)[0]!;
  t.is(b.slot, a.slot, 'one retry in the same slot');
  await c.end(b.id, 'failed');
  await c.converge();
  const slot1 = c.tasks(id).filter((x) => x.slot === a.slot);
  t.is(slot1.length, 2, 'no second retry');
  t.regex(slot1.find((x) => x.id === b.id)!.status.err ?? '', /not restarted: restart limit reached/);
  // The other completion still runs: a failed slot does not block the rest of the job.
  const other = c.desiredRunning(id);
  t.is(other.length, 1);
  t.is(other[0]!.slot, 2);
});

test('replicated job: a task on a node that goes down is replaced at once in its slot', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2')]);
  const id = await createJob(c, 'batch', { replicatedJob: { maxConcurrent: 2, totalCompletions: 2 } });
  await c.converge();
  const onN1 = c.desiredRunning(id).find((x) => x.nodeId === 'n1')!;
  await c.updateNode('n1', (n) => { n.status.state = 'down'; });
  const now = c.desiredRunning(id);
  t.is(now.length, 2);
  t.true(now.some((x) => x.slot === onN1.slot && x.id !== onN1.id && x.nodeId === ''));
});

test('service update re-runs a job: tasks of the old run still running are removed, a new run starts', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await createJob(c, 'batch', { replicatedJob: { maxConcurrent: 2, totalCompletions: 3 } });
  await c.converge();
  const [x1, x2] = c.desiredRunning(id);
  await c.end(x1!.id, 'complete', 0);
  await c.converge();
  await rerun(c, id);
  const old = c.tasks(id).filter((x) => x.jobIteration === 0);
  t.is(old.find((x) => x.id === x1!.id)!.desiredState, 'complete', 'finished tasks stay as history');
  t.is(old.find((x) => x.id === x2!.id)!.desiredState, 'remove', 'a task of the old run that still runs is stopped');
  const fresh = ofRun(c, id);
  t.is(fresh.length, 2);
  t.true(fresh.every((x) => x.desiredState === 'running' && x.jobIteration === 1));
});

test('global job: one run per node, a completed node gets no other task, a node that joins later gets one', async (t) => {
  const c = await new FakeCluster().init([node('n1'), node('n2'), node('n3', { availability: 'drain' })]);
  const id = await createJob(c, 'migrate', { globalJob: {} });
  t.deepEqual(c.desiredRunning(id).map((x) => x.nodeId).sort(), ['n1', 'n2']);
  await c.converge();
  for (const x of c.desiredRunning(id)) await c.end(x.id, 'complete', 0);
  await c.converge();
  t.is(c.desiredRunning(id).length, 0);
  t.true(c.tasks(id).every((x) => x.desiredState === 'complete'));
  await c.addNode(node('n4'));
  const late = c.desiredRunning(id);
  t.deepEqual(late.map((x) => x.nodeId), ['n4']);
  t.is(late[0]!.slot, 0);
  await c.converge();
  await c.end(late[0]!.id, 'complete', 0);
  t.is(c.tasks(id).length, 3);
  await rerun(c, id);
  t.deepEqual(c.desiredRunning(id).map((x) => x.nodeId).sort(), ['n1', 'n2', 'n4'], 'an update runs the job again on every node');
});

test('global job: a failed task is retried on its own node after the delay', async (t) => {
  const c = await new FakeCluster().init([node('n1')]);
  const id = await createJob(c, 'migrate', { globalJob: {} }, { delayMs: DEFAULTS.restart.delayMs });
  await c.converge();
  const a = c.desiredRunning(id)[0]!;
  await c.end(a.id, 'failed');
  t.is(c.desiredRunning(id).length, 0);
  await c.advance(DEFAULTS.restart.delayMs);
  const b = c.desiredRunning(id);
  t.is(b.length, 1);
  t.is(b[0]!.nodeId, 'n1');
  t.true(taskStateRank(c.tasks(id).find((x) => x.id === a.id)!.desiredState) >= taskStateRank('shutdown'));
});
