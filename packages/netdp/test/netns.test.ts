/**
 * One real integration test: two "hosts" (network namespaces) on a test underlay bridge, the
 * overlay plumbed by OverlayExecutor, the nft VIP table by NftDataplane, real TCP through it.
 * Each host has a bridge `ovl0` (standing in for Docker's) and one "task" namespace on it.
 *
 *   ns u: bridge shoalt-<id> 10.98.0.1/24 ─┬─ ns a: eth0 10.98.0.11, ovl0 10.97.1.1/24 ─┬ ns ta: 10.97.1.2
 *                                          │                                           └ ns tc: 10.97.1.3 (hairpin client)
 *                                          └─ ns b: eth0 10.98.0.12, ovl0 10.97.2.1/24 ── ns tb: 10.97.2.2
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { runOk } from '../src/exec.js';
import { OverlayExecutor, type OverlayConfig } from '../src/overlay.js';
import { NftDataplane } from '../src/nft.js';
import type { ServiceTable } from '../src/table.js';
import { netnsSet } from './helpers.js';

const NSENTER = '/usr/bin/nsenter';
const inNs = (ns: string, script: string): string[] => [NSENTER, `--net=/var/run/netns/${ns}`, process.execPath, '-e', script];

/** Start a TCP server in `ns` that answers `<name> <client address>`; killed (by pid) on teardown. */
async function server(t: ExecutionContext, ns: string, name: string, port: number): Promise<ChildProcess> {
  const script = `require('net').createServer((s)=>s.end('${name} '+s.remoteAddress)).listen(${port},'0.0.0.0',()=>console.log('ready'))`;
  const argv = inNs(ns, script);
  const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { p.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', () => resolve());
    p.once('exit', (c) => reject(new Error(`server in ${ns} exited ${c}`)));
  });
  return p;
}

/** Connect from `ns` to host:port; returns the reply text or `ERR <code>` (bounded by `timeoutMs`). */
async function dial(ns: string, host: string, port: number, timeoutMs = 3000): Promise<string> {
  const script = `const s=require('net').connect({host:'${host}',port:${port}});let d='';s.on('data',x=>d+=x);`
    + `s.on('end',()=>{console.log(d);process.exit(0)});s.on('error',e=>{console.log('ERR '+e.code);process.exit(0)});`
    + `setTimeout(()=>{console.log('ERR TIMEOUT');process.exit(0)},${timeoutMs})`;
  return (await runOk(inNs(ns, script), { timeoutMs: 10000 })).trim();
}

