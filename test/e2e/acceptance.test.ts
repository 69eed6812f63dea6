import test from 'ava';
import { spawn } from 'node:child_process';
import { Shoald, containers, docker, waitFor, IMAGE, HTTPD, SHOAL } from '../lib/harness.js';

// Acceptance cases from public swarm bug reports that one host can show: B01 (pending reason,
// re-evaluated on label change; moby/moby#33807), B04 (scale to zero and back in one command;
// docker/cli#3293), B05 (restart budget reset by a spec change; moby/moby#34007), B06 (task history
// bounded and pruned; moby/moby#37520);
// and health checks (a task is Running only once healthy; unhealthy → Failed and replaced).

const d = new Shoald('acc');
let nodeId = '';
const mine = (svc: string, all = false) => containers({ 'shoal.service.name': svc, 'shoal.node.id': nodeId }, all);
const ps = async (svc: string) => (await d.cli('service', 'ps', '--no-trunc', svc)).stdout;
const rows = (out: string) => out.trim().split('\n').slice(1).filter(Boolean);

test.before(async () => {
  await d.start();
  const r = await d.cli('swarm', 'init');
  if (r.code !== 0) throw new Error(r.stderr);
  nodeId = (await d.client.call<{ nodeId: string }>('swarm.info')).nodeId;
  await waitFor(async () => /Ready/.test((await d.cli('node', 'ls')).stdout), { what: 'node Ready' });
});

test.after.always(async () => {
  await d.destroy();
});

