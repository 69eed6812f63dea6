import test from 'ava';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import type { Node, Service, Task, TaskState } from '@shoal/api';
import { fakeTask, until } from '@shoal/testkit';
import { PromMetrics, clusterView, currentTasks, parseListenAddr } from '../src/index.js';
import { eventually, leaderOf, startNode, startSwarm, stopAll, type TestNode } from './fixtures.js';

// ---- the metrics port on prom-client ---------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  /** Families as parse-prometheus-text-format reads them (it throws on a malformed line). */
  families: Map<string, PromFamily>;
  /** Every sample line (the library merges a histogram's label sets, so values are read from here). */
  samples: Sample[];
}

/**
 * Parses a scrape strictly: the library must accept it, and every sample line must be
 * `name{labels} value` of a family announced by `# TYPE` (with HELP).
 */
function parseStrict(text: string): Scrape {
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  const typed = new Set<string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+-]+|[Nn]a[Nn]|[+-]Inf)$/; // Go's ParseFloat takes NaN in any case (prom-client writes "Nan")
  for (const l of text.split('\n')) {
    if (l === '') continue;
    const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(l);
    if (t) {
      typed.add(t[1]!);
      continue;
    }
    const h = /^# HELP (\S+) ./.exec(l);
    if (h) {
      helped.add(h[1]!);
      continue;
    }
    const m = line.exec(l);
    if (!m) throw new Error(`not a Prometheus sample line: ${l}`);
    const name = m[1]!;
    const family = typed.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!typed.has(family) || !helped.has(family)) throw new Error(`sample of a family without TYPE and HELP: ${l}`);
    if (!families.has(family)) throw new Error(`the parser did not see family ${family}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name, labels, value: Number(m[3]) });
  }
  return { families, samples };
}

/**
 * The sum of the samples named `name` (for a histogram: `name_count`, its observations) whose labels
 * include `labels`; undefined when there is none.
 */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = s.families.get(name);
  const sampleName = f?.type === 'HISTOGRAM' || f?.type === 'SUMMARY' ? `${name}_count` : name;
  const hits = s.samples.filter((x) => x.name === sampleName && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return hits.length ? hits.reduce((a, x) => a + x.value, 0) : undefined;
}

test('parseListenAddr: HOST:PORT, [v6]:PORT, a bare port on loopback; one line naming the flag otherwise', (t) => {
  t.deepEqual(parseListenAddr('--ui-addr', '8080'), { host: '127.0.0.1', port: 8080 });
  t.deepEqual(parseListenAddr('--ui-addr', '0.0.0.0:9323'), { host: '0.0.0.0', port: 9323 });
  t.deepEqual(parseListenAddr('--ui-addr', 'localhost:0'), { host: 'localhost', port: 0 });
  t.deepEqual(parseListenAddr('--ui-addr', '[::1]:9000'), { host: '::1', port: 9000 });
  for (const bad of ['', 'host', 'host:', ':80', '1.2.3.4:65536', 'a b:1', 'http://x:1']) {
    const e = t.throws(() => parseListenAddr('--metrics-addr', bad));
    t.regex(e!.message, /^invalid --metrics-addr ".*"; use HOST:PORT/);
  }
});

test('PromMetrics: one metric per name, collect hooks at scrape time, a kind clash refused', async (t) => {
  const m = new PromMetrics({ processMetrics: false });
  const c1 = m.counter({ name: 'shoal_test_total', help: 'h', labelNames: ['k'] });
  const c2 = m.counter({ name: 'shoal_test_total', help: 'h', labelNames: ['k'] });
  c1.inc({ k: 'a' });
  c2.inc({ k: 'a' }, 2);
  const g = m.gauge({ name: 'shoal_test_gauge', help: 'h' });
  let v = 7;
  const off = m.onCollect(() => g.set(v));
  m.histogram({ name: 'shoal_test_seconds', help: 'h' }).observe(0.003);
  let fams = parseStrict(await m.render());
  t.is(value(fams, 'shoal_test_total', { k: 'a' }), 3);
  t.is(value(fams, 'shoal_test_gauge'), 7);
  t.is(value(fams, 'shoal_test_seconds'), 1);
  t.is(value(fams, 'shoal_test_seconds_bucket', { le: '0.005' }), 1);
  t.is(value(fams, 'shoal_test_seconds_bucket', { le: '0.001' }), 0);
  off();
  v = 9;
  fams = parseStrict(await m.render());
  t.is(value(fams, 'shoal_test_gauge'), 7, 'an unregistered hook no longer runs');
  t.throws(() => m.gauge({ name: 'shoal_test_total', help: 'h', labelNames: ['k'] }), { message: /registered as a counter/ });
  t.throws(() => m.counter({ name: 'shoal_test_total', help: 'h' }), { message: /labels \[k\]/ });
});

// ---- the web view's picture ------------------------------------------------------------------

const T0 = Date.parse('2025-01-01T00:00:00Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

function task(id: string, slot: number, state: TaskState, o: { created: number; nodeId?: string; desired?: TaskState; err?: string; env?: string[] }): Task {
  const t = fakeTask({ id, nodeId: o.nodeId ?? 'n1', slot, serviceId: 'svc1', serviceName: 'web', ...(o.env ? { env: o.env } : {}) });
  t.meta = { version: o.created, createdAt: iso(o.created), updatedAt: iso(o.created) };
  t.desiredState = o.desired ?? 'running';
  t.status = { state, timestamp: iso(o.created + 1), message: state, ...(o.err ? { err: o.err } : {}) };
  return t;
}

function service(replicas: number, env: string[] = []): Service {
  return {
    id: 'svc1', meta: { version: 1, createdAt: iso(0), updatedAt: iso(0) }, specVersion: 1,
    spec: {
      name: 'web', labels: { secret: 'label-value' },
      task: { container: { image: 'shoal/busybox:latest', env, args: ['httpd', '--password=hunter2'] }, restart: { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], maxReplicas: 0 }, networks: [], forceUpdate: 0 },
      mode: { replicated: { replicas } },
      endpoint: { mode: 'vip', ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }] },
    },
  };
}

const node = (id: string, hostname: string, o: { role?: 'manager' | 'worker'; leader?: boolean; state?: 'ready' | 'down' } = {}): Node => ({
  id, meta: { version: 1, createdAt: iso(0), updatedAt: iso(0) }, role: o.role ?? 'worker',
  spec: { labels: {}, desiredRole: o.role ?? 'worker', availability: 'active' },
  description: { hostname, platform: { os: 'linux', architecture: 'x86_64' }, resources: { nanoCpus: 2e9, memoryBytes: 2 ** 30 }, engine: { engineVersion: '24.0', labels: {} } },
  status: { state: o.state ?? 'ready', message: o.state === 'down' ? 'heartbeat failure' : '', addr: `10.0.0.${id.slice(1)}:2377` },
  ...(o.role === 'manager' ? { managerStatus: { leader: !!o.leader, reachability: 'reachable', addr: `10.0.0.${id.slice(1)}:2377`, raftId: 'r' } } : {}),
});

test('the picture: per slot the newest task — a failed one stays red until its replacement exists; scaled-down and replaced tasks leave', (t) => {
  const tasks = [
    task('a1', 1, 'running', { created: 1 }),
    task('b1', 2, 'failed', { created: 1, desired: 'shutdown', err: 'task: non-zero exit (137)' }),
    task('c1', 3, 'shutdown', { created: 1, desired: 'shutdown' }),
    task('c2', 3, 'failed', { created: 2, desired: 'shutdown' }),
    task('c3', 3, 'starting', { created: 3, nodeId: 'n2' }),
    task('d1', 4, 'running', { created: 1, desired: 'shutdown' }), // scaled down, still stopping
    task('e1', 5, 'shutdown', { created: 1, desired: 'shutdown' }), // scaled down, gone
    task('f1', 1, 'pending', { created: 0, nodeId: '' }), // an older pending one of slot 1 never shows
  ];
  const shown = currentTasks([service(3)], tasks).map((x) => x.id).sort();
  t.deepEqual(shown, ['a1', 'b1', 'c3', 'd1']);
  const v = clusterView({ nodes: [node('n2', 'beta'), node('n1', 'alpha', { role: 'manager', leader: true })], services: [service(3)], tasks, leaderId: 'n1' });
  const by = Object.fromEntries(v.tasks.map((x) => [x.id, x]));
  t.is(by['a1']!.category, 'running');
  t.is(by['b1']!.category, 'failed');
  t.is(by['b1']!.message, 'task: non-zero exit (137)');
  t.is(by['c3']!.category, 'starting');
  t.is(by['d1']!.category, 'stopping');
  t.deepEqual(v.nodes.map((n) => [n.hostname, n.leader]), [['alpha', true], ['beta', false]]);
  t.like(v.services[0], { name: 'web', replicas: 3, running: 1, ports: ['8080:80/tcp'], mode: 'replicated' });
});

test('the picture: a pending task shows its reason; nothing of the spec beyond the image leaves the manager', (t) => {
  const tasks = [task('p1', 1, 'pending', { created: 1, nodeId: '', err: 'no suitable node (1 node not available for new tasks)', env: ['PASSWORD=hunter2'] })];
  const v = clusterView({ nodes: [node('n1', 'alpha', { state: 'down' })], services: [service(1, ['PASSWORD=hunter2'])], tasks, leaderId: '' });
  t.like(v.tasks[0], { category: 'pending', nodeId: '', message: 'no suitable node (1 node not available for new tasks)' });
  t.like(v.nodes[0], { status: 'down', message: 'heartbeat failure', addr: '10.0.0.1' });
  const json = JSON.stringify(v);
  for (const leak of ['hunter2', 'PASSWORD', 'label-value', 'httpd']) t.false(json.includes(leak), `${leak} must not be in the view`);
});

// ---- whole nodes -------------------------------------------------------------------------------

test('endpoints are read-only and say what they are; a node outside a swarm says so', async (t) => {
  const n = await startNode('lonely', { options: { metricsAddr: '127.0.0.1:0', uiAddr: '127.0.0.1:0' } });
  t.teardown(() => stopAll([n]));
  const ui = n.node.uiUrl!;
  const metrics = n.node.metricsUrl!;
  t.regex(ui, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const page = await fetch(ui);
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /text\/html/);
  t.regex(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  t.regex(await page.text(), /<script type="module" src="\/app\.js">/);
  for (const f of ['app.js', 'style.css', 'favicon.svg']) t.is((await fetch(new URL(f, ui))).status, 200, f);
  const view = (await (await fetch(new URL('/api/view', ui))).json()) as { error?: string };
  t.regex(view.error ?? '', /lonely is not part of a swarm yet/);
  const post = await fetch(new URL('/api/view', ui), { method: 'POST', body: '{}' });
  t.is(post.status, 405);
  t.regex(await post.text(), /read-only/);
  t.is((await fetch(new URL('/secrets', ui))).status, 404);
  t.is((await fetch(new URL('/', metrics))).status, 404);
  t.is((await fetch(metrics, { method: 'DELETE' })).status, 405);
  const head = await fetch(metrics, { method: 'HEAD' });
  t.is(head.status, 200);
  const fams = parseStrict(await (await fetch(metrics)).text());
  t.is(value(fams, 'shoal_node_manager'), 0);
  t.is(value(fams, 'shoal_node_info'), undefined, 'no swarm, no identity');
  // The live feed: the first event is the whole picture.
  const ac = new AbortController();
  const sse = await fetch(new URL('/events', ui), { signal: ac.signal });
  t.regex(sse.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = sse.body!.getReader();
  let text = '';
  while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
  ac.abort();
  t.regex(text, /event: view\ndata: \{"error":"lonely is not part of a swarm yet/);
});

test('a taken address is refused with the flag named; a bad one at construction', async (t) => {
  const first = await startNode('first', { options: { metricsAddr: '127.0.0.1:0' } });
  t.teardown(() => stopAll([first]));
  const port = new URL(first.node.metricsUrl!).port;
  const e = await t.throwsAsync(startNode('second', { options: { uiAddr: `127.0.0.1:${port}` } }));
  t.regex(e!.message, new RegExp(`^--ui-addr: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
  const bad = await t.throwsAsync(startNode('third', { options: { metricsAddr: 'nine' } }));
  t.regex(bad!.message, /^invalid --metrics-addr "nine"/);
});

