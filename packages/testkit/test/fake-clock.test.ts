import test from 'ava';
import { FakeClock } from '../src/index.js';

test('FakeClock: timers fire in due order (ties in creation order), each at its due time', (t) => {
  const c = new FakeClock(1000);
  const seen: string[] = [];
  c.setTimeout(() => seen.push(`b@${c.now()}`), 20);
  c.setTimeout(() => seen.push(`a@${c.now()}`), 10);
  c.setTimeout(() => seen.push(`c@${c.now()}`), 20);
  const gone = c.setTimeout(() => seen.push('cleared'), 5);
  c.clearTimeout(gone);
  t.is(c.nextDueInMs, 10);
  c.advance(25);
  t.deepEqual(seen, ['a@1010', 'b@1020', 'c@1020']);
  t.is(c.now(), 1025);
  t.is(c.pending, 0);
});

test('FakeClock: a timer armed by a firing timer fires in the same advance when it falls due', (t) => {
  const c = new FakeClock(0);
  const seen: number[] = [];
  c.setTimeout(() => {
    seen.push(c.now());
    c.setTimeout(() => seen.push(c.now()), 5);
  }, 5);
  c.advance(9);
  t.deepEqual(seen, [5]);
  c.advance(1);
  t.deepEqual(seen, [5, 10]);
});

test('FakeClock.advanceAsync settles after every step', async (t) => {
  const c = new FakeClock(0);
  let settles = 0;
  await c.advanceAsync(30, async () => void settles++, 10);
  t.is(c.now(), 30);
  t.is(settles, 4);
});
