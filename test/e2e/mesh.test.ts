import test from 'ava';
import { HTTPD, IMAGE, waitFor } from '../lib/harness.js';
import { testnet, runningOn, shoalUntil } from '../lib/testnet.js';
import { answered, failures, lookup, replicas, requestsFromContainer, requestsFromHost, type Tally } from '../lib/mesh.js';

// Issue 5: overlay across hosts, service VIPs, service DNS and the routing mesh, on 3 hosts
// (network namespaces with their own dockerd and shoald; real VXLAN, nftables, Docker bridges).
// Steps build on each other, so they run in order.

const HOSTS = ['node1', 'node2', 'node3'];
const IP: Record<string, string> = {};
let client = ''; // container of the `client` task on node1 (busybox with nc and nslookup)

const sh = (node: string, ...args: string[]) => testnet.shoal(node, ...args);
async function must(node: string, ...args: string[]): Promise<string> {
  const r = await sh(node, ...args);
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} on ${node} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
const inspect = async <T>(node: string, kind: string, ref: string): Promise<T> => {
  const v = JSON.parse(await must(node, kind, 'inspect', ref)) as T | T[];
  return Array.isArray(v) ? v[0]! : v;
};
/** Running containers of a service on every host. */
async function containers(service: string, hosts = HOSTS): Promise<{ node: string; id: string }[]> {
  const out: { node: string; id: string }[] = [];
  for (const h of hosts) for (const id of await runningOn(h, service)) out.push({ node: h, id });
  return out;
}
/** Overlay IP of a container. */
async function ipOf(node: string, id: string): Promise<string> {
  const r = await testnet.docker(node, 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id);
  return r.stdout.trim();
}
const nftRules = async (node: string) => (await testnet.exec(node, '/usr/sbin/nft', 'list', 'table', 'ip', 'shoal')).stdout;
/** Every replica got 8–28 % of the requests. */
function balanced(t: { true(v: boolean, m?: string): void }, tally: Tally, n: number, what: string): void {
  for (const [k, v] of Object.entries(tally)) if (k) t.true(v >= 0.08 * n && v <= 0.28 * n, `${what}: ${k} got ${v}/${n} ${JSON.stringify(tally)}`);
}

test.before(async () => {
  await testnet.down();
  await testnet.up(3);
  for (const h of HOSTS) IP[h] = await testnet.ip(h);
});

test.after.always(async () => {
  if (process.env['SHOAL_KEEP_TESTNET']) return;
  await testnet.down();
});

test.serial('a 3-host swarm: every node gets an overlay /24 and reports its dataplane', async (t) => {
  await must('node1', 'swarm', 'init', '--advertise-addr', IP['node1']!);
  const token = (await must('node1', 'swarm', 'join-token', '-q', 'worker')).trim();
  for (const h of ['node2', 'node3']) await must(h, 'swarm', 'join', '--token', token, '--advertise-addr', IP[h]!, `${IP['node1']}:2377`);
  await shoalUntil('node1', ['node', 'ls'], (o) => (o.match(/Ready/g) ?? []).length === 3, '3 nodes Ready');
  const subnets = new Set<string>();
  for (const h of HOSTS) {
    const n = await waitFor(async () => {
      const x = await inspect<{ overlay?: { subnet: string }; description?: { dataplane?: string } }>('node1', 'node', h);
      return x.overlay && x.description?.dataplane ? x : undefined;
    }, { what: `${h} overlay subnet`, timeoutMs: 30_000 });
    t.regex(n.overlay!.subnet, /^10\.97\.\d+\.0\/24$/);
    t.is(n.description!.dataplane, 'nftables');
    subnets.add(n.overlay!.subnet);
  }
  t.is(subnets.size, 3);
});

