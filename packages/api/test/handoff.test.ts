import test from 'ava';
import { type Task, type TaskState, handoffPending } from '../src/index.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

function task(id: string, desiredState: TaskState, state: TaskState, extra: Partial<Task> = {}): Task {
  const at = iso(NOW);
  return {
    id, meta: { version: 1, createdAt: at, updatedAt: at }, serviceId: 's', serviceName: 'web', slot: 1, nodeId: 'n1',
    spec: { container: { image: 'busybox' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], maxReplicas: 0 }, networks: [], forceUpdate: 0 },
    specVersion: 1, desiredState, status: { state, timestamp: at, message: '' }, networks: [], ...extra,
  };
}

const handoff = { to: 'new', until: iso(NOW + 60_000) };
const old = (desired: TaskState = 'shutdown', state: TaskState = 'running', h: Task['handoff'] | null = handoff) =>
  task('old', desired, state, h ? { handoff: h } : {});
const succ = (state: TaskState, desired: TaskState = 'running', id = 'new') => task(id, desired, state);

const cases: [string, Task, Task | undefined, number, boolean][] = [
  ['successor assigned, before until', old(), succ('assigned'), NOW, true],
  ['successor new (not yet scheduled)', old(), succ('new'), NOW, true],
  ['successor starting', old(), succ('starting'), NOW, true],
  ['one ms before until', old(), succ('preparing'), NOW + 59_999, true],
  ['at until', old(), succ('preparing'), NOW + 60_000, false],
  ['after until', old(), succ('preparing'), NOW + 90_000, false],
  ['successor running', old(), succ('running'), NOW, false],
  ['successor failed', old(), succ('failed'), NOW, false],
  ['successor rejected', old(), succ('rejected'), NOW, false],
  ['successor shut down', old(), succ('shutdown'), NOW, false],
  ['successor no longer wanted (desired shutdown)', old(), succ('assigned', 'shutdown'), NOW, false],
  ['successor deleted', old(), undefined, NOW, false],
  ['successor is another task', old(), succ('assigned', 'running', 'other'), NOW, false],
  ['no handoff', old('shutdown', 'running', null), succ('assigned'), NOW, false],
  ['old task still desired running', old('running'), succ('assigned'), NOW, false],
  ['old task desired remove (slot or service removed)', old('remove'), succ('assigned'), NOW, false],
  ['old task not running (starting)', old('shutdown', 'starting'), succ('assigned'), NOW, false],
  ['old task already stopped', old('shutdown', 'shutdown'), succ('assigned'), NOW, false],
  ['unparsable until', old('shutdown', 'running', { to: 'new', until: 'soon' }), succ('assigned'), NOW, false],
];

for (const [name, t0, s, now, want] of cases) {
  test(`handoffPending: ${name} → ${want}`, (t) => {
    t.is(handoffPending(t0, s, now), want);
  });
}
