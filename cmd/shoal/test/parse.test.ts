import test from 'ava';
import {
  UsageError, checkServiceName, parseBytes, parseCount, parseDuration, parseManagerAddr, parseNanoCpus, parsePublish, parseScaleArg, splitServiceCreate, splitWords,
} from '../src/index.js';
import { createSpec, defaultName, updateSpec } from '../src/commands/service.js';
import { checkHost } from '../src/commands/common.js';
import { editDistance, suggestCommands } from '../src/cli.js';
import { tasksFailMessage } from '../src/commands/progress.js';
import { parseTaskFilters } from '../src/commands/tasks.js';
import { summarize } from '../src/commands/progress.js';
import type { Args } from '../src/commands/common.js';
import { service, task } from './fixtures.js';

const usage = (t: import('ava').ExecutionContext, fn: () => unknown, re: RegExp) => {
  const e = t.throws(fn, { instanceOf: UsageError });
  t.regex(e?.message ?? '', re);
  t.false((e?.message ?? '').includes('\n'));
};

test('parseDuration reads Go durations into ms', (t) => {
  t.is(parseDuration('5s', 'x'), 5000);
  t.is(parseDuration('1m30s', 'x'), 90_000);
  t.is(parseDuration('500ms', 'x'), 500);
  t.is(parseDuration('1.5h', 'x'), 5_400_000);
  t.is(parseDuration('0', 'x'), 0);
  t.is(parseDuration('2000us', 'x'), 2);
  usage(t, () => parseDuration('5', '--restart-delay'), /^invalid --restart-delay value "5": missing unit; e\.g\. 5s$/);
  usage(t, () => parseDuration('-1s', '--restart-delay'), /must not be negative/);
  usage(t, () => parseDuration('5x', '--update-delay'), /unknown unit "x"/);
  usage(t, () => parseDuration('soon', '--update-delay'), /expected a duration such as 5s/);
});

test('parseCount accepts whole numbers only', (t) => {
  t.is(parseCount('3', 'replicas'), 3);
  t.is(parseCount('0', 'replicas'), 0);
  usage(t, () => parseCount('abc', 'replicas'), /^invalid replicas value "abc": must be a whole number >= 0$/);
  usage(t, () => parseCount('-1', 'replicas'), /^invalid replicas value "-1": must be a whole number >= 0$/);
  usage(t, () => parseCount('1.5', 'replicas'), /"1\.5"/);
  usage(t, () => parseCount('', 'replicas'), /""/);
});

test('sizes and CPUs', (t) => {
  t.is(parseBytes('512m', 'x'), 512 * 1024 * 1024);
  t.is(parseBytes('1g', 'x'), 1024 ** 3);
  t.is(parseBytes('1.5GB', 'x'), 1.5 * 1024 ** 3);
  t.is(parseBytes('4096', 'x'), 4096);
  usage(t, () => parseBytes('lots', '--reserve-memory'), /invalid --reserve-memory value "lots"/);
  t.is(parseNanoCpus('0.5', 'x'), 5e8);
  usage(t, () => parseNanoCpus('half', '--reserve-cpu'), /--reserve-cpu/);
});

