import test from 'ava';
import { FakeClock, FakeMetrics } from '@shoal/testkit';
import { ReconcileLoop, type Logger } from '../src/index.js';

/** A loop whose passes are recorded (at clock time) and can be held open or made to fail. */
function harness(opts: { debounceMs?: number; maxDelayMs?: number; backoff?: { initialMs: number; maxMs: number } } = {}) {
  const clock = new FakeClock(0);
  const passes: number[] = [];
  const warnings: unknown[] = [];
  let fail = 0;
  let hold: Promise<void> | undefined;
  const logger: Logger = { debug() {}, info() {}, warn: (o) => void warnings.push(o), error() {} };
  const loop = new ReconcileLoop(async () => {
    passes.push(clock.now());
    if (hold) await hold;
    if (fail > 0) {
      fail--;
      throw new Error('boom');
    }
  }, { name: 'test', clock, logger, ...opts });
  loop.start();
  return {
    clock, loop, passes, warnings,
    failNext: (n: number) => void (fail = n),
    holdPasses: () => {
      let release!: () => void;
      hold = new Promise((r) => (release = r));
      return () => { hold = undefined; release(); };
    },
  };
}

test('undebounced: a burst of kicks is one pass on the next turn of the event loop', async (t) => {
  const h = harness();
  h.loop.kick();
  h.loop.kick();
  h.loop.kick();
  t.true(h.loop.busy);
  await h.loop.idle();
  t.deepEqual(h.passes, [0]);
});

test('kicks while a pass runs make exactly one more pass follow it; never two at once', async (t) => {
  const h = harness();
  const release = h.holdPasses();
  h.loop.kick();
  await new Promise((r) => setImmediate(r));
  t.is(h.passes.length, 1);
  h.loop.kick();
  h.loop.kick();
  await new Promise((r) => setImmediate(r));
  t.is(h.passes.length, 1, 'no overlap');
  release();
  await h.loop.idle();
  t.is(h.passes.length, 2);
});

test('debounce: the pass runs debounceMs after the first kick; later kicks do not push it back', async (t) => {
  const h = harness({ debounceMs: 100 });
  h.loop.kick();
  h.clock.advance(60);
  h.loop.kick();
  await h.loop.idle();
  t.deepEqual(h.passes, [], 'waiting for the timer counts as idle');
  h.clock.advance(40);
  await h.loop.idle();
  t.deepEqual(h.passes, [100]);
});

test('quiet gap: each kick pushes the pass back to debounceMs, never past maxDelayMs after the first', async (t) => {
  const h = harness({ debounceMs: 10, maxDelayMs: 35 });
  h.loop.kick();
  for (let i = 0; i < 3; i++) {
    h.clock.advance(8);
    h.loop.kick();
    await h.loop.idle();
  }
  t.deepEqual(h.passes, [], '24 ms of kicks 8 ms apart: no quiet gap yet');
  h.clock.advance(8); // 32: kick pushes to min(42, 35)
  h.loop.kick();
  h.clock.advance(3);
  await h.loop.idle();
  t.deepEqual(h.passes, [35]);
});

test('a failing pass is logged and retried with doubling backoff; success resets it', async (t) => {
  const h = harness({ backoff: { initialMs: 50, maxMs: 120 } });
  h.failNext(3);
  h.loop.kick();
  await h.loop.idle();
  t.deepEqual(h.passes, [0]);
  t.true(h.loop.backingOff);
  h.loop.kick(); // absorbed by the backoff
  await h.loop.idle();
  t.is(h.passes.length, 1);
  h.clock.advance(50);
  await h.loop.idle();
  h.clock.advance(100);
  await h.loop.idle();
  h.clock.advance(120); // capped at maxMs
  await h.loop.idle();
  t.deepEqual(h.passes, [0, 50, 150, 270]);
  t.false(h.loop.waiting, 'the fourth pass succeeded: no retry armed');
  t.is(h.warnings.length, 3);
  t.like(h.warnings[0], { err: 'boom', retryInMs: 50 });
  h.failNext(1);
  h.loop.kick();
  await h.loop.idle();
  t.like(h.warnings[3], { retryInMs: 50 }, 'backoff starts over after a success');
});

test('runNow skips the wait and resolves once idle; it runs even on a stopped loop', async (t) => {
  const h = harness({ debounceMs: 1000 });
  h.loop.kick();
  await h.loop.runNow();
  t.deepEqual(h.passes, [0]);
  t.false(h.loop.waiting, 'the debounce timer was cancelled');
  await h.loop.stop();
  h.loop.kick();
  await h.loop.idle();
  t.is(h.passes.length, 1, 'kicks are ignored once stopped');
  await h.loop.runNow();
  t.is(h.passes.length, 2);
});

test('stop cancels waits and resolves after the in-flight pass', async (t) => {
  const h = harness({ debounceMs: 10 });
  const release = h.holdPasses();
  h.loop.kick();
  h.clock.advance(10);
  await new Promise((r) => setImmediate(r));
  h.loop.kick(); // arms a debounce that stop() must cancel
  let stopped = false;
  const p = h.loop.stop().then(() => void (stopped = true));
  await new Promise((r) => setImmediate(r));
  t.false(stopped, 'the pass is still running');
  release();
  await p;
  t.is(h.clock.pending, 0);
  h.clock.advance(100);
  await h.loop.idle();
  t.deepEqual(h.passes, [10]);
});

test('metrics: every pass is timed under the loop name, by result', async (t) => {
  const metrics = new FakeMetrics();
  let fail = true;
  const loop = new ReconcileLoop(() => {
    if (fail) {
      fail = false;
      throw new Error('boom');
    }
  }, { name: 'scheduler', clock: new FakeClock(0), metrics });
  loop.start();
  await loop.runNow();
  await loop.runNow();
  t.is(metrics.observations('shoal_reconcile_pass_duration_seconds', { loop: 'scheduler', result: 'error' }).length, 1);
  const ok = metrics.observations('shoal_reconcile_pass_duration_seconds', { loop: 'scheduler', result: 'ok' });
  t.is(ok.length, 1);
  t.true(ok[0]! >= 0 && ok[0]! < 10, 'seconds');
  await loop.stop();
});
