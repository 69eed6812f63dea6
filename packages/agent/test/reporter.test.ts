import test from 'ava';
import type { TaskState, TaskStatusUpdate } from '@shoal/api';
import { StatusReporter } from '../src/reporter.js';
import { until } from '@shoal/testkit';

const upd = (taskId: string, state: TaskState): TaskStatusUpdate => ({
  taskId,
  status: { state, timestamp: new Date().toISOString(), message: state },
});

test('batches updates into one send, in order', async (t) => {
  const r = new StatusReporter({ batchMs: 5 });
  const sent: TaskStatusUpdate[][] = [];
  r.setSender(async (u) => void sent.push(u));
  await until(() => r.size === 0, 'nothing pending');
  r.push(upd('a', 'accepted'));
  r.push(upd('a', 'preparing'));
  r.push(upd('b', 'accepted'));
  await until(() => sent.length === 1, 'one batch');
  t.deepEqual(sent[0]!.map((u) => `${u.taskId}:${u.status.state}`), ['a:accepted', 'a:preparing', 'b:accepted']);
  r.close();
});

test('drops updates that would move a task backwards', (t) => {
  const r = new StatusReporter();
  t.true(r.push(upd('a', 'running')));
  t.false(r.push(upd('a', 'starting')));
  t.true(r.push(upd('a', 'failed')));
  t.is(r.size, 2);
  r.close();
});

test('keeps updates while there is no session and resends a failed batch', async (t) => {
  const r = new StatusReporter({ batchMs: 5, retryMs: 5 });
  r.push(upd('a', 'accepted'));
  let calls = 0;
  const got: string[] = [];
  r.setSender(async (u) => {
    if (++calls === 1) throw new Error('Unavailable');
    got.push(...u.map((x) => x.status.state));
  });
  r.push(upd('a', 'preparing'));
  await until(() => r.size === 0, 'delivered');
  t.deepEqual(got, ['accepted', 'preparing']);
  t.true(calls >= 2);
  r.close();
});

test('past maxPending only the latest update of each task is kept', (t) => {
  const r = new StatusReporter({ maxPending: 3 });
  r.push(upd('a', 'accepted'));
  r.push(upd('a', 'preparing'));
  r.push(upd('b', 'accepted'));
  r.push(upd('a', 'ready'));
  t.is(r.size, 2);
  r.close();
});