test('parsePublish: short and long forms, ranges, protocols', (t) => {
  t.deepEqual(parsePublish('8080:80'), [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }]);
  t.deepEqual(parsePublish('8080:80/udp'), [{ protocol: 'udp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }]);
  t.deepEqual(parsePublish('80'), [{ protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'ingress' }]);
  t.deepEqual(parsePublish('published=8080,target=80,mode=host,protocol=tcp'), [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'host' }]);
  t.deepEqual(parsePublish('8080-8081:80-81').map((p) => [p.publishedPort, p.targetPort]), [[8080, 80], [8081, 81]]);
  usage(t, () => parsePublish('8080:80/sctp'), /protocol must be tcp or udp/);
  usage(t, () => parsePublish('1.2.3.4:8080:80'), /host IP cannot be given/);
  usage(t, () => parsePublish('published=8080'), /missing target=PORT/);
  usage(t, () => parsePublish('99999:80'), /published port 99999 must be 1-65535/);
  usage(t, () => parsePublish('target=80,mode=bridge'), /mode must be ingress or host/);
  usage(t, () => parsePublish('8080-8082:80-81'), /same length/);
});

test('parseScaleArg needs SERVICE=REPLICAS', (t) => {
  t.deepEqual(parseScaleArg('web=3'), { service: 'web', replicas: 3 });
  usage(t, () => parseScaleArg('web'), /^invalid scale argument "web": expected SERVICE=REPLICAS, e\.g\. web=3$/);
  usage(t, () => parseScaleArg('=3'), /invalid scale argument "=3"/);
  usage(t, () => parseScaleArg('web=x'), /^invalid replicas value "x" for service web: must be a whole number >= 0$/);
  usage(t, () => parseScaleArg('web=-2'), /"-2"/);
});

test('splitWords handles quotes and escapes', (t) => {
  t.deepEqual(splitWords(`httpd -f -p 80`), ['httpd', '-f', '-p', '80']);
  t.deepEqual(splitWords(`sh -c 'echo hi; sleep 1' "a b" c\\ d ''`), ['sh', '-c', 'echo hi; sleep 1', 'a b', 'c d', '']);
  usage(t, () => splitWords(`sh -c 'oops`), /unterminated single quote/);
});

test('splitServiceCreate: words after IMAGE are the command, even flag-like ones', (t) => {
  const g = new Set(['-H', '--host']);
  const b = new Set([...g, '--name', '--replicas', '-e', '--env']);
  t.deepEqual(splitServiceCreate(['service', 'create', '--name', 'web', '-d', 'img', 'httpd', '-f', '-p', '80'], b, g),
    { args: ['service', 'create', '--name', 'web', '-d', 'img'], command: ['httpd', '-f', '-p', '80'] });
  t.deepEqual(splitServiceCreate(['-H', 'unix:///x', 'service', 'create', '--replicas=3', '-dq', 'img', 'top'], b, g),
    { args: ['-H', 'unix:///x', 'service', 'create', '--replicas=3', '-dq', 'img'], command: ['top'] });
  t.deepEqual(splitServiceCreate(['service', 'create', '-e', 'A=1', '--', 'img', '--version'], b, g),
    { args: ['service', 'create', '-e', 'A=1', 'img'], command: ['--version'] });
  t.deepEqual(splitServiceCreate(['service', 'ls', '-q'], b, g), { args: ['service', 'ls', '-q'], command: [] });
  t.deepEqual(splitServiceCreate(['service', 'create', '--name', 'web'], b, g), { args: ['service', 'create', '--name', 'web'], command: [] });
  // An unknown flag does not swallow IMAGE, so the option parser can name it.
  t.deepEqual(splitServiceCreate(['service', 'create', '--no-such-flag', 'img', 'top'], b, g),
    { args: ['service', 'create', '--no-such-flag', 'img'], command: ['top'] });
  t.deepEqual(splitServiceCreate(['service', 'create', '-de', 'A=1', 'img'], b, g), { args: ['service', 'create', '-de', 'A=1', 'img'], command: [] });
});

const args = (o: Record<string, unknown>): Args => ({ _: [], ...o });

test('createSpec maps flags onto ServiceSpecInput', (t) => {
  const spec = createSpec(args({
    image: 'shoal/busybox:latest', name: 'web', replicas: '3', env: ['A=1', 'B=2'], label: 'team=x', 'container-label': ['c=1'],
    constraint: ['node.role==manager'], 'replicas-max-per-node': '2', 'restart-condition': 'on-failure', 'restart-delay': '1s',
    'restart-max-attempts': '4', 'restart-window': '1m', 'stop-grace-period': '3s', publish: ['8080:80', 'published=53,target=53,protocol=udp,mode=host'],
    network: 'net1', 'endpoint-mode': 'vip', hostname: 'h', 'reserve-cpu': '0.25', 'reserve-memory': '64m',
    'update-parallelism': '2', 'update-delay': '10s', 'update-order': 'start-first', 'update-failure-action': 'rollback', 'update-monitor': '2s',
  }), ['httpd', '-f', '-p', '80']);
  t.deepEqual(spec, {
    name: 'web', image: 'shoal/busybox:latest', replicas: 3, args: ['httpd', '-f', '-p', '80'], env: ['A=1', 'B=2'], labels: { team: 'x' },
    containerLabels: { c: '1' }, constraints: ['node.role==manager'], networks: ['net1'],
    ports: [
      { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' },
      { protocol: 'udp', targetPort: 53, publishedPort: 53, publishMode: 'host' },
    ],
    restart: { condition: 'on-failure', delayMs: 1000, maxAttempts: 4, windowMs: 60_000 },
    update: { parallelism: 2, delayMs: 10_000, order: 'start-first', failureAction: 'rollback', monitorMs: 2000 },
    maxReplicasPerNode: 2, stopGracePeriodMs: 3000, hostname: 'h', endpointMode: 'vip', reserveNanoCpus: 2.5e8, reserveMemoryBytes: 64 * 1024 * 1024,
  });
  t.regex(createSpec(args({ image: 'shoal/busybox:latest' }), []).name ?? '', /^busybox-[a-z0-9]{5}$/);
  usage(t, () => createSpec(args({ image: 'img', replicas: 'abc' }), []), /^invalid replicas value "abc": must be a whole number >= 0$/);
  usage(t, () => createSpec(args({ image: 'img', mode: 'global', replicas: '2' }), []), /only be used with replicated mode/);
  usage(t, () => createSpec(args({ image: 'img', mode: 'job' }), []), /invalid --mode value "job": use replicated or global/);
  usage(t, () => createSpec(args({ image: 'img', 'restart-condition': 'always' }), []), /use none, on-failure or any/);
  usage(t, () => createSpec(args({ image: 'img', env: ['=x'] }), []), /invalid --env value "=x"/);
});

test('updateSpec applies -add/-rm flags to the current spec', (t) => {
  const cur = service({ id: 's1', name: 'web', replicas: 2, ports: { mode: 'vip', ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }] } });
  cur.spec.task.container.env = ['A=1', 'B=2'];
  cur.spec.task.placement.constraints = ['node.role==manager'];
  cur.spec.labels = { keep: '1', drop: '2' };
  const spec = updateSpec(args({
    image: 'shoal/busybox:2', replicas: '5', 'env-add': ['B=3', 'C=4'], 'env-rm': 'A', 'label-add': 'new=3', 'label-rm': 'drop',
    'constraint-add': 'node.labels.zone==a', 'constraint-rm': 'node.role == manager', 'publish-add': '9090:90', 'publish-rm': '80',
  }), cur);
  t.deepEqual(spec, {
    image: 'shoal/busybox:2', replicas: 5, env: ['B=3', 'C=4'], labels: { keep: '1', new: '3' }, constraints: ['node.labels.zone==a'],
    ports: [{ protocol: 'tcp', targetPort: 90, publishedPort: 9090, publishMode: 'ingress' }],
  });
  t.deepEqual(updateSpec(args({}), cur), {});
  const global = service({ id: 's2', name: 'g', global: true });
  usage(t, () => updateSpec(args({ replicas: '3' }), global), /replicated mode; g is global/);
});

