import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Service, Task } from '@shoal/api';
import { UsageError, rewriteCreateHost, serviceTable, splitCsv } from '../src/index.js';
import { parseExtraHost, parseMount, parseUlimit, readEnvFile } from '../src/parse/options.js';
import { summarizeJob } from '../src/commands/progress.js';
import { prettyService } from '../src/format/pretty.js';
import { oneLineError, shoal, withDaemon } from './fake-daemon.js';
import { service, task } from './fixtures.js';

const usage = (t: import('ava').ExecutionContext, fn: () => unknown, re: RegExp) => {
  const e = t.throws(fn, { instanceOf: UsageError });
  t.regex(e?.message ?? '', re);
  t.false((e?.message ?? '').includes('\n'));
};

test('parseMount: Docker\'s CSV syntax, aliases, defaults and options per type', (t) => {
  t.deepEqual(parseMount('type=volume,source=data,target=/data'), { type: 'volume', source: 'data', target: '/data' });
  t.deepEqual(parseMount('src=data,dst=/data,ro'), { type: 'volume', source: 'data', target: '/data', readOnly: true }, 'type defaults to volume');
  t.deepEqual(parseMount('type=volume,target=/anon'), { type: 'volume', target: '/anon' });
  t.deepEqual(parseMount('type=bind,source=/srv,destination=/srv,readonly=false,bind-propagation=rshared'),
    { type: 'bind', source: '/srv', target: '/srv', readOnly: false, bindOptions: { propagation: 'rshared' } });
  t.deepEqual(parseMount('type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777'), { type: 'tmpfs', target: '/t', tmpfsOptions: { sizeBytes: 64 << 20, mode: 0o1777 } });
  t.deepEqual(parseMount('type=volume,source=db,target=/db,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=app=db,volume-nocopy'), {
    type: 'volume', source: 'db', target: '/db',
    volumeOptions: { driverConfig: { name: 'local', options: { type: 'tmpfs', device: 'tmpfs' } }, labels: { app: 'db' }, noCopy: true },
  });
  t.deepEqual(parseMount('"type=bind","source=/a,b",target=/x'), { type: 'bind', source: '/a,b', target: '/x' }, 'quoted CSV fields');
  t.deepEqual(splitCsv('a="x,y",b', '--mount'), ['a=x,y', 'b']);
});

test('parseMount: each malformed value is one line naming the flag, the value and the fix', (t) => {
  usage(t, () => parseMount('type=nfs,target=/x'), /^invalid --mount value "type=nfs,target=\/x": unknown mount type "nfs"; use volume, bind or tmpfs$/);
  usage(t, () => parseMount('type=volume,source=data'), /^invalid --mount value "type=volume,source=data": missing target: give the path in the container, e\.g\. target=\/data$/);
  usage(t, () => parseMount('type=bind,target=/x'), /a bind mount needs a source/);
  usage(t, () => parseMount('type=volume,target=/x,tmpfs-size=1m'), /cannot mix 'tmpfs-\*' options with mount type 'volume'/);
  usage(t, () => parseMount('type=tmpfs,target=/x,tmpfs-size=12XB'), /tmpfs-size=12XB is not a size/);
  usage(t, () => parseMount('type=tmpfs,target=/x,tmpfs-mode=999'), /tmpfs-mode=999 is not an octal file mode/);
  usage(t, () => parseMount('type=volume,target=/x,size=1'), /unknown option 'size'/);
  usage(t, () => parseMount('type=volume,target=/x,readonly=maybe'), /readonly=maybe: use true, 1, false or 0/);
  usage(t, () => parseMount('target'), /'target' must be a key=value pair/);
  usage(t, () => parseMount('type=volume,target='), /target has an empty value/);
  usage(t, () => parseMount('', '--mount-add'), /^invalid --mount-add value "": empty/);
});

