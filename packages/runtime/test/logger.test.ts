import test from 'ava';
import { FakeClock } from '@shoal/testkit';
import { childLogger, nopLogger, sleep, withTimeout, type Logger } from '../src/index.js';

test('childLogger merges bindings into a logger without child(); the line wins; a lone string is the message', (t) => {
  const lines: [unknown, string | undefined][] = [];
  const base: Logger = { debug() {}, info: (o, m) => void lines.push([o, m]), warn() {}, error() {} };
  const log = childLogger(base, { component: 'x', a: 1 });
  log.info({ a: 2, b: 3 }, 'hello');
  log.info('just a message');
  childLogger(log, { c: 4 }).info({}, 'nested');
  t.deepEqual(lines, [
    [{ component: 'x', a: 2, b: 3 }, 'hello'],
    [{ component: 'x', a: 1 }, 'just a message'],
    [{ component: 'x', a: 1, c: 4 }, 'nested'],
  ]);
});

test('childLogger uses the logger\'s own child() (pino) and keeps nopLogger as is', (t) => {
  let bound: unknown;
  const base: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: (b) => { bound = b; return nopLogger; } };
  t.is(childLogger(base, { component: 'y' }), nopLogger);
  t.deepEqual(bound, { component: 'y' });
  t.is(childLogger(nopLogger, { component: 'z' }), nopLogger);
});

test('sleep and withTimeout run on the given clock', async (t) => {
  const clock = new FakeClock(0);
  let woke = false;
  void sleep(clock, 100).then(() => void (woke = true));
  clock.advance(99);
  await Promise.resolve();
  t.false(woke);
  clock.advance(1);
  await Promise.resolve();
  t.true(woke);
  const never = new Promise<number>(() => {});
  const p = withTimeout(clock, never, 50, 'the call');
  clock.advance(50);
  await t.throwsAsync(p, { message: 'the call timed out after 50 ms' });
  t.is(await withTimeout(clock, Promise.resolve(7), 50, 'quick'), 7);
  t.is(clock.pending, 0, 'the timer of a settled call is cleared');
});