/** Start a UDP server in `ns` that answers each datagram with `<name> <client address>`. */
async function udpServer(t: ExecutionContext, ns: string, name: string, port: number): Promise<ChildProcess> {
  const script = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('${name} '+r.address,r.port,r.address));`
    + `s.bind(${port},'0.0.0.0',()=>console.log('ready'))`;
  const argv = inNs(ns, script);
  const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { p.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', () => resolve());
    p.once('exit', (c) => reject(new Error(`udp server in ${ns} exited ${c}`)));
  });
  return p;
}

/** One datagram from `ns` to host:port (resent every 300 ms); the first reply, or `ERR TIMEOUT`. */
async function udpDial(ns: string, host: string, port: number, timeoutMs = 3000): Promise<string> {
  const script = `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});`
    + `const go=()=>s.send('hi',${port},'${host}');go();setInterval(go,300);`
    + `setTimeout(()=>{console.log('ERR TIMEOUT');process.exit(0)},${timeoutMs})`;
  return (await runOk(inNs(ns, script), { timeoutMs: 10000 })).trim();
}

test('overlay + nft VIP between two netns hosts: east-west (TCP and UDP), host → VIP, mesh (loopback and underlay), hairpin, updates', async (t) => {
  const { id, ns } = await netnsSet(t, ['u', 'a', 'b', 'ta', 'tb', 'tc']);
  const br = `shoalt-${id}`;
  const ip = (n: string, ...a: string[]) => runOk(['ip', '-n', n, ...a]);
  // Underlay.
  await ip(ns.u!, 'link', 'add', br, 'type', 'bridge');
  await ip(ns.u!, 'addr', 'add', '10.98.0.1/24', 'dev', br);
  await ip(ns.u!, 'link', 'set', br, 'up');
  const hosts = [
    { h: ns.a!, task: ns.ta!, i: 1 },
    { h: ns.b!, task: ns.tb!, i: 2 },
  ];
  const cfgs: OverlayConfig[] = [];
  for (const { h, task, i } of hosts) {
    await ip(ns.u!, 'link', 'add', `u${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h);
    await ip(ns.u!, 'link', 'set', `u${i}`, 'master', br, 'up');
    await ip(h, 'addr', 'add', `10.98.0.1${i}/24`, 'dev', 'eth0');
    await ip(h, 'link', 'set', 'eth0', 'up');
    // Stand-in for Docker's bridge network and one task on it.
    await ip(h, 'link', 'add', 'ovl0', 'type', 'bridge');
    await ip(h, 'addr', 'add', `10.97.${i}.1/24`, 'dev', 'ovl0');
    await ip(h, 'link', 'set', 'ovl0', 'up');
    await ip(h, 'link', 'add', 'vtask', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', task);
    await ip(h, 'link', 'set', 'vtask', 'master', 'ovl0', 'mtu', '1450', 'up');
    await ip(task, 'addr', 'add', `10.97.${i}.2/24`, 'dev', 'eth0');
    await ip(task, 'link', 'set', 'eth0', 'mtu', '1450', 'up');
    await ip(task, 'route', 'add', 'default', 'via', `10.97.${i}.1`);
    // dockerd would have created DOCKER-USER; the executor only inserts into it.
    await runOk(['iptables', '-N', 'DOCKER-USER'], { netns: h });
    if (i === 1) {
      await ip(h, 'link', 'add', 'vtask2', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.tc!);
      await ip(h, 'link', 'set', 'vtask2', 'master', 'ovl0', 'mtu', '1450', 'up');
      await ip(ns.tc!, 'addr', 'add', '10.97.1.3/24', 'dev', 'eth0');
      await ip(ns.tc!, 'link', 'set', 'eth0', 'mtu', '1450', 'up');
      await ip(ns.tc!, 'route', 'add', 'default', 'via', '10.97.1.1');
    }
    cfgs.push({ subnet: `10.97.${i}.0/24`, clusterCidr: '10.97.0.0/16', vipCidr: '10.96.0.0/16', underlayIp: `10.98.0.1${i}`, underlayDev: 'eth0' });
  }
  const peers = cfgs.map((c) => ({ underlayIp: c.underlayIp, subnet: c.subnet }));
  const execs = hosts.map(({ h }, k) => new OverlayExecutor(cfgs[k]!, { netns: h }));
  for (const ex of execs) {
    t.true((await ex.ensureHost()).length > 0);
    t.is((await ex.ensurePeers(peers)).length, 3);
  }
  // Level-triggered: a second pass against the real state plans nothing.
  for (const ex of execs) {
    t.deepEqual(await ex.ensureHost(), []);
    t.deepEqual(await ex.ensurePeers(peers), []);
  }

  await server(t, ns.tb!, 'tb', 80);
  await server(t, ns.ta!, 'ta', 81);
  await udpServer(t, ns.tb!, 'tb-udp', 53);
  // Cross-host by task IP over VXLAN: the backend sees the real client address.
  t.is(await dial(ns.ta!, '10.97.2.2', 80), 'tb 10.97.1.2');

  const table = (webState: 'active' | 'draining'): ServiceTable => ({
    clusterCidr: '10.97.0.0/16',
    services: [
      { id: 'web', name: 'web', vip: '10.96.0.10', ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080 }], backends: [{ ip: '10.97.2.2', taskId: 'tb', state: webState }] },
      { id: 'self', name: 'self', vip: '10.96.0.11', ports: [{ protocol: 'tcp', targetPort: 81 }], backends: [{ ip: '10.97.1.2', taskId: 'ta', state: 'active' }] },
      { id: 'dns', name: 'dns', vip: '10.96.0.12', ports: [{ protocol: 'udp', targetPort: 53, publishedPort: 5353 }], backends: [{ ip: '10.97.2.2', taskId: 'tb', state: 'active' }] },
    ],
  });
  const dps = hosts.map(({ h }) => new NftDataplane({ netns: h }));
  t.teardown(async () => { for (const d of dps) await d.close().catch(() => {}); });
  for (const [k, dp] of dps.entries()) {
    await dp.sync({ ...table('active'), hairpin: [{ subnet: cfgs[k]!.subnet, bridge: 'ovl0' }] });
  }
  // East-west through the VIP (prerouting on host a), client address preserved.
  t.is(await dial(ns.ta!, '10.96.0.10', 80), 'tb 10.97.1.2');
  // UDP: east-west through the VIP and through the routing mesh (published 5353/udp).
  t.is(await udpDial(ns.ta!, '10.96.0.12', 53), 'tb-udp 10.97.1.2');
  t.is(await udpDial(ns.u!, '10.98.0.11', 5353), 'tb-udp 10.97.1.0');
  t.is(await udpDial(ns.b!, '10.98.0.12', 5353), 'tb-udp 10.97.2.1');
  // Host process → VIP (output hook + VIP route, NETWORKING.md pitfall 6): source is the bridge gateway.
  t.is(await dial(ns.a!, '10.96.0.10', 80), 'tb 10.97.1.1');
  // Routing mesh from the underlay (NETWORKING.md pitfall 3): masqueraded to host a's VTEP address.
  t.is(await dial(ns.u!, '10.98.0.11', 8080), 'tb 10.97.1.0');
  // Routing mesh from host b itself (local backend host) and from host a's loopback (route_localnet).
  t.is(await dial(ns.b!, '10.98.0.12', 8080), 'tb 10.97.2.1');
  t.is(await dial(ns.a!, '127.0.0.1', 8080), 'tb 10.97.1.0');
  // Hairpin: tc reaches ta (same bridge) through the VIP; masqueraded to the gateway so the reply
  // comes back through the NAT, with br_netfilter on and off (NETWORKING.md pitfall 4).
  t.is(await dial(ns.tc!, '10.96.0.11', 81), 'ta 10.97.1.1');
  await runOk(['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=0'], { netns: ns.a! });
  t.is(await dial(ns.tc!, '10.96.0.11', 81), 'ta 10.97.1.1');

  // Backend drained: no backend left → the VIP resets new connections; then back.
  const r1 = await dps[0]!.sync({ ...table('draining'), hairpin: [{ subnet: cfgs[0]!.subnet, bridge: 'ovl0' }] });
  t.is(r1.mode, 'incremental');
  t.is(await dial(ns.ta!, '10.96.0.10', 80), 'ERR ECONNREFUSED');
  await dps[0]!.sync({ ...table('active'), hairpin: [{ subnet: cfgs[0]!.subnet, bridge: 'ovl0' }] });
  t.is(await dial(ns.ta!, '10.96.0.10', 80), 'tb 10.97.1.2');

  // Hard removal (task gone): its DNATed conntrack entries on host a are deleted.
  const flows = async () => (await runOk(['conntrack', '-L', '-p', 'tcp', '--dst-nat', '10.97.2.2'], { netns: ns.a! })).trim().split('\n').filter(Boolean).length;
  t.true((await flows()) > 0);
  const gone = table('active');
  gone.services[0]!.backends = [];
  await dps[0]!.sync({ ...gone, hairpin: [{ subnet: cfgs[0]!.subnet, bridge: 'ovl0' }] });
  t.is(await flows(), 0);

  // A host leaves: host a drops its entries, and tb becomes unreachable from ta.
  t.is((await execs[0]!.ensurePeers([peers[0]!])).length, 3);
  t.is(await dial(ns.ta!, '10.97.2.2', 80, 1000), 'ERR TIMEOUT');
});