test('task filters', (t) => {
  t.deepEqual(parseTaskFilters(['desired-state=running', 'name=web.1'], true), { desiredState: 'running', names: ['web.1'], ids: [] });
  usage(t, () => parseTaskFilters(['desired-state=sleeping'], true), /unknown state "sleeping"/);
  usage(t, () => parseTaskFilters(['color=red'], true), /unknown key "color"/);
  usage(t, () => parseTaskFilters(['desired-state'], true), /expected KEY=VALUE/);
});

test('summarize counts current-spec running tasks and spots total failure', (t) => {
  const svc = service({ id: 's', name: 'web', replicas: 2 });
  const at = '2026-01-01T00:00:00.000Z';
  const ok = summarize(svc, [task({ id: 'a', slot: 1, state: 'running', at }), task({ id: 'b', slot: 2, state: 'starting', at })]);
  t.like(ok, { running: 1, desired: 2, converged: false, allFailed: false });
  const done = summarize(svc, [task({ id: 'a', slot: 1, state: 'running', at }), task({ id: 'b', slot: 2, state: 'running', at }), task({ id: 'c', slot: 3, state: 'running', at, desired: 'shutdown' })]);
  t.like(done, { running: 2, desired: 2, converged: true });
  const failed = summarize(svc, [
    task({ id: 'a', slot: 1, state: 'rejected', desired: 'shutdown', at, err: 'No such image: nosuch' }),
    task({ id: 'b', slot: 2, state: 'rejected', desired: 'shutdown', at, err: 'No such image: nosuch' }),
    task({ id: 'c', slot: 1, state: 'pending', at }),
  ]);
  t.like(failed, { running: 0, allFailed: true });
  t.is(failed.errors.get('a'), 'web.1: No such image: nosuch');
  const half = summarize(svc, [task({ id: 'a', slot: 1, state: 'rejected', at, err: 'x' }), task({ id: 'b', slot: 2, state: 'pending', at })]);
  t.false(half.allFailed);
  const old = summarize({ ...svc, specVersion: 2 }, [task({ id: 'a', slot: 1, state: 'running', at, specVersion: 1 })]);
  t.is(old.running, 0);
});

