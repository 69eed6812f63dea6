import test from 'ava';
import { ShoalError, type ServiceSpecInput } from '@shoal/api';
import { checkParams } from '@shoal/api/check';
import { newTestStore } from '@shoal/testkit';
import { ControlApi } from '../src/index.js';
import { normalizeServiceSpec } from '../src/validate.js';

const base = { name: 'web', image: 'shoal/busybox:latest' };
const spec = (extra: Partial<ServiceSpecInput>) => normalizeServiceSpec({ ...base, ...extra } as ServiceSpecInput);

const refused = (t: import('ava').ExecutionContext, extra: Record<string, unknown>, re: RegExp) => {
  const e = t.throws(() => spec(extra as Partial<ServiceSpecInput>), { instanceOf: ShoalError });
  t.is((e as ShoalError | undefined)?.code, 'InvalidArgument');
  t.regex(e?.message ?? '', re);
  t.false((e?.message ?? '').includes('\n'));
};

test('mounts: the three types are kept as given; templates in source and target are allowed', (t) => {
  const mounts = [
    { type: 'volume', source: 'data-{{.Task.Slot}}', target: '/data', volumeOptions: { noCopy: true, labels: { a: 'b' }, driverConfig: { name: 'local', options: { type: 'tmpfs' } } } },
    { type: 'bind', source: '/srv/conf', target: '/conf', readOnly: true, bindOptions: { propagation: 'rslave' } },
    { type: 'tmpfs', target: '/scratch', tmpfsOptions: { sizeBytes: 1 << 20, mode: 0o1777 } },
    { type: 'volume', target: '/anon' },
  ] as const;
  t.deepEqual(spec({ mounts: mounts as never }).task.container.mounts, mounts as never);
  t.is(spec({}).task.container.mounts, undefined);
});

test('mounts: every bad value is one line naming the mount and the fix', (t) => {
  refused(t, { mounts: [{ type: 'nfs', target: '/x' }] }, /^invalid mount 1 \(type=nfs,target=\/x\): unknown mount type "nfs"; use volume, bind or tmpfs$/);
  refused(t, { mounts: [{ type: 'volume', source: 'v' }] }, /^invalid mount 1 \(type=volume,source=v\): missing target: give the path in the container, e\.g\. target=\/data$/);
  refused(t, { mounts: [{ type: 'volume', target: 'data' }] }, /invalid target "data": must be an absolute path/);
  refused(t, { mounts: [{ type: 'bind', target: '/x' }] }, /a bind mount needs a source/);
  refused(t, { mounts: [{ type: 'bind', source: 'rel/dir', target: '/x' }] }, /invalid bind source "rel\/dir": must be an absolute path on the node/);
  refused(t, { mounts: [{ type: 'volume', source: '/abs', target: '/x' }] }, /a volume source is a name, not a path; for a path of the node use type=bind/);
  refused(t, { mounts: [{ type: 'volume', source: 'bad name', target: '/x' }] }, /invalid volume name "bad name"/);
  refused(t, { mounts: [{ type: 'tmpfs', source: 'x', target: '/x' }] }, /a tmpfs mount takes no source/);
  refused(t, { mounts: [{ type: 'tmpfs', target: '/x', bindOptions: { propagation: 'shared' } }] }, /cannot mix 'bind-\*' options with mount type 'tmpfs'/);
  refused(t, { mounts: [{ type: 'tmpfs', target: '/x', tmpfsOptions: { sizeBytes: -1 } }] }, /invalid tmpfs-size -1/);
  refused(t, { mounts: [{ type: 'tmpfs', target: '/x', tmpfsOptions: { mode: 0o10000 } }] }, /invalid tmpfs-mode 4096/);
  refused(t, { mounts: [{ type: 'bind', source: '/a', target: '/x', bindOptions: { propagation: 'sideways' } }] }, /invalid bind-propagation "sideways"/);
  refused(t, { mounts: [{ type: 'npipe', source: 'p', target: '/x' }] }, /Windows-only/);
  refused(t, { mounts: [{ type: 'volume', source: 'aa', target: '/x' }, { type: 'tmpfs', target: '/x' }] }, /^duplicate mount point \/x/);
});