test.serial('6 replicas on 3 hosts: VIP and name from a client task reach all, balanced; tasks.web → the 6 task IPs', async (t) => {
  await must('node1', 'network', 'create', '-d', 'overlay', 'appnet');
  await must('node1', 'service', 'create', '--name', 'web', '--replicas', '6', '--network', 'appnet', '-p', '8080:80', '--detach', IMAGE, ...HTTPD);
  await must('node1', 'service', 'create', '--name', 'client', '--network', 'appnet', '--constraint', 'node.hostname==node1', '--detach', IMAGE, 'sleep', '100000');
  const webs = await waitFor(async () => {
    const c = await containers('web');
    return c.length === 6 ? c : undefined;
  }, { what: '6 web containers', timeoutMs: 90_000 });
  t.deepEqual(HOSTS.map((h) => webs.filter((c) => c.node === h).length), [2, 2, 2]);
  client = await waitFor(async () => (await runningOn('node1', 'client'))[0], { what: 'client container', timeoutMs: 60_000 });
  const taskIps = (await Promise.all(webs.map((c) => ipOf(c.node, c.id)))).sort();
  t.true(taskIps.every((ip) => /^10\.97\./.test(ip)), taskIps.join());
  const svc = await inspect<{ endpoint: { virtualIps: { networkId: string; addr: string }[] } }>('node1', 'service', 'web');
  const net = await inspect<{ id: string }>('node1', 'network', 'appnet');
  const vip = svc.endpoint.virtualIps.find((v) => v.networkId === net.id)!.addr.split('/')[0]!;
  t.regex(vip, /^10\.96\./);
  // DNS: the name is the VIP, tasks.web the 6 task IPs (once all are backends everywhere).
  t.deepEqual(await waitFor(async () => {
    const a = await lookup('node1', client, 'tasks.web');
    return a.length === 6 ? a : undefined;
  }, { what: 'tasks.web → 6 addresses', timeoutMs: 20_000 }), taskIps);
  t.deepEqual(await lookup('node1', client, 'web'), [vip]);
  for (const target of [vip, 'web']) {
    const tally = await requestsFromContainer('node1', client, target, 300);
    t.is(failures(tally), 0, `${target}: ${JSON.stringify(tally)}`);
    t.is(replicas(tally).length, 6, `${target}: ${JSON.stringify(tally)}`);
    balanced(t, tally, 300, target);
  }
});

test.serial('routing mesh: the published port on every host address and on each host\'s loopback reaches all 6', async (t) => {
  for (const h of HOSTS) {
    for (const url of [`http://${IP[h]}:8080/`, 'http://127.0.0.1:8080/']) {
      const from = url.includes('127.0.0.1') ? h : 'node1';
      const tally = await requestsFromHost(from, url, 90);
      t.is(failures(tally), 0, `${url} from ${from}: ${JSON.stringify(tally)}`);
      t.is(replicas(tally).length, 6, `${url} from ${from}: ${JSON.stringify(tally)}`);
    }
  }
});

