import test from 'ava';
import fs from 'node:fs';
import { Shoald, containers, docker, waitFor, IMAGE } from '../lib/harness.js';

// Issue 9 on one machine and its real dockerd: a named volume outlives task replacement and a
// `shoald` crash; a missing bind source is named in `service ps`; a task over its memory limit is
// reported OOM-killed; a replicated job runs its completions to the end; runtime options reach the
// task's container. Steps share one daemon, so they run in order.

const d = new Shoald('svc9');
const VOL = `shoal-e2e-svc9-${process.pid}`;
let nodeId = '';
const SLEEP = 'trap "exit 0" TERM; sleep 3600 & wait';

const running = async (svc: string) => (await containers({ 'shoal.service.name': svc, 'shoal.node.id': nodeId })).filter((c) => c.State === 'running');
async function ok(...args: string[]): Promise<string> {
  const r = await d.cli(...args);
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

test.before(async () => {
  await d.start();
  await ok('swarm', 'init');
  nodeId = (await d.client.call<{ nodeId: string }>('swarm.info')).nodeId;
});

test.after.always(async () => {
  await d.destroy();
  await docker.getVolume(VOL).remove().catch(() => undefined);
});

test.serial('a named volume keeps what a task wrote across container replacement and a shoald crash', async (t) => {
  await ok('service', 'create', '--name', 'db', '--detach', '--restart-delay', '100ms', '--mount', `type=volume,source=${VOL},target=/data`,
    IMAGE, 'sh', '-c', `echo run >> /data/runs; ${SLEEP}`);
  const first = await waitFor(async () => (await running('db'))[0], { what: 'db running' });
  const vol = await docker.getVolume(VOL).inspect();
  t.is(vol.Labels?.['shoal.volume'], 'db', 'created by the node\'s engine, labelled as Shoal\'s');
  const runs = () => fs.readFileSync(`${vol.Mountpoint}/runs`, 'utf8').split('\n').filter(Boolean).length;
  await waitFor(() => runs() === 1, { what: 'the first run written' });
  await docker.getContainer(first.Id).kill();
  await waitFor(async () => (await running('db')).some((c) => c.Id !== first.Id), { what: 'a replacement container' });
  await waitFor(() => runs() === 2, { what: 'the replacement appended to the same volume', seen: () => String(runs()) });
  await d.kill9();
  await d.start();
  await ok('service', 'update', '--force', '--detach', 'db');
  await waitFor(() => runs() === 3, { what: 'the task after the restart and update appended too', seen: () => String(runs()) });
  await ok('service', 'rm', 'db');
  await waitFor(async () => (await containers({ 'shoal.service.name': 'db' }, true)).length === 0, { what: 'db containers gone' });
  await t.notThrowsAsync(docker.getVolume(VOL).inspect(), 'removing the service leaves the named volume');
});

test.serial('a bind source missing on the node rejects the task, named in service ps', async (t) => {
  await ok('service', 'create', '--name', 'cfg', '--detach', '--mount', 'type=bind,source=/nonexistent/shoal-e2e,target=/cfg,readonly', IMAGE, 'true');
  const ps = await waitFor(async () => {
    const out = await ok('service', 'ps', '--no-trunc', 'cfg');
    return /Rejected/.test(out) ? out : undefined;
  }, { what: 'a rejected cfg task' });
  t.true(ps.includes('"invalid mount config for type "bind": bind source path does not exist: /nonexistent/shoal-e2e"'), ps);
  await ok('service', 'rm', 'cfg');
});

test.serial('a task over its memory limit is OOM-killed and service ps says so', async (t) => {
  await ok('service', 'create', '--name', 'hog', '--detach', '--restart-condition', 'none', '--limit-memory', '8m', IMAGE, 'sh', '-c', 'exec dd if=/dev/zero of=/dev/null bs=64M count=1');
  const ps = await waitFor(async () => {
    const out = await ok('service', 'ps', 'hog');
    return /Failed/.test(out) ? out : undefined;
  }, { what: 'hog failed' });
  t.regex(ps, /"task: OOM killed: non-zero/);
  const task = (await d.client.call<{ tasks: { status: { err?: string; exitCode?: number } }[] }>('service.ps', { ref: 'hog' })).tasks[0]!;
  t.is(task.status.err, 'task: OOM killed: non-zero exit (137)');
  await ok('service', 'rm', 'hog');
});

test.serial('a replicated job runs 6 completions, 2 at a time, and ends Complete; update runs it again', async (t) => {
  const r = await d.cli('service', 'create', '--name', 'batch', '--mode', 'replicated-job', '--replicas', '6', '--max-concurrent', '2', IMAGE, 'sh', '-c', 'sleep 1');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /job progress: 6 out of 6 complete/);
  t.regex(r.stderr, /job complete\n$/);
  t.regex(await ok('service', 'ls'), /batch\s+replicated job\s+0\/2 \(6\/6 completed\)/);
  const ps = await ok('service', 'ps', 'batch');
  t.is(ps.match(/Complete\s+Complete/g)?.length, 6, ps);
  const u = await d.cli('service', 'update', '--force', 'batch');
  t.is(u.code, 0, u.stderr);
  t.regex(u.stderr, /job complete/);
  const tasks = (await d.client.call<{ tasks: { jobIteration?: number; status: { state: string } }[] }>('service.ps', { ref: 'batch' })).tasks;
  t.is(tasks.filter((x) => x.jobIteration === 1 && x.status.state === 'complete').length, 6);
  await ok('service', 'rm', 'batch');
});

test.serial('runtime options reach the task\'s container; the service resolver stays the first name server', async (t) => {
  await ok('service', 'create', '--name', 'opts', '--detach', '--host', 'db:10.0.0.5', '--dns', '10.0.0.2', '--dns-search', 'example.com',
    '--limit-cpu', '0.5', '--limit-pids', '64', '--ulimit', 'nofile=1024:2048', '--cap-add', 'NET_ADMIN', '--init', '--read-only',
    '--user', '1000', '--workdir', '/tmp', '--stop-signal', 'SIGINT', '--sysctl', 'net.core.somaxconn=512', '--log-driver', 'json-file', '--log-opt', 'max-size=1m',
    IMAGE, 'sh', '-c', SLEEP);
  const c = await waitFor(async () => (await running('opts'))[0], { what: 'opts running' });
  const info = await docker.getContainer(c.Id).inspect();
  const hc = info.HostConfig as unknown as Record<string, unknown>;
  t.deepEqual(hc['ExtraHosts'], ['db:10.0.0.5']);
  const dns = hc['Dns'] as string[];
  t.is(dns.at(-1), '10.0.0.2');
  t.true(dns.length >= 2, `the service resolver comes first: ${dns.join(' ')}`);
  t.deepEqual(hc['DnsSearch'], ['example.com']);
  t.is(hc['NanoCpus'], 5e8);
  t.is(hc['PidsLimit'], 64);
  t.deepEqual(hc['Ulimits'], [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]);
  t.deepEqual(hc['CapAdd'], ['CAP_NET_ADMIN']);
  t.is(hc['Init'], true);
  t.is(hc['ReadonlyRootfs'], true);
  t.deepEqual(hc['Sysctls'], { 'net.core.somaxconn': '512' });
  t.deepEqual(hc['LogConfig'], { Type: 'json-file', Config: { 'max-size': '1m' } });
  t.is(info.Config.User, '1000');
  t.is(info.Config.WorkingDir, '/tmp');
  const pretty = await ok('service', 'inspect', '--pretty', 'opts');
  t.regex(pretty, /^ Limits:\n {2}CPU: +0\.5\n {2}PIDs: +64$/m);
  await ok('service', 'rm', 'opts');
});