test('limits: memory, CPUs and pids are kept; too small or malformed values are refused', (t) => {
  const s = spec({ limitMemoryBytes: 64 << 20, limitNanoCpus: 5e8, limitPids: 100, reserveMemoryBytes: 32 << 20 });
  t.deepEqual(s.task.resources, { reservations: { nanoCpus: 0, memoryBytes: 32 << 20 }, limits: { memoryBytes: 64 << 20, nanoCpus: 5e8, pids: 100 } });
  refused(t, { limitMemoryBytes: 1024 }, /^invalid memory limit 1024 bytes: must be 0 \(none\) or at least 6MiB/);
  refused(t, { limitMemoryBytes: 1.5 }, /^invalid memory limit 1\.5: must be a whole number >= 0 bytes$/);
  refused(t, { limitNanoCpus: 10 }, /^invalid CPU limit 10: must be 0 or at least 1000000 nano-CPUs/);
  refused(t, { limitPids: -1 }, /^invalid pids limit -1: must be a whole number >= 0 \(0 = unlimited\)$/);
  refused(t, { genericResources: [{ kind: 'gpu', value: 0 }] }, /invalid generic resource gpu value 0/);
  refused(t, { genericResources: [{ kind: 'gpu', value: 1 }, { kind: 'gpu', value: 2 }] }, /generic resource gpu is given twice/);
});

test('limits: an update keeps what it does not change and can clear a limit with 0', (t) => {
  const cur = spec({ limitMemoryBytes: 64 << 20, limitPids: 10 });
  const next = normalizeServiceSpec({ name: 'web', limitPids: 0 } as ServiceSpecInput, cur);
  t.deepEqual(next.task.resources?.limits, { memoryBytes: 64 << 20 });
});

test('process options: normalized (capabilities, sorted ulimits) and checked', (t) => {
  const s = spec({
    dir: '/app', user: '1000:1000', groups: ['audio'], init: true, tty: true, readOnly: true, stopSignal: 'SIGINT',
    capAdd: ['net_admin', 'CAP_SYS_TIME'], capDrop: ['mknod'], sysctls: { 'net.core.somaxconn': '1024' },
    ulimits: [{ name: 'nproc', soft: 10, hard: 20 }, { name: 'nofile', soft: 1024, hard: 2048 }],
    dns: ['10.0.0.2'], dnsSearch: ['example.com'], dnsOptions: ['ndots:2'], hosts: ['10.0.0.5 db'],
    logDriver: { name: 'json-file', options: { 'max-size': '1m' } }, placementPreferences: [{ spread: 'node.labels.zone' }],
  });
  const c = s.task.container;
  t.is(c.dir, '/app');
  t.is(c.user, '1000:1000');
  t.deepEqual(c.groups, ['audio']);
  t.true(c.init);
  t.true(c.tty);
  t.true(c.readOnly);
  t.is(c.stopSignal, 'SIGINT');
  t.deepEqual(c.capabilityAdd, ['CAP_NET_ADMIN', 'CAP_SYS_TIME']);
  t.deepEqual(c.capabilityDrop, ['CAP_MKNOD']);
  t.deepEqual(c.ulimits, [{ name: 'nofile', soft: 1024, hard: 2048 }, { name: 'nproc', soft: 10, hard: 20 }]);
  t.deepEqual(c.dnsConfig, { nameservers: ['10.0.0.2'], search: ['example.com'], options: ['ndots:2'] });
  t.deepEqual(c.hosts, ['10.0.0.5 db']);
  t.deepEqual(s.task.logDriver, { name: 'json-file', options: { 'max-size': '1m' } });
  t.deepEqual(s.task.placement.preferences, [{ spread: 'node.labels.zone' }]);

  refused(t, { dir: 'app' }, /^invalid working directory "app": must be an absolute path/);
  refused(t, { stopSignal: 'SIGFOO' }, /^invalid stop signal: "SIGFOO": use a signal name such as SIGTERM/);
  refused(t, { capAdd: ['FLY'] }, /^invalid capability to add: unknown capability "CAP_FLY"/);
  refused(t, { sysctls: { 'vm.swappiness': '1' } }, /^sysctl "vm\.swappiness" is not allowed in a container/);
  refused(t, { ulimits: [{ name: 'nofile', soft: 10, hard: 5 }] }, /soft limit 10 is above the hard limit 5/);
  refused(t, { ulimits: [{ name: 'files', soft: 1, hard: 1 }] }, /unknown ulimit "files"/);
  refused(t, { dns: ['dns.example.com'] }, /^invalid DNS server "dns\.example\.com": expected an IP address/);
  refused(t, { hosts: ['db:10.0.0.5'] }, /^invalid extra host "db:10\.0\.0\.5": expected "IP_address hostname \[aliases\.\.\.\]"/);
  refused(t, { logDriver: { name: '', options: { a: 'b' } } }, /log options need a log driver/);
  refused(t, { placementPreferences: [{ spread: 'zone' }] }, /^invalid placement preference spread=zone: spread over node\.labels\.<name>/);
});