test.serial('dnsrr: the name resolves to the task IPs; a host-mode port binds only where its task runs; a dynamic published port; a port conflict is refused', async (t) => {
  await must('node1', 'service', 'create', '--name', 'rr', '--replicas', '2', '--endpoint-mode', 'dnsrr', '--network', 'appnet', '--detach', IMAGE, ...HTTPD);
  await must('node1', 'service', 'create', '--name', 'hp', '--publish', 'published=8081,target=80,mode=host', '--constraint', 'node.hostname==node2', '--detach', IMAGE, ...HTTPD);
  const rr = await waitFor(async () => {
    const c = await containers('rr');
    return c.length === 2 ? c : undefined;
  }, { what: '2 rr containers', timeoutMs: 60_000 });
  const rrIps = (await Promise.all(rr.map((c) => ipOf(c.node, c.id)))).sort();
  t.deepEqual(await waitFor(async () => {
    const a = await lookup('node1', client, 'rr');
    return a.length === 2 ? a : undefined;
  }, { what: 'rr → 2 task IPs', timeoutMs: 20_000 }), rrIps);
  const viaName = await requestsFromContainer('node1', client, 'rr', 20);
  t.is(answered(viaName), 20, JSON.stringify(viaName));

  await waitFor(async () => (await runningOn('node2', 'hp')).length === 1, { what: 'hp running on node2', timeoutMs: 60_000 });
  const on2 = await requestsFromHost('node1', `http://${IP['node2']}:8081/`, 5);
  t.is(answered(on2), 5, JSON.stringify(on2));
  const on1 = await requestsFromHost('node1', `http://${IP['node1']}:8081/`, 2);
  t.is(failures(on1), 2, 'not published on a host without the task');

  // No published port given: one from 30000–32767, open on every host.
  await must('node1', 'service', 'create', '--name', 'dyn', '-p', '80', '--detach', IMAGE, ...HTTPD);
  const dyn = await waitFor(async () => (await inspect<{ endpoint?: { ports: { publishedPort: number }[] } }>('node1', 'service', 'dyn')).endpoint?.ports[0]?.publishedPort, { what: 'dyn published port', timeoutMs: 20_000 });
  t.true(dyn >= 30000 && dyn <= 32767, String(dyn));
  await waitFor(async () => (await containers('dyn')).length === 1, { what: 'dyn running', timeoutMs: 60_000 });
  const viaDyn = await waitFor(async () => {
    const x = await requestsFromHost('node1', `http://${IP['node3']}:${dyn}/`, 3);
    return answered(x) === 3 ? x : undefined;
  }, { what: `node3:${dyn} answering`, timeoutMs: 20_000 });
  t.is(failures(viaDyn), 0);

  const dup = await sh('node1', 'service', 'create', '--name', 'dup', '-p', '8080:80', '--detach', IMAGE, ...HTTPD);
  t.not(dup.code, 0);
  t.regex(dup.stderr, /8080/);
});

test.serial('an overlay network with two services talking by name; names do not leak to other networks', async (t) => {
  await must('node1', 'network', 'create', '-d', 'overlay', 'backnet');
  await must('node1', 'service', 'create', '--name', 'api', '--replicas', '2', '--network', 'backnet', '--detach', IMAGE, ...HTTPD);
  await must('node1', 'service', 'create', '--name', 'front', '--network', 'backnet', '--constraint', 'node.hostname==node3', '--detach', IMAGE, 'sleep', '100000');
  const front = await waitFor(async () => (await runningOn('node3', 'front'))[0], { what: 'front container', timeoutMs: 60_000 });
  await waitFor(async () => (await containers('api')).length === 2, { what: '2 api containers', timeoutMs: 60_000 });
  await waitFor(async () => (await lookup('node3', front, 'tasks.api')).length === 2, { what: 'tasks.api from front', timeoutMs: 20_000 });
  const tally = await requestsFromContainer('node3', front, 'api', 20);
  t.is(answered(tally), 20, JSON.stringify(tally));
  t.is(replicas(tally).length, 2);
  t.deepEqual(await lookup('node1', client, 'api'), [], 'client is not on backnet');
  t.deepEqual(await lookup('node3', front, 'web'), [], 'front is not on appnet');
});

test.serial('scale 6 → 2: after settling no request fails and only the 2 remain', async (t) => {
  // Requests keep flowing while 4 replicas drain and stop (reported, not asserted: the issue asks
  // for no failures once the change has settled).
  const during = requestsFromContainer('node1', client, 'web', 800);
  await new Promise((r) => setTimeout(r, 300));
  await must('node1', 'service', 'scale', 'web=2', '--detach');
  await waitFor(async () => (await containers('web')).length === 2, { what: '2 web containers', timeoutMs: 60_000 });
  const d = await during;
  t.log(`during the scale-down: ${answered(d)} answered, ${failures(d)} failed`);
  const left = await containers('web');
  const names = new Set(await Promise.all(left.map(async (c) => (await testnet.docker(c.node, 'exec', c.id, 'hostname')).stdout.trim())));
  await waitFor(async () => (await lookup('node1', client, 'tasks.web')).length === 2, { what: 'tasks.web → 2', timeoutMs: 20_000 });
  const tally = await requestsFromContainer('node1', client, 'web', 100);
  t.is(failures(tally), 0, JSON.stringify(tally));
  t.deepEqual(replicas(tally), [...names].sort());
});

