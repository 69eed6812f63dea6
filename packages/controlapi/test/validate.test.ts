import test from 'ava';
import { ShoalError } from '@shoal/api';
import { checkHealthcheck, normalizeServiceSpec } from '../src/validate.js';

const base = { name: 'web', image: 'shoal/busybox:latest' };

const refused = (t: import('ava').ExecutionContext, fn: () => unknown, re: RegExp) => {
  const e = t.throws(fn, { instanceOf: ShoalError });
  t.is((e as ShoalError | undefined)?.code, 'InvalidArgument');
  t.regex(e?.message ?? '', re);
  t.false((e?.message ?? '').includes('\n'));
};

test('healthcheck: valid forms are kept (known fields only); absent stays absent', (t) => {
  t.is(normalizeServiceSpec(base).task.container.healthcheck, undefined);
  const hc = { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, timeoutMs: 500, startPeriodMs: 0, retries: 2 };
  t.deepEqual(normalizeServiceSpec({ ...base, healthcheck: hc }).task.container.healthcheck, hc);
  t.deepEqual(checkHealthcheck({ test: ['CMD', 'wget', '-q', 'http://localhost/'], extra: 1 }), { test: ['CMD', 'wget', '-q', 'http://localhost/'] });
  t.deepEqual(checkHealthcheck({ test: ['NONE'] }), { test: ['NONE'] });
  t.deepEqual(checkHealthcheck({ test: [], intervalMs: 5000 }), { test: [], intervalMs: 5000 });
});

test('healthcheck: update keeps the current check unless a new one is given', (t) => {
  const cur = normalizeServiceSpec({ ...base, healthcheck: { test: ['CMD-SHELL', 'true'], retries: 1 } });
  t.deepEqual(normalizeServiceSpec({ name: 'web', replicas: 2 } as never, cur).task.container.healthcheck, { test: ['CMD-SHELL', 'true'], retries: 1 });
  t.deepEqual(normalizeServiceSpec({ name: 'web', healthcheck: { test: ['NONE'] } } as never, cur).task.container.healthcheck, { test: ['NONE'] });
});

test('healthcheck: bad values are refused with one line naming the value and the fix', (t) => {
  const bad = (healthcheck: unknown, re: RegExp) => refused(t, () => normalizeServiceSpec({ ...base, healthcheck } as never), re);
  bad({ test: ['CMD-SHELL', 'true'], intervalMs: -1 }, /^invalid healthcheck interval -1: must be a duration in ms >= 0 \(0 = default\)$/);
  bad({ test: ['CMD-SHELL', 'true'], timeoutMs: 'soon' }, /^invalid healthcheck timeout "soon": must be a duration in ms >= 0/);
  bad({ test: ['CMD-SHELL', 'true'], startPeriodMs: 0.5 }, /^invalid healthcheck start period 0\.5 ms: must be 0 \(default\) or at least 1 ms$/);
  bad({ test: ['CMD-SHELL', 'true'], retries: -2 }, /^invalid healthcheck retries -2: must be a whole number >= 0/);
  bad({ test: ['CMD-SHELL', 'true'], retries: 1.5 }, /^invalid healthcheck retries 1\.5: must be a whole number >= 0/);
  bad({ test: ['CMD-SHELL', '  '] }, /^invalid healthcheck test \["CMD-SHELL"," {2}"\]: CMD-SHELL needs a shell command, e\.g\./);
  bad({ test: ['CMD-SHELL'] }, /CMD-SHELL needs a shell command/);
  bad({ test: ['CMD'] }, /^invalid healthcheck test \["CMD"\]: CMD needs a program to run/);
  bad({ test: ['CMD', ''] }, /CMD needs a program to run/);
  bad({ test: ['curl', '-f', 'http://x/'] }, /^invalid healthcheck test \["curl","-f","http:\/\/x\/"\]: the first element must be NONE, CMD or CMD-SHELL/);
  bad({ test: ['NONE', 'x'] }, /\["NONE"\] disables the check and takes no command/);
  bad({ test: ['NONE'], intervalMs: 1000 }, /test \["NONE"\] disables the check; drop its interval/);
  bad({ test: 'true' }, /^invalid healthcheck test "true": must be a list of strings/);
  bad(['CMD-SHELL', 'true'], /^invalid healthcheck \["CMD-SHELL","true"\]: expected an object/);
});

test('update and rollback configs: bad parallelism, ratio, order and failure action are refused in one line', (t) => {
  t.notThrows(() => normalizeServiceSpec({ ...base, update: { parallelism: 2, order: 'start-first', failureAction: 'rollback', maxFailureRatio: 0.5 } }));
  refused(t, () => normalizeServiceSpec({ ...base, update: { parallelism: -1 } }), /invalid update parallelism -1: must be a whole number >= 0/);
  refused(t, () => normalizeServiceSpec({ ...base, update: { parallelism: 1.5 } }), /invalid update parallelism 1\.5/);
  refused(t, () => normalizeServiceSpec({ ...base, update: { maxFailureRatio: 2 } }), /invalid update max failure ratio 2: must be a number from 0 to 1/);
  refused(t, () => normalizeServiceSpec({ ...base, update: { order: 'sideways' as never } }), /invalid update order "sideways": must be stop-first or start-first/);
  refused(t, () => normalizeServiceSpec({ ...base, update: { failureAction: 'explode' as never } }), /invalid update failure action "explode": must be pause, continue or rollback/);
  refused(t, () => normalizeServiceSpec({ ...base, rollback: { failureAction: 'rollback' } }), /invalid rollback failure action "rollback": must be pause or continue/);
});