test.serial('B01: an unsatisfiable constraint shows why tasks are pending, and they are placed once a label matches', async (t) => {
  t.is((await d.cli('node', 'update', '--label-add', 'zone=a', 'self')).code, 0);
  const r = await d.cli('service', 'create', '--name', 'pinned', '--replicas', '2', '--constraint', 'node.labels.zone==b', '--detach', IMAGE, 'sleep', '100000');
  t.is(r.code, 0, r.stderr);
  let seen = '';
  const out = await waitFor(async () => {
    const o = (seen = await ps('pinned'));
    return rows(o).length === 2 && rows(o).every((l) => /Pending/.test(l) && /no suitable node \(scheduling constraints not satisfied on 1 node\)/.test(l)) ? o : undefined;
  }, { what: 'both tasks pending with a reason', seen: () => seen });
  t.regex(out, /Running\s+Pending/);
  t.regex((await d.cli('service', 'ls')).stdout, /pinned\s+replicated\s+0\/2/);
  // The key without `node.labels.` is refused up front.
  const typo = await d.cli('service', 'create', '--name', 'typo', '--constraint', 'zone==b', '--detach', IMAGE);
  t.not(typo.code, 0);
  t.regex(typo.stderr, /did you mean node\.labels\.zone/);
  // The attached progress mode shows the same reason per task (not only "0 out of 1 tasks"), and
  // ends once the label matches.
  const attached = spawn(process.execPath, [SHOAL, '--host', `unix://${d.socket}`, 'service', 'create', '--name', 'attached',
    '--constraint', 'node.labels.zone==b', IMAGE, 'sleep', '100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => attached.kill());
  let progress = '';
  attached.stderr.on('data', (c: Buffer) => (progress += c.toString()));
  const exited = new Promise<number | null>((r) => attached.on('exit', (code) => r(code)));
  await waitFor(() => /^attached\.1: pending: no suitable node \(scheduling constraints not satisfied on 1 node\)$/m.test(progress),
    { what: 'the pending reason in the attached progress output', seen: () => progress });
  t.is((await d.cli('node', 'update', '--label-add', 'zone=b', 'self')).code, 0);
  await waitFor(async () => {
    seen = await ps('pinned');
    return (await mine('pinned')).length === 2;
  }, { what: 'pinned tasks placed after the label changed', seen: () => seen });
  t.is(await exited, 0, progress);
  t.regex(progress, /^overall progress: 0 out of 1 tasks\n(.*\n)*attached\.1: pending: no suitable node .*\n(.*\n)*verify: Service \w+ converged\n$/);
  await d.cli('service', 'rm', 'attached');
  // The containers run before the agent's RUNNING reports reach the store: wait for the count.
  const ls = await waitFor(async () => {
    const o = (await d.cli('service', 'ls')).stdout;
    return /pinned\s+replicated\s+2\/2/.test(o) ? o : undefined;
  }, { what: 'pinned 2/2 in service ls', timeoutMs: 20_000 });
  t.regex(ls, /pinned\s+replicated\s+2\/2/);
  await d.cli('service', 'rm', 'pinned');
});

test.serial('B04: one `scale x=0` stops every container and keeps the service; scaling back makes slots 1..3', async (t) => {
  t.is((await d.cli('service', 'create', '--name', 'api', '--replicas', '2', '--stop-grace-period', '2s', '--detach', IMAGE, ...HTTPD)).code, 0);
  await waitFor(async () => (await mine('api')).length === 2, { what: '2 api containers' });
  const s = await d.cli('service', 'scale', 'api=0', '--detach');
  t.is(s.code, 0, s.stderr);
  await waitFor(async () => (await mine('api', true)).length === 0, { what: 'every api container gone after one scale', timeoutMs: 20_000 });
  t.regex((await d.cli('service', 'ls')).stdout, /api\s+replicated\s+0\/0/);
  t.is((await d.cli('service', 'scale', 'api=3', '--detach')).code, 0);
  const cs = await waitFor(async () => {
    const l = await mine('api');
    return l.length === 3 ? l : undefined;
  }, { what: '3 api containers' });
  t.deepEqual(cs.map((c) => Number(c.Labels['shoal.task.slot'])).sort(), [1, 2, 3]);
  await d.cli('service', 'rm', 'api');
});

test.serial('B05: the restart max-attempts budget is reset by a service update', async (t) => {
  const r = await d.cli('service', 'create', '--name', 'once', '--restart-condition', 'any', '--restart-max-attempts', '1', '--restart-delay', '1s', '--detach', IMAGE, 'sleep', '100000');
  t.is(r.code, 0, r.stderr);
  const killOne = async () => {
    const [c] = await waitFor(async () => {
      const l = await mine('once');
      return l.length === 1 ? l : undefined;
    }, { what: 'one running once container' });
    await docker.getContainer(c!.Id).kill();
    return c!.Id;
  };
  const first = await killOne();
  // One replacement (the one allowed restart).
  await waitFor(async () => (await mine('once')).some((c) => c.Id !== first), { what: 'a replacement after the first kill' });
  await killOne();
  await new Promise((res) => setTimeout(res, 4000));
  t.is((await mine('once')).length, 0, 'no replacement after the budget is used');
  t.regex((await d.cli('service', 'ls')).stdout, /once\s+replicated\s+0\/1/);
  t.regex(await ps('once'), /restart limit reached/);
  // A spec change (forced update) resets the budget.
  t.is((await d.cli('service', 'update', '--force', '--detach', 'once')).code, 0);
  await killOne();
  await waitFor(async () => (await mine('once')).length === 1, { what: 'a replacement after the update reset the budget', timeoutMs: 20_000 });
  t.pass();
  await d.cli('service', 'rm', 'once');
});

test.serial('B06: task history stays bounded for a crash-looping service and is pruned when the limit drops', async (t) => {
  t.is((await d.cli('swarm', 'update', '--task-history-limit', '2')).code, 0);
  const r = await d.cli('service', 'create', '--name', 'crash', '--restart-delay', '200ms', '--restart-max-attempts', '1000', '--detach', IMAGE, 'sh', '-c', 'sleep 0.3; exit 1');
  t.is(r.code, 0, r.stderr);
  let maxRows = 0;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    maxRows = Math.max(maxRows, rows(await ps('crash')).length);
    await new Promise((res) => setTimeout(res, 300));
  }
  // One slot: the current task plus at most 2 older ones.
  t.true(maxRows <= 3, `at most 3 task rows, saw ${maxRows}`);
  t.is((await d.cli('swarm', 'update', '--task-history-limit', '1')).code, 0);
  await waitFor(async () => rows(await ps('crash')).length <= 2, { what: 'history pruned to the new limit', timeoutMs: 10_000 });
  // Dead containers go with their task records.
  await waitFor(async () => (await mine('crash', true)).length <= 2, { what: 'dead containers removed with their tasks', timeoutMs: 15_000 });
  t.pass();
  await d.cli('service', 'rm', 'crash');
});

/** `docker exec` in a container, waiting for the command to end; returns its exit code. */
async function dockerExec(id: string, cmd: string[]): Promise<number> {
  const e = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: false, AttachStderr: false });
  // dockerode hands back the response as a stream even when detached: close it, or its socket
  // keeps the test process alive after the last test.
  const s = (await e.start({ Detach: true })) as unknown as { destroy?: () => void } | undefined;
  s?.destroy?.();
  const info = await waitFor(async () => {
    const i = await e.inspect();
    return i.Running ? undefined : i;
  }, { what: `docker exec ${cmd.join(' ')}`, timeoutMs: 10_000 });
  return info.ExitCode ?? -1;
}