async function scrape(n: TestNode): Promise<Scrape> {
  const url = n.node.metricsUrl;
  if (!url) throw new Error(`${n.name} serves no metrics`);
  const r = await fetch(url);
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  if (!/^text\/plain; version=0\.0\.4/.test(r.headers.get('content-type') ?? '')) throw new Error(`${url}: content-type ${r.headers.get('content-type')}`);
  return parseStrict(await r.text());
}

test('metrics: every node serves Prometheus text; the managers\' Raft term rises after a leader change', async (t) => {
  const { nodes } = await startSwarm(3, 1, { options: { metricsAddr: '127.0.0.1:0' } });
  t.teardown(() => stopAll(nodes));
  const [n1, , , worker] = nodes as [TestNode, TestNode, TestNode, TestNode];
  // Every node ready first, so that spread puts one task on each.
  await until(async () => (await n1.call('node.ls', {})).nodes.every((n) => n.status.state === 'ready'), 'every node ready', 20_000);
  await n1.call('service.create', { name: 'web', image: 'shoal/busybox:latest', replicas: 4 });
  await until(async () => (await n1.call('service.ps', { ref: 'web' })).tasks.filter((x) => x.status.state === 'running').length === 4, 'web running', 30_000);

  const leader = leaderOf(nodes)!;
  const before = await scrape(leader);
  t.is(value(before, 'shoal_raft_is_leader'), 1);
  t.is(value(before, 'shoal_raft_has_leader'), 1);
  t.is(value(before, 'shoal_raft_members', { kind: 'voter' }), 3);
  const term = value(before, 'shoal_raft_term')!;
  t.true(term >= 1);
  t.true(value(before, 'shoal_raft_applied_index')! > 0);
  t.true(value(before, 'shoal_raft_commit_index')! >= value(before, 'shoal_raft_applied_index')!);
  t.true(value(before, 'shoal_raft_proposal_duration_seconds')! > 0, 'proposals were timed');
  t.true(value(before, 'shoal_raft_fsync_duration_seconds')! > 0, 'fsyncs were timed');
  t.is(value(before, 'shoal_store_objects', { table: 'nodes' }), 4);
  t.is(value(before, 'shoal_store_objects', { table: 'services' }), 1);
  t.is(value(before, 'shoal_service_tasks', { service: 'web', state: 'running' }), 4);
  t.is(value(before, 'shoal_nodes', { role: 'manager', status: 'ready', availability: 'active' }), 3);
  t.is(value(before, 'shoal_dispatcher_sessions'), 4);
  t.true(value(before, 'shoal_dispatcher_sessions_opened_total')! >= 4);
  t.true(value(before, 'shoal_reconcile_pass_duration_seconds', { loop: 'scheduler', result: 'ok' })! > 0, 'scheduler passes were timed');
  t.is(value(before, 'shoal_scheduler_pending_tasks'), 0);
  t.true(value(before, 'shoal_rpc_duration_seconds', { transport: 'socket', method: 'service.create', code: 'OK' })! >= 1);
  t.true(value(before, 'shoal_rpc_duration_seconds', { transport: 'cluster' })! >= 1, 'cluster-port calls were timed');
  t.true(value(before, 'process_cpu_user_seconds_total')! >= 0, 'process metrics');
  t.truthy(before.families.get('nodejs_eventloop_lag_seconds'), 'Node.js metrics');
  t.is(value(before, 'shoal_node_info', { role: 'manager', hostname: leader.name }), 1);

  // A worker serves its own: agent and process, no Raft of its own.
  const w = await scrape(worker);
  t.is(value(w, 'shoal_node_manager'), 0);
  t.is(value(w, 'shoal_agent_session_open'), 1);
  t.is(value(w, 'shoal_agent_tasks'), 1);
  t.is(value(w, 'shoal_agent_task_start_duration_seconds'), 1, 'its one task was timed from ASSIGNED to RUNNING');
  t.is(value(w, 'shoal_agent_task_starts_total', { result: 'running' }), 1);
  t.is(value(w, 'shoal_raft_term'), undefined, 'no Raft member, no Raft gauges');
  t.truthy(w.families.get('process_resident_memory_bytes'));

  // The leader goes; a survivor sees a higher term and one more leader change.
  const survivor = nodes.find((n) => n !== leader && n !== worker)!;
  const seen = value(await scrape(survivor), 'shoal_raft_leader_changes_total')!;
  await leader.stop();
  await until(() => leaderOf(nodes.filter((n) => n !== leader)), 'a new leader', 20_000);
  const after = await until(async () => {
    const f = await scrape(survivor);
    return value(f, 'shoal_raft_has_leader') === 1 ? f : undefined;
  }, 'the survivor knows the new leader', 20_000);
  t.true(value(after!, 'shoal_raft_term')! > term, `term ${value(after!, 'shoal_raft_term')} > ${term}`);
  t.true(value(after!, 'shoal_raft_leader_changes_total')! > seen);
  await eventually(() => survivor.call('service.scale', { ref: 'web', replicas: 2 }), 'a write on the new leader');
});
