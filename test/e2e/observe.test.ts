import net from 'node:net';
import test from 'ava';
import { Shoald, containers, waitFor, IMAGE, HTTPD } from '../lib/harness.js';

// `shoald --metrics-addr` and `--ui-addr` on the real daemon (dockerd, the host's dataplane): the
// metrics of every tier are served, and the web view's picture matches the containers.

/** A port free right now on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

let d: Shoald;
let metricsUrl = '';
let uiUrl = '';

test.before(async () => {
  const [m, u] = [await freePort(), await freePort()];
  metricsUrl = `http://127.0.0.1:${m}/metrics`;
  uiUrl = `http://127.0.0.1:${u}/`;
  d = new Shoald('observe', ['--metrics-addr', `127.0.0.1:${m}`, '--ui-addr', String(u)]);
  await d.start();
});

test.after.always(async () => {
  await d.cli('swarm', 'leave', '--force');
  await d.destroy();
});

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}` : ''}`) && (labels || /[ {]/.test(l[name.length] ?? '')));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : undefined;
}

test.serial('metrics and the web view of a one-node swarm running a service', async (t) => {
  t.is((await d.cli('swarm', 'init')).code, 0);
  const r = await d.cli('service', 'create', '--name', 'obsweb', '--replicas', '2', '--env', 'TOKEN=do-not-show', '--detach', IMAGE, ...HTTPD);
  t.is(r.code, 0, r.stderr);
  await waitFor(async () => (await containers({ 'shoal.service.name': 'obsweb' })).length === 2, { what: '2 containers of obsweb' });

  const text = await waitFor(async () => {
    const s = await (await fetch(metricsUrl)).text();
    return sample(s, 'shoal_service_tasks', 'service="obsweb",state="running"') === 2 && sample(s, 'shoal_agent_task_start_duration_seconds_count') === 2 ? s : undefined;
  }, { what: 'metrics: 2 running tasks, 2 starts timed' });
  t.is(sample(text, 'shoal_raft_is_leader'), 1);
  t.true(sample(text, 'shoal_raft_term')! >= 1);
  t.true(sample(text, 'shoal_raft_fsync_duration_seconds_count')! > 0);
  t.regex(text, /^shoal_dataplane_sync_duration_seconds_count\{backend="(nftables|ipvs|userspace)",mode="[a-z]+"\} [1-9]/m);
  t.regex(text, /^shoal_rpc_duration_seconds_count\{transport="socket",method="service.create",code="OK"\} 1$/m);
  t.regex(text, /^process_resident_memory_bytes \d+/m);

  const view = (await (await fetch(new URL('/api/view', uiUrl))).json()) as {
    nodes: { hostname: string; leader: boolean; status: string }[];
    services: { name: string; running: number; replicas: number }[];
    tasks: { service: string; category: string }[];
  };
  t.like(view.nodes[0], { hostname: 'observe-host', leader: true, status: 'ready' });
  t.like(view.services[0], { name: 'obsweb', running: 2, replicas: 2 });
  t.deepEqual(view.tasks.map((x) => [x.service, x.category]), [['obsweb', 'running'], ['obsweb', 'running']]);
  t.false(JSON.stringify(view).includes('do-not-show'), 'environment values stay out of the view');
  t.is((await fetch(uiUrl)).status, 200);
});