test('summarize: the pending reason of a waiting task; errors only of current-spec tasks', (t) => {
  const svc = { ...service({ id: 's', name: 'web', replicas: 1 }), specVersion: 2 };
  const at = '2026-01-01T00:00:00.000Z';
  const why = 'no suitable node (scheduling constraints not satisfied on 1 node)';
  const s = summarize(svc, [
    task({ id: 'a', slot: 1, state: 'pending', at, err: why, specVersion: 2 }),
    task({ id: 'b', slot: 1, state: 'failed', desired: 'shutdown', at, err: 'task: non-zero exit (1)', specVersion: 1 }),
    task({ id: 'c', slot: 1, state: 'pending', desired: 'shutdown', at, err: why, specVersion: 2 }),
  ]);
  t.deepEqual([...s.pending], [['a', `web.1: pending: ${why}`]], 'only a task still wanted');
  t.deepEqual([...s.errors], [], 'the error of a task of the previous spec is not shown');
  t.like(s, { running: 0, desired: 1, converged: false, allFailed: false });
});

test('createSpec: --health-* flags build the health check; --no-healthcheck disables it', (t) => {
  const spec = createSpec(args({
    image: 'img', name: 'hc', 'health-cmd': 'test -f /tmp/ok', 'health-interval': '1s', 'health-timeout': '500ms',
    'health-start-period': '1m', 'health-retries': '2',
  }), []);
  t.deepEqual(spec.healthcheck, { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, timeoutMs: 500, startPeriodMs: 60_000, retries: 2 });
  t.deepEqual(createSpec(args({ image: 'img', 'health-interval': '5s' }), []).healthcheck, { test: [], intervalMs: 5000 }, 'no --health-cmd: the image\'s test');
  t.deepEqual(createSpec(args({ image: 'img', 'health-retries': '0' }), []).healthcheck, { test: [], retries: 0 });
  t.deepEqual(createSpec(args({ image: 'img', 'no-healthcheck': true }), []).healthcheck, { test: ['NONE'] });
  t.is(createSpec(args({ image: 'img', 'no-healthcheck': false }), []).healthcheck, undefined);
  t.is(createSpec(args({ image: 'img' }), []).healthcheck, undefined);
});

test('health flags: bad values and --no-healthcheck with --health-* are refused in one line', (t) => {
  const bad = (o: Record<string, unknown>, re: RegExp) => usage(t, () => createSpec(args({ image: 'img', ...o }), []), re);
  bad({ 'no-healthcheck': true, 'health-cmd': 'true' }, /^--no-healthcheck conflicts with --health-cmd; give either --no-healthcheck or --health-\* flags$/);
  bad({ 'no-healthcheck': true, 'health-interval': '1s', 'health-retries': '1' }, /^--no-healthcheck conflicts with --health-interval, --health-retries;/);
  bad({ 'health-interval': '-1s' }, /^invalid --health-interval value "-1s": must not be negative$/);
  bad({ 'health-timeout': '5' }, /^invalid --health-timeout value "5": missing unit; e\.g\. 5s$/);
  bad({ 'health-start-period': 'soon' }, /^invalid --health-start-period value "soon"/);
  bad({ 'health-interval': '100us' }, /^invalid --health-interval value "100us": must be 0 \(default\) or at least 1ms$/);
  bad({ 'health-retries': '-1' }, /^invalid --health-retries value "-1": must be a whole number >= 0$/);
  bad({ 'health-retries': 'x' }, /^invalid --health-retries value "x"/);
  usage(t, () => updateSpec(args({ 'no-healthcheck': true, 'health-timeout': '1s' }), service({ id: 's1', name: 'web' })), /^--no-healthcheck conflicts with --health-timeout;/);
});