test('modes: jobs get their counts (Docker defaults), no update config, and refuse service-only fields', (t) => {
  t.deepEqual(spec({ mode: 'replicated-job', replicas: 6, maxConcurrent: 2 }).mode, { replicatedJob: { maxConcurrent: 2, totalCompletions: 6 } });
  t.deepEqual(spec({ mode: 'replicated-job', replicas: 3 }).mode, { replicatedJob: { maxConcurrent: 3, totalCompletions: 3 } });
  t.deepEqual(spec({ mode: 'replicated-job' }).mode, { replicatedJob: { maxConcurrent: 1, totalCompletions: 1 } });
  t.deepEqual(spec({ mode: 'replicated-job', maxConcurrent: 4 }).mode, { replicatedJob: { maxConcurrent: 4, totalCompletions: 4 } });
  const g = spec({ mode: 'global-job' });
  t.deepEqual(g.mode, { globalJob: {} });
  t.is(g.update, undefined);
  t.is(g.rollback, undefined);
  refused(t, { maxConcurrent: 2 }, /^max-concurrent can only be used with replicated-job mode$/);
  refused(t, { mode: 'global', maxConcurrent: 2 }, /^max-concurrent can only be used with replicated-job mode$/);
  refused(t, { mode: 'global-job', replicas: 2 }, /^replicas can only be used with replicated or replicated-job mode$/);
  refused(t, { mode: 'replicated-job', update: { parallelism: 2 } }, /^update and rollback configuration is not supported for jobs/);
  refused(t, { mode: 'batch' }, /^invalid mode "batch": must be replicated, global, replicated-job or global-job$/);
  refused(t, { mode: 'global-job', maxReplicasPerNode: 1 }, /replicas-max-per-node can only be used with replicated or replicated-job mode/);
  const cur = spec({ mode: 'replicated-job', replicas: 2 });
  const e = t.throws(() => normalizeServiceSpec({ name: 'web', mode: 'replicated' } as ServiceSpecInput, cur));
  t.regex(e?.message ?? '', /service mode cannot be changed/);
});

test('control API: a job gets jobStatus, every update re-runs it, service ls counts completions', async (t) => {
  const store = newTestStore();
  const c = new ControlApi(store);
  const { id } = await c.createService({ ...base, mode: 'replicated-job', replicas: 6, maxConcurrent: 2 });
  t.is(c.getService(id).jobStatus?.jobIteration, 0);
  await c.updateService(id, {});
  t.is(c.getService(id).jobStatus?.jobIteration, 1);
  await c.scaleService(id, 8);
  t.deepEqual(c.getService(id).spec.mode, { replicatedJob: { maxConcurrent: 2, totalCompletions: 8 } });
  t.is(c.getService(id).jobStatus?.jobIteration, 2);
  const [row] = c.listServices();
  t.is(row!.desired, 2);
  t.is(row!.completed, 0);
  const g = await c.createService({ name: 'once', image: base.image, mode: 'global-job' });
  await t.throwsAsync(c.scaleService(g.id, 2), { message: /scale can only be used with replicated or replicated-job mode; once is global-job/ });
});

test('control API: nothing is created when an option is bad', async (t) => {
  const c = new ControlApi(newTestStore());
  await t.throwsAsync(c.createService({ ...base, mounts: [{ type: 'volume', source: 'x' }] }), { instanceOf: ShoalError });
  await t.throwsAsync(c.createService({ ...base, limitMemoryBytes: 100 }), { instanceOf: ShoalError });
  t.deepEqual(c.listServices(), []);
});

test('contract: the socket refuses unknown fields and wrong types in the new options', (t) => {
  t.notThrows(() => checkParams('service.create', { ...base, mounts: [{ type: 'tmpfs', target: '/t', tmpfsOptions: { sizeBytes: 1 } }], ulimits: [{ name: 'nofile', soft: 1, hard: 2 }] }));
  t.throws(() => checkParams('service.create', { ...base, mounts: [{ type: 'tmpfs', target: '/t', size: 1 }] }), { message: /size/ });
  t.throws(() => checkParams('service.create', { ...base, init: 'yes' }), { message: /init/ });
  t.throws(() => checkParams('service.create', { ...base, isolation: 'hyperv' }), { message: /isolation/ });
});