test('ulimits and extra hosts', (t) => {
  t.deepEqual(parseUlimit('nofile=1024:2048'), { name: 'nofile', soft: 1024, hard: 2048 });
  t.deepEqual(parseUlimit('nproc=64'), { name: 'nproc', soft: 64, hard: 64 });
  t.deepEqual(parseUlimit('core=-1:-1'), { name: 'core', soft: -1, hard: -1 });
  usage(t, () => parseUlimit('nofile=abc'), /^invalid --ulimit value "nofile=abc": soft limit "abc" must be a whole number; e\.g\. nofile=1024:2048$/);
  usage(t, () => parseUlimit('files=1'), /unknown ulimit "files"/);
  usage(t, () => parseUlimit('nofile=10:5'), /soft limit 10 is above the hard limit 5/);
  t.is(parseExtraHost('db:10.0.0.5'), '10.0.0.5 db');
  t.is(parseExtraHost('v6=fe80::1'), 'fe80::1 v6');
  t.is(parseExtraHost('v6:[::1]'), '::1 v6');
  usage(t, () => parseExtraHost('unix:///run/shoal.sock'), /expected HOST:IP, e\.g\. db:10\.0\.0\.5 \(the daemon address is -H, before the command\)/);
});

test('readEnvFile names a missing file (in-process: Node 20 itself exits on a missing --env-file anywhere in argv)', (t) => {
  usage(t, () => readEnvFile('/nonexistent/env'), /^invalid --env-file value "\/nonexistent\/env": no such file$/);
});

test('--host after "service create" is an extra host; -H and a --host before the command stay the daemon address', (t) => {
  const vf = new Set(['-H', '--host', '--name', '-e']);
  const g = new Set(['-H', '--host']);
  t.deepEqual(rewriteCreateHost(['service', 'create', '--host', 'db:1.2.3.4', '--name', '--host', 'img', '--host', 'x'], vf, g),
    ['service', 'create', '--add-host', 'db:1.2.3.4', '--name', '--host', 'img', '--host', 'x'], 'a value and words after IMAGE are left alone');
  t.deepEqual(rewriteCreateHost(['--host', 'unix:///s', 'service', 'create', '--host=db:1.2.3.4', 'img'], vf, g), ['--host', 'unix:///s', 'service', 'create', '--add-host=db:1.2.3.4', 'img']);
  t.deepEqual(rewriteCreateHost(['service', 'ls', '--host', 'unix:///s'], vf, g), ['service', 'ls', '--host', 'unix:///s']);
});

const FULL = [
  '--mount', 'type=volume,source=data,target=/data', '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m',
  '--limit-cpu', '0.5', '--limit-memory', '64m', '--limit-pids', '100', '--reserve-cpu', '0.25',
  '-w', '/app', '-u', '1000:1000', '--group', '1234', '--init', '-t', '--read-only', '--stop-signal', 'SIGINT',
  '--cap-add', 'net_admin', '--cap-drop', 'MKNOD', '--sysctl', 'net.core.somaxconn=1024', '--ulimit', 'nofile=1024:2048',
  '--dns', '10.0.0.2', '--dns-option', 'ndots:2', '--dns-search', 'example.com', '--host', 'db:10.0.0.5',
  '--log-driver', 'json-file', '--log-opt', 'max-size=1m', '--placement-pref', 'spread=node.labels.zone', '--generic-resource', 'gpu=1',
  '--isolation', 'default',
];

test('service create sends every runtime option in the contract\'s fields', async (t) => {
  await withDaemon({ 'service.create': () => ({ id: 'svc1' }) }, async (d) => {
    const r = await shoal(['service', 'create', '-d', '--name', 'web', ...FULL, 'shoal/busybox:latest', 'top', '--host', 'h'], d.host);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(d.calls.at(-1)!.params, {
      name: 'web', image: 'shoal/busybox:latest', args: ['top', '--host', 'h'], reserveNanoCpus: 2.5e8,
      mounts: [{ type: 'volume', source: 'data', target: '/data' }, { type: 'tmpfs', target: '/t', tmpfsOptions: { sizeBytes: 1 << 20 } }],
      limitNanoCpus: 5e8, limitMemoryBytes: 64 << 20, limitPids: 100, dir: '/app', user: '1000:1000', groups: ['1234'], init: true, tty: true, readOnly: true,
      stopSignal: 'SIGINT', capAdd: ['CAP_NET_ADMIN'], capDrop: ['CAP_MKNOD'], sysctls: { 'net.core.somaxconn': '1024' },
      ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }], dns: ['10.0.0.2'], dnsOptions: ['ndots:2'], dnsSearch: ['example.com'],
      hosts: ['10.0.0.5 db'], logDriver: { name: 'json-file', options: { 'max-size': '1m' } },
      placementPreferences: [{ spread: 'node.labels.zone' }], genericResources: [{ kind: 'gpu', value: 1 }],
    });
    // -H is still the daemon address, next to --host as an extra host.
    const h = await shoal(['-H', d.host, 'service', 'create', '-d', '--host', 'db:10.0.0.6', 'img'], 'unix:///nonexistent/shoal.sock');
    t.is(h.code, 0, h.stderr);
    t.like(d.calls.at(-1)!.params, { hosts: ['10.0.0.6 db'] });
  });
});