test('updateSpec: health flags change only the given fields of the current check (Docker\'s merge)', (t) => {
  const cur = service({ id: 's1', name: 'web' });
  cur.spec.task.container.healthcheck = { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, retries: 2 };
  t.deepEqual(updateSpec(args({ 'health-retries': '5' }), cur).healthcheck, { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, retries: 5 });
  t.deepEqual(updateSpec(args({ 'health-cmd': 'true', 'health-timeout': '2s' }), cur).healthcheck, { test: ['CMD-SHELL', 'true'], intervalMs: 1000, timeoutMs: 2000, retries: 2 });
  t.deepEqual(updateSpec(args({ 'health-cmd': '' }), cur).healthcheck, { test: [], intervalMs: 1000, retries: 2 }, 'empty command: the image\'s test');
  t.deepEqual(updateSpec(args({ 'no-healthcheck': true }), cur).healthcheck, { test: ['NONE'] });
  t.is(updateSpec(args({ image: 'img2' }), cur).healthcheck, undefined, 'no health flag: the check is not sent');
  // A disabled check comes back with the image's test unless a command is given.
  cur.spec.task.container.healthcheck = { test: ['NONE'] };
  t.deepEqual(updateSpec(args({ 'health-interval': '3s' }), cur).healthcheck, { test: [], intervalMs: 3000 });
  t.deepEqual(updateSpec(args({ 'health-cmd': 'true' }), cur).healthcheck, { test: ['CMD-SHELL', 'true'] });
  // No check yet: one is made from the flags.
  delete cur.spec.task.container.healthcheck;
  t.deepEqual(updateSpec(args({ 'health-cmd': 'true', 'health-retries': '1' }), cur).healthcheck, { test: ['CMD-SHELL', 'true'], retries: 1 });
});

test('parseDuration refuses what does not fit Go\'s time.Duration (int64 ns), like Docker', (t) => {
  t.is(parseDuration('2562047h47m16.854775807s', '--stop-grace-period'), 9_223_372_036_854, 'the maximum, in whole ms');
  t.is(parseDuration('2562047h', 'x'), 2562047 * 3_600_000);
  t.is(parseDuration('9223372036854775807ns', 'x'), 9_223_372_036_854);
  t.is(parseDuration('1.5s', 'x'), 1500);
  t.is(parseDuration('.5ms', 'x'), 1, '0.5 ms rounds to 1');
  t.is(parseDuration('1500000ns', 'x'), 2);
  const over = /^invalid --stop-grace-period value "[^"]+": longer than the longest duration, 2562047h47m16\.854775807s$/;
  usage(t, () => parseDuration('1000000000h', '--stop-grace-period'), over);
  usage(t, () => parseDuration('2562047h47m16.854775808s', '--stop-grace-period'), over);
  usage(t, () => parseDuration('9223372036854775808ns', '--stop-grace-period'), over);
  usage(t, () => parseDuration('2562048h', '--stop-grace-period'), over);
  usage(t, () => parseDuration('99999999999999999999999s', '--stop-grace-period'), over);
  usage(t, () => parseDuration('s', '--update-delay'), /expected a duration such as 5s/);
  usage(t, () => parseDuration('1.2.3s', '--update-delay'), /expected a duration such as 5s/);
});

test('parsePublish names a bad port as given and the allowed range', (t) => {
  usage(t, () => parsePublish('-1:80'), /^invalid --publish value "-1:80": published port "-1" must be a number 1-65535$/);
  usage(t, () => parsePublish('80:-1'), /^invalid --publish value "80:-1": target port "-1" must be a number 1-65535$/);
  usage(t, () => parsePublish('8080-:80'), /published port "8080-" must be a number 1-65535/);
  usage(t, () => parsePublish('published=-1,target=80'), /published port "-1" must be a number 1-65535/);
  usage(t, () => parsePublish('0:80'), /published port 0 must be 1-65535/);
  t.deepEqual(parsePublish('8000-8001:80-81').map((p) => p.publishedPort), [8000, 8001]);
});