test.serial('health check: a task is Starting until healthy, Running once healthy, and Failed "unhealthy container" then replaced', async (t) => {
  // The start period keeps failed checks from counting until the first success (Docker's rule), so
  // the task waits in Starting for the test to create /tmp/ok; afterwards 2 failures make it unhealthy.
  const r = await d.cli('service', 'create', '--name', 'hc', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '1s',
    '--health-retries', '2', '--health-start-period', '5m', '--stop-grace-period', '1s', '--detach', IMAGE, 'sleep', '100000');
  t.is(r.code, 0, r.stderr);
  const inspected = JSON.parse((await d.cli('service', 'inspect', 'hc')).stdout) as { spec: { task: { container: { healthcheck: unknown } } } }[];
  t.deepEqual(inspected[0]!.spec.task.container.healthcheck, { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, startPeriodMs: 300_000, retries: 2 });
  let seen = '';
  const [c] = await waitFor(async () => {
    const l = await mine('hc');
    return l.length === 1 ? l : undefined;
  }, { what: 'the hc container running' });
  const taskId = c!.Labels['shoal.task.id']!;
  const row = async () => rows(seen = await ps('hc')).find((l) => l.startsWith(taskId)) ?? '';
  // Started, but not healthy yet: STARTING, and not counted as running.
  await waitFor(async () => /Running\s+Starting/.test(await row()), { what: 'the task Starting', seen: () => seen });
  await new Promise((res) => setTimeout(res, 3000));
  t.regex(await row(), /Running\s+Starting/, 'still Starting after several failed checks in the start period');
  t.regex((await d.cli('service', 'ls')).stdout, /hc\s+replicated\s+0\/1/);
  t.is(await dockerExec(c!.Id, ['touch', '/tmp/ok']), 0);
  await waitFor(async () => /Running\s+Running/.test(await row()), { what: 'the task Running once healthy', seen: () => seen, timeoutMs: 20_000 });
  t.regex((await d.cli('service', 'ls')).stdout, /hc\s+replicated\s+1\/1/);
  // Unhealthy after 2 failed checks: FAILED, and the restart policy replaces it.
  t.is(await dockerExec(c!.Id, ['rm', '/tmp/ok']), 0);
  await waitFor(async () => /Failed.*"task: unhealthy container"/.test(await row()), { what: 'the task Failed as unhealthy', seen: () => seen, timeoutMs: 30_000 });
  await waitFor(async () => {
    const all = rows(seen = await ps('hc'));
    return all.some((l) => !l.startsWith(taskId) && /\bhc\.1\b/.test(l));
  }, { what: 'a replacement task in slot 1', seen: () => seen, timeoutMs: 30_000 });
  // The failed task's container is stopped once the managers shut it down.
  await waitFor(async () => !(await mine('hc')).some((x) => x.Id === c!.Id), { what: 'the unhealthy container stopped', timeoutMs: 30_000 });
  t.pass();
  await d.cli('service', 'rm', 'hc');
});