test.serial('a killed container leaves the load balancer on every host; a killed host\'s backends leave when it is Down', async (t) => {
  await must('node1', 'service', 'scale', 'web=3', '--detach');
  await waitFor(async () => (await containers('web')).length === 3, { what: '3 web containers', timeoutMs: 60_000 });
  const all = await containers('web');
  const victim = all.find((c) => c.node !== 'node1') ?? all[0]!;
  const ip = await ipOf(victim.node, victim.id);
  await waitFor(async () => (await nftRules('node1')).includes(ip), { what: `${ip} in node1's load balancer`, timeoutMs: 20_000 });
  const t0 = Date.now();
  await testnet.docker(victim.node, 'kill', victim.id);
  await waitFor(async () => !(await nftRules('node1')).includes(ip) && !(await nftRules('node3')).includes(ip), { what: `${ip} removed`, timeoutMs: 10_000, intervalMs: 50 });
  t.log(`killed container's backend left node1 and node3 in ${Date.now() - t0} ms`);

  // Kill node3 (a worker): once Down, its backends leave and the client sees no errors.
  let want = 3;
  if ((await runningOn('node3', 'web')).length === 0) {
    want = 4;
    await must('node1', 'service', 'scale', 'web=4', '--detach');
    await waitFor(async () => (await runningOn('node3', 'web')).length > 0, { what: 'a web task on node3', timeoutMs: 60_000 });
  }
  const node3Ips = await Promise.all((await runningOn('node3', 'web')).map((id) => ipOf('node3', id)));
  await waitFor(async () => {
    const rules = await nftRules('node1');
    return node3Ips.every((x) => rules.includes(x));
  }, { what: 'node3 backends in node1\'s load balancer', timeoutMs: 20_000 });
  // The service's replica count, not the containers seen right now: the killed container's
  // replacement may still be starting.
  await waitFor(async () => (await containers('web')).length === want, { what: `${want} web containers`, timeoutMs: 60_000 });
  await testnet.kill('node3');
  await shoalUntil('node1', ['node', 'ls'], (o) => /node3\s.*Down/.test(o), 'node3 Down', 30_000);
  await waitFor(async () => {
    const rules = await nftRules('node1');
    return node3Ips.every((x) => !rules.includes(x));
  }, { what: 'node3 backends gone from node1', timeoutMs: 10_000 });
  await waitFor(async () => (await containers('web', ['node1', 'node2'])).length === want, { what: `web back to ${want} on node1/node2`, timeoutMs: 60_000 });
  await waitFor(async () => (await lookup('node1', client, 'tasks.web')).length === want, { what: `tasks.web → ${want}`, timeoutMs: 20_000 });
  const tally = await requestsFromContainer('node1', client, 'web', 60);
  t.is(failures(tally), 0, JSON.stringify(tally));
  t.is(replicas(tally).length, want);
});

test.serial('swarm leave on a worker removes its tasks and the host plumbing the overlay added', async (t) => {
  t.true((await runningOn('node2', 'web')).length > 0, 'node2 runs web tasks before it leaves');
  await must('node2', 'swarm', 'leave');
  t.deepEqual(await runningOn('node2', 'web'), []);
  const link = await testnet.exec('node2', 'ip', 'link', 'show', 'vxlan0');
  t.not(link.code, 0, 'vxlan0 removed');
  const nets = await testnet.docker('node2', 'network', 'ls', '--format', '{{.Name}}');
  t.notRegex(nets.stdout, /shoal_overlay/);
  const nft = await testnet.exec('node2', '/usr/sbin/nft', 'list', 'table', 'ip', 'shoal');
  t.not(nft.code, 0, 'nft table ip shoal removed');
  const rules = await testnet.exec('node2', 'iptables', '-S', 'DOCKER-USER');
  t.notRegex(rules.stdout, /vxlan0/);
  await shoalUntil('node1', ['node', 'ls'], (o) => /node2\s.*Down/.test(o), 'node2 Down after leaving', 30_000);
  const info = await testnet.shoal('node2', 'swarm', 'leave');
  t.not(info.code, 0);
  t.regex(info.stderr, /not part of a swarm/);
});