test('service names: SwarmKit\'s rule on the command line, and generated names always follow it', (t) => {
  for (const ok of ['web', 'Web_1', 'a-b_c', 'a'.repeat(63)]) t.is(checkServiceName(ok), ok);
  usage(t, () => checkServiceName('x.y'), /^invalid service name "x\.y": use letters, digits, '-' and '_', starting and ending with a letter or digit, at most 63 characters \(no dots\)$/);
  usage(t, () => checkServiceName('web-'), /^invalid service name "web-": use letters/);
  usage(t, () => checkServiceName('a'.repeat(64)), /has 64 characters; at most 63$/);
  usage(t, () => createSpec({ _: [], image: 'img', name: 'x.y' }, []), /^invalid service name "x\.y"/);
  for (const image of ['shoal/busybox:latest', 'registry.local:5000/team/my.app:1.0', 'x/.hidden', 'x/___', `x/${'a'.repeat(80)}`, 'img@sha256:abc']) {
    const name = defaultName(image);
    t.notThrows(() => checkServiceName(name), `${image} → ${name}`);
  }
  t.regex(defaultName('registry.local:5000/team/my.app:1.0'), /^my-app-[a-z0-9]{5}$/);
});

test('parseManagerAddr: HOST[:PORT], port 2377 by default (Docker)', (t) => {
  t.is(parseManagerAddr('10.0.0.1'), '10.0.0.1:2377');
  t.is(parseManagerAddr('manager-1'), 'manager-1:2377');
  t.is(parseManagerAddr('10.0.0.1:4000'), '10.0.0.1:4000');
  t.is(parseManagerAddr('[fd00::1]'), '[fd00::1]:2377');
  t.is(parseManagerAddr('[fd00::1]:2377'), '[fd00::1]:2377');
  for (const bad of ['', '10.0.0.1:', '10.0.0.1:99999', '10.0.0.1:0', 'tcp://10.0.0.1:2377', 'a b', 'fd00::1']) {
    usage(t, () => parseManagerAddr(bad), /^invalid manager address "[^"]*": expected HOST\[:PORT\], e\.g\. 10\.0\.0\.1 or 10\.0\.0\.1:2377 \(default port 2377\)$/);
  }
});

test('checkHost: only the local unix socket', (t) => {
  for (const ok of ['unix:///run/shoal/shoal.sock', '/run/shoal/shoal.sock', './shoal.sock']) t.is(checkHost(ok), ok);
  for (const bad of ['tcp://1.2.3.4:1', 'ssh://me@host', 'http://x', '1.2.3.4:2375', 'localhost:2375', 'unix://', 'shoal.sock']) {
    usage(t, () => checkHost(bad), new RegExp(`^unsupported host ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: shoal talks to the local shoald over unix:///path only$`));
  }
});

test('unknown commands: the closest ones are suggested', (t) => {
  const service = [['create'], ['ls', 'list'], ['ps'], ['inspect'], ['scale'], ['update'], ['rollback'], ['rm', 'remove']];
  t.is(editDistance('lss', 'ls'), 1);
  t.is(editDistance('', 'ab'), 2);
  t.deepEqual(suggestCommands('lss', service), ['ls']);
  t.deepEqual(suggestCommands('lst', service), ['ls'], 'an alias counts: lst is 1 from list');
  t.deepEqual(suggestCommands('roll', service), ['rollback'], 'a prefix');
  t.deepEqual(suggestCommands('p', service), ['ps']);
  t.deepEqual(suggestCommands('frobnicate', service), []);
  t.deepEqual(suggestCommands('rn', service), ['rm'], 'the closest only');
});

test('tasksFailMessage: one line saying the change was made and what to run next', (t) => {
  t.is(tasksFailMessage('a', 'created', 'task: non-zero exit (1).'),
    "service a was created, but its tasks fail: task: non-zero exit (1). See 'shoal service ps a'; remove it with 'shoal service rm a'");
  t.is(tasksFailMessage('a', 'updated', 'No such image: x'),
    "service a was updated (the update is applied), but its tasks fail: No such image: x. See 'shoal service ps a'; undo it with 'shoal service rollback a'");
  t.regex(tasksFailMessage('a', 'rolled back', ''), /^service a was rolled back, but its tasks fail\. See 'shoal service ps a'$/);
});