test('service create: jobs and --env-file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-env-'));
  const file = join(dir, 'env');
  writeFileSync(file, '# comment\nA=1\n\n  B=from-file\nC=3\n');
  try {
    await withDaemon({ 'service.create': () => ({ id: 'svc1' }) }, async (d) => {
      const r = await shoal(['service', 'create', '-d', '--name', 'j', '--mode', 'replicated-job', '--replicas', '6', '--max-concurrent', '2', '--env-file', file, '-e', 'B=flag', 'img'], d.host);
      t.is(r.code, 0, r.stderr);
      t.deepEqual(d.calls.at(-1)!.params, { name: 'j', image: 'img', mode: 'replicated-job', replicas: 6, maxConcurrent: 2, env: ['A=1', 'C=3', 'B=flag'] });
      const g = await shoal(['service', 'create', '-d', '--name', 'g', '--mode', 'global-job', 'img'], d.host);
      t.is(g.code, 0, g.stderr);
      t.like(d.calls.at(-1)!.params, { mode: 'global-job' });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input: one line naming the flag, the value and the fix; exit 1; nothing sent', async (t) => {
  await withDaemon({}, async (d) => {
    const cases: [string[], string | RegExp][] = [
      [['--mount', 'type=nfs,target=/x'], 'invalid --mount value "type=nfs,target=/x": unknown mount type "nfs"; use volume, bind or tmpfs'],
      [['--mount', 'type=volume,source=x'], 'invalid --mount value "type=volume,source=x": missing target: give the path in the container, e.g. target=/data'],
      [['--limit-memory', '12XB'], 'invalid --limit-memory value "12XB": expected a size such as 512m or 1g'],
      [['--limit-cpu', 'two'], /^Error: invalid --limit-cpu value "two": expected a number of CPUs/],
      [['--limit-pids', '-1'], 'invalid --limit-pids value "-1": must be a whole number >= 0'],
      [['--ulimit', 'nofile=abc'], 'invalid --ulimit value "nofile=abc": soft limit "abc" must be a whole number; e.g. nofile=1024:2048'],
      [['--max-concurrent', '2'], '--max-concurrent can only be used with replicated-job mode; add --mode replicated-job'],
      [['--mode', 'global-job', '--replicas', '2'], '--replicas can only be used with replicated or replicated-job mode'],
      [['--mode', 'replicated-job', '--update-parallelism', '2'], 'update and rollback configuration is not supported for jobs'],
      [['--mode', 'batch'], 'invalid --mode value "batch": use replicated, global, replicated-job or global-job'],
      [['--isolation', 'hyperv'], /^Error: invalid --isolation value "hyperv": process and hyperv isolation are Windows-only/],
      [['--credential-spec', 'file://x.json'], /^Error: --credential-spec is Windows-only/],
      [['--host', 'db'], /^Error: invalid --host value "db": expected HOST:IP/],
      [['--sysctl', 'vm.swappiness=1'], /^Error: invalid --sysctl value "vm\.swappiness=1": sysctl "vm\.swappiness" is not allowed in a container/],
      [['--cap-add', 'FLY'], /^Error: invalid --cap-add value "FLY": unknown capability "CAP_FLY"/],
      [['--placement-pref', 'pack=node.labels.zone'], /^Error: invalid --placement-pref value "pack=node\.labels\.zone": unsupported placement preference pack \(only spread is supported\)/],
      [['--generic-resource', 'gpu'], /^Error: invalid --generic-resource value "gpu": expected KIND=COUNT/],
      [['--stop-signal', 'SIGFOO'], /^Error: invalid --stop-signal value "SIGFOO": use a signal name such as SIGTERM/],
      [['--dns', 'ns.example.com'], /^Error: invalid --dns value "ns\.example\.com": expected the IP address of a name server/],
      [['--log-opt', 'max-size=1m'], /^Error: --log-opt needs --log-driver/],
      [['--workdir', 'app'], 'invalid --workdir value "app": must be an absolute path in the container, e.g. /app'],
      [['--mount', 'type=tmpfs,target=/x', '--mount', 'type=volume,target=/x'], /target \/x is mounted twice/],
    ];
    for (const [flags, expected] of cases) oneLineError(t, await shoal(['service', 'create', ...flags, 'img'], d.host), expected);
    t.deepEqual(d.methods(), []);
  });
});

test('service update: -add/-rm forms against the current service; only what changes is sent', async (t) => {
  const svc = service({ id: 'svc1', name: 'web' });
  svc.meta.version = 7;
  const c = svc.spec.task.container;
  c.mounts = [{ type: 'volume', source: 'data', target: '/data' }, { type: 'tmpfs', target: '/t' }];
  c.capabilityAdd = ['CAP_NET_ADMIN'];
  c.capabilityDrop = ['CAP_MKNOD'];
  c.ulimits = [{ name: 'nofile', soft: 1, hard: 2 }];
  c.sysctls = { 'net.a': '1' };
  c.hosts = ['10.0.0.5 db cache'];
  c.dnsConfig = { nameservers: ['10.0.0.2'] };
  c.groups = ['1'];
  svc.spec.task.placement.preferences = [{ spread: 'node.labels.zone' }];
  svc.spec.task.resources = { reservations: { genericResources: [{ kind: 'gpu', value: 1 }] } };
  await withDaemon({ 'service.inspect': () => svc, 'service.update': () => ({ id: 'svc1' }) }, async (d) => {
    const r = await shoal(['service', 'update', '-d',
      '--mount-rm', '/t', '--mount-add', 'type=bind,source=/srv,target=/srv', '--cap-add', 'mknod', '--cap-drop', 'NET_ADMIN', '--cap-drop', 'SYS_TIME',
      '--ulimit-add', 'nproc=5', '--ulimit-rm', 'nofile', '--sysctl-add', 'net.b=2', '--sysctl-rm', 'net.a', '--host-rm', 'cache', '--host-add', 'api:10.0.0.9',
      '--dns-add', '10.0.0.3', '--dns-rm', '10.0.0.2', '--group-add', '2', '--placement-pref-rm', 'spread=node.labels.zone', '--placement-pref-add', 'spread=node.labels.rack',
      '--generic-resource-rm', 'gpu', '--generic-resource-add', 'fpga=2', '--limit-memory', '1g', '--init=false', '--read-only', 'web'], d.host);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(d.calls.at(-1), {
      method: 'service.update',
      params: {
        ref: 'svc1', version: 7,
        spec: {
          limitMemoryBytes: 1 << 30, init: false, readOnly: true,
          mounts: [{ type: 'bind', source: '/srv', target: '/srv' }, { type: 'volume', source: 'data', target: '/data' }], // Docker sorts by source
          placementPreferences: [{ spread: 'node.labels.rack' }], groups: ['1', '2'], dns: ['10.0.0.3'],
          hosts: ['10.0.0.5 db', '10.0.0.9 api'], sysctls: { 'net.b': '2' }, ulimits: [{ name: 'nproc', soft: 5, hard: 5 }],
          genericResources: [{ kind: 'fpga', value: 2 }], capAdd: [], capDrop: ['CAP_SYS_TIME'],
        },
      },
    });
    const sent = d.calls.length;
    oneLineError(t, await shoal(['service', 'update', '--max-concurrent', '3', 'web'], d.host), '--max-concurrent can only be used with replicated-job mode; web is not a replicated job');
    oneLineError(t, await shoal(['service', 'update', '--mount-add', 'type=volume,source=x', 'web'], d.host), /^Error: invalid --mount-add value "type=volume,source=x": missing target/);
    t.deepEqual(d.calls.slice(sent).map((x) => x.method), ['service.inspect', 'service.inspect']);
  });
});

const at = '2026-01-01T00:00:00.000Z';
function jobTask(id: string, slot: number, state: Task['status']['state'], iteration = 1): Task {
  const t = task({ id, slot, state, at, desired: state === 'complete' ? 'complete' : 'running' });
  t.jobIteration = iteration;
  return t;
}

test('service ls shows jobs as Docker does: MODE "replicated job", REPLICAS "r/d (c/total completed)"', (t) => {
  const job = service({ id: 'j1', name: 'batch' });
  job.spec.mode = { replicatedJob: { maxConcurrent: 2, totalCompletions: 6 } };
  const g = service({ id: 'g1', name: 'once' });
  g.spec.mode = { globalJob: {} };
  const out = serviceTable([{ service: job, running: 2, desired: 2, completed: 3 }, { service: g, running: 1, desired: 2, completed: 1 }]);
  t.regex(out, /^j1 +batch +replicated job +2\/2 \(3\/6 completed\) +shoal\/busybox:latest/m);
  t.regex(out, /^g1 +once +global job +1\/2 \(1\/3 completed\)/m);
});

test('job progress: counts the current run only; stuck when every unfinished slot failed for good', (t) => {
  const job = service({ id: 'j1', name: 'batch' });
  job.spec.mode = { replicatedJob: { maxConcurrent: 2, totalCompletions: 3 } };
  job.jobStatus = { jobIteration: 1, lastExecution: at };
  const ts = [jobTask('a', 1, 'complete', 0), jobTask('b', 1, 'complete'), jobTask('c', 2, 'running')];
  t.like(summarizeJob(job, ts), { completed: 1, total: 3, running: 1, concurrent: 2, stuck: false });
  const failed = jobTask('d', 3, 'failed');
  failed.desiredState = 'shutdown';
  failed.status.err = 'task: non-zero exit (1); not restarted: restart limit reached (1 of 1 attempts used)';
  const done = jobTask('c', 2, 'complete');
  t.like(summarizeJob(job, [ts[1]!, done, failed]), { completed: 2, stuck: true });
});

test('service inspect --pretty shows the runtime options', (t) => {
  const s: Service = service({ id: 's1', name: 'web' });
  const c = s.spec.task.container;
  Object.assign(c, {
    dir: '/app', init: true, user: '1000', capabilityAdd: ['CAP_NET_ADMIN'], sysctls: { 'net.core.somaxconn': '1024' },
    ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }], mounts: [{ type: 'volume', source: 'data', target: '/data', readOnly: true }],
    hosts: ['10.0.0.5 db'], dnsConfig: { nameservers: ['10.0.0.2'] },
  });
  s.spec.task.resources = { limits: { memoryBytes: 64 << 20, nanoCpus: 5e8, pids: 10 } };
  s.spec.task.logDriver = { name: 'json-file', options: { 'max-size': '1m' } };
  s.spec.task.placement.preferences = [{ spread: 'node.labels.zone' }];
  const out = prettyService(s);
  for (const re of [
    /^ Preferences: +\[spread=node\.labels\.zone\]$/m, /^ Dir: +\/app$/m, /^ Init: +true$/m, /^ User: +1000$/m, /^ DNS: +10\.0\.0\.2$/m, /^ Hosts: +10\.0\.0\.5 db$/m,
    /^Capabilities:\n Add: +CAP_NET_ADMIN$/m, /^SysCtls:\n net\.core\.somaxconn: +1024$/m, /^Ulimits:\n nofile: +1024:2048$/m,
    /^Mounts:\n Target: +\/data\n {2}Source: +data\n {2}ReadOnly: +true\n {2}Type: +volume$/m,
    /^ Limits:\n {2}CPU: +0\.5\n {2}Memory: +64MiB\n {2}PIDs: +10$/m, /^Log Driver:\n Name: +json-file\n LogOpts:\n {2}max-size: +1m$/m,
  ]) t.regex(out, re);
  const job = service({ id: 'j1', name: 'batch' });
  job.spec.mode = { replicatedJob: { maxConcurrent: 2, totalCompletions: 6 } };
  t.regex(prettyService(job), /^Service Mode: +Replicated Job\n Max Concurrent: +2\n Total Completions: +6$/m);
});
