import test from 'ava';
import { Shoald, containers, docker, waitFor, IMAGE, HTTPD, httpGet } from '../lib/harness.js';

// Issue 2: the walking skeleton on one machine, against the real dockerd.
// Steps share one daemon, so they run in order.

const d = new Shoald('skel');
let nodeId = '';

const running = async (svc: string) => containers({ 'shoal.service.name': svc, 'shoal.node.id': nodeId });

test.before(async () => {
  await d.start();
});

test.after.always(async () => {
  await d.destroy();
});

test.serial('swarm init makes this node a manager', async (t) => {
  const r = await d.cli('swarm', 'init');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Swarm initialized: current node \(\w+\) is now a manager/);
  nodeId = (await d.client.call<{ nodeId: string }>('swarm.info')).nodeId;
  t.truthy(nodeId);
  const again = await d.cli('swarm', 'init');
  t.not(again.code, 0);
  t.regex(again.stderr, /already part of a swarm/);
  const ls = await d.cli('node', 'ls');
  t.regex(ls.stdout, /ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION/);
  await waitFor(async () => /Ready\s+Active\s+Leader/.test((await d.cli('node', 'ls')).stdout), { what: 'node Ready' });
});

test.serial('service create --replicas 3 runs exactly 3 labelled containers', async (t) => {
  const r = await d.cli('service', 'create', '--name', 'web', '--replicas', '3', '--env', 'A=1', '--detach', IMAGE, ...HTTPD);
  t.is(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  t.regex(id, /^[a-z0-9]{25}$/);
  const cs = await waitFor(async () => {
    const l = await running('web');
    return l.length === 3 && l.every((c) => c.State === 'running') ? l : undefined;
  }, { what: '3 running containers of web' });
  const slots = cs.map((c) => Number(c.Labels['shoal.task.slot'])).sort();
  t.deepEqual(slots, [1, 2, 3]);
  for (const c of cs) {
    t.is(c.Labels['shoal.service.id'], id);
    t.truthy(c.Labels['shoal.task.id']);
    t.regex(c.Names[0]!, new RegExp(`^/web\\.${c.Labels['shoal.task.slot']}\\.${c.Labels['shoal.task.id']}$`));
    const env = (await docker.getContainer(c.Id).inspect()).Config.Env;
    t.true(env.includes('A=1'));
  }
  // Each replica serves HTTP with its own hostname.
  const bodies = await Promise.all(cs.map(async (c) => {
    const ip = Object.values((await docker.getContainer(c.Id).inspect()).NetworkSettings.Networks)[0]?.IPAddress;
    return httpGet(ip!);
  }));
  t.is(new Set(bodies.map((b) => b.split('\r\n\r\n')[1])).size, 3);
  const ls = await d.cli('service', 'ls');
  t.regex(ls.stdout, /ID\s+NAME\s+MODE\s+REPLICAS\s+IMAGE/);
  await waitFor(async () => /web\s+replicated\s+3\/3/.test((await d.cli('service', 'ls')).stdout), { what: 'service ls 3/3' });
  const ps = await d.cli('service', 'ps', 'web');
  t.regex(ps.stdout, /ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR/);
  t.is(ps.stdout.match(/Running\s+Running/g)?.length, 3);
});

test.serial('a killed container is replaced: back to 3', async (t) => {
  const before = await running('web');
  const victim = before[0]!;
  await docker.getContainer(victim.Id).kill();
  await waitFor(async () => {
    const l = await running('web');
    return l.length === 3 && !l.some((c) => c.Id === victim.Id);
  }, { what: 'a replacement container', timeoutMs: 60_000 });
  const after = await running('web');
  t.is(after.length, 3);
  t.is(new Set(after.map((c) => c.Labels['shoal.task.slot'])).size, 3);
});

test.serial('scale 5, then 0, then 2', async (t) => {
  for (const n of [5, 0, 2]) {
    const r = await d.cli('service', 'scale', `web=${n}`, '--detach');
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, new RegExp(`web scaled to ${n}`));
    await waitFor(async () => (await running('web')).length === n, { what: `${n} running containers` });
  }
  const slots = (await running('web')).map((c) => Number(c.Labels['shoal.task.slot'])).sort();
  t.deepEqual(slots, [1, 2]);
});

test.serial('kill -9 shoald and restart: service kept, containers adopted, none duplicated', async (t) => {
  const before = (await running('web')).map((c) => c.Id).sort();
  t.is(before.length, 2);
  await d.kill9();
  await d.start();
  const ls = await waitFor(async () => {
    const r = await d.cli('service', 'ls');
    return /web\s+replicated\s+2\/2/.test(r.stdout) ? r : undefined;
  }, { what: 'web listed 2/2 after restart' });
  t.regex(ls.stdout, /web/);
  // Give the agent time to reconcile, then the very same containers must still be the only ones.
  await new Promise((r) => setTimeout(r, 2000));
  const after = (await running('web')).map((c) => c.Id).sort();
  t.deepEqual(after, before);
});

test.serial('an image that is not present and cannot be pulled: REJECTED, error names the image', async (t) => {
  const r = await d.cli('service', 'create', '--name', 'ghost', '--detach', 'shoal/no-such-image:1');
  t.is(r.code, 0, r.stderr);
  const ps = await waitFor(async () => {
    const p = await d.cli('service', 'ps', '--no-trunc', 'ghost');
    return /Rejected/.test(p.stdout) ? p : undefined;
  }, { what: 'ghost task rejected' });
  t.regex(ps.stdout, /shoal\/no-such-image:1/);
  t.is((await d.cli('service', 'rm', 'ghost')).code, 0);
});

test.serial('bad input: one-line errors, non-zero exit, nothing created', async (t) => {
  const cases: [string[], RegExp][] = [
    [['service', 'create', '--name', 'bad1', '--replicas', '-1', IMAGE], /replicas/],
    [['service', 'create', '--name', 'bad2', '--replicas', 'abc', IMAGE], /abc/],
    [['service', 'create', '--name', 'bad3', '--no-such-flag', IMAGE], /no-such-flag/],
    [['service', 'create', '--name', 'bad4', '--bogus', IMAGE], /bogus/],
    [['service', 'create', '--name', 'web', '--detach', IMAGE], /already exists/],
    [['service', 'scale', 'nosuch=3'], /nosuch/],
    [['service', 'create', '--name', 'huge', '--replicas', '1000000', IMAGE], /at most 2000 replicas/],
    [['service', 'scale', 'web=100000000'], /at most 2000 replicas/],
  ];
  for (const [args, re] of cases) {
    const r = await d.cli(...args);
    t.not(r.code, 0, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
  }
  const ls = await d.cli('service', 'ls', '-q');
  t.is(ls.stdout.trim().split('\n').filter(Boolean).length, 1, ls.stdout);
});

test.serial('service rm removes every container of the service', async (t) => {
  const r = await d.cli('service', 'rm', 'web');
  t.is(r.code, 0, r.stderr);
  await waitFor(async () => (await containers({ 'shoal.service.name': 'web', 'shoal.node.id': nodeId }, true)).length === 0, {
    what: 'all web containers removed',
  });
  t.pass();
  const ls = await d.cli('service', 'ls', '-q');
  t.is(ls.stdout.trim(), '');
});
