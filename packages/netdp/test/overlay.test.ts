import test from 'ava';
import {
  overlayAddresses, planHost, planPeers, dockerNetworkCreateBody, dockerNetworkMatches, resolveOverlayConfig,
  parseFdbJson, parseNeighJson, parseRouteJson, parseVxlanLinkJson, parseAddrJson,
  type OverlayConfig, type HostState, type PeerState,
} from '../src/overlay.js';

const cfg: OverlayConfig = { subnet: '10.97.1.0/24', clusterCidr: '10.97.0.0/16', vipCidr: '10.96.0.0/16', underlayIp: '10.98.0.11', underlayDev: 'eth0' };
const empty: HostState = { vxlan: null, vxlanAddrs: [], vipRoute: false, overlayAccept: false, dnatAccept: false, sysctls: {} };
const done: HostState = {
  vxlan: { vni: 4097, local: '10.98.0.11', dstPort: 4789, learning: false, mtu: 1450, mac: '02:00:0a:61:01:00', up: true },
  vxlanAddrs: ['10.97.1.0/32'], vipRoute: true, overlayAccept: true, dnatAccept: true,
  sysctls: { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.ovl0.route_localnet': '1', 'net.ipv4.conf.vxlan0.route_localnet': '1' },
};

test('addresses derive from the host subnet: gateway .1, VTEP .0, MAC 02:00 + subnet bytes', (t) => {
  t.deepEqual(overlayAddresses('10.97.3.0/24'), { gateway: '10.97.3.1', vtepIp: '10.97.3.0', vtepMac: '02:00:0a:61:03:00' });
  t.throws(() => resolveOverlayConfig({ ...cfg, subnet: '10.99.1.0/24' }), { message: /outside the cluster CIDR 10.97.0.0\/16/ });
  t.throws(() => resolveOverlayConfig({ ...cfg, vni: 0 }), { message: /invalid VNI 0/ });
});

test('docker network body and match (bridge options, masquerade off)', (t) => {
  const body = dockerNetworkCreateBody(cfg);
  t.deepEqual(body, {
    Name: 'ovnet', Driver: 'bridge', CheckDuplicate: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: '10.97.1.0/24', Gateway: '10.97.1.1' }] },
    Options: { 'com.docker.network.bridge.name': 'ovl0', 'com.docker.network.driver.mtu': '1450', 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
  });
  t.true(dockerNetworkMatches({ Driver: 'bridge', IPAM: body.IPAM, Options: { ...body.Options, extra: 'x' } }, cfg));
  t.false(dockerNetworkMatches({ Driver: 'bridge', IPAM: body.IPAM, Options: { ...body.Options, 'com.docker.network.driver.mtu': '1500' } }, cfg));
  t.false(dockerNetworkMatches({ Driver: 'bridge', IPAM: { Config: [{ Subnet: '10.97.2.0/24', Gateway: '10.97.2.1' }] }, Options: body.Options }, cfg));
});

test('planHost: from nothing, the per-host commands; once done, nothing', (t) => {
  t.deepEqual(planHost(cfg, empty), [
    ['ip', 'link', 'add', 'vxlan0', 'type', 'vxlan', 'id', '4097', 'dstport', '4789', 'local', '10.98.0.11', 'dev', 'eth0', 'nolearning'],
    ['ip', 'link', 'set', 'vxlan0', 'address', '02:00:0a:61:01:00', 'mtu', '1450'],
    ['ip', 'addr', 'add', '10.97.1.0/32', 'dev', 'vxlan0'],
    ['ip', 'link', 'set', 'vxlan0', 'up'],
    ['iptables', '-I', 'DOCKER-USER', '-i', 'vxlan0', '-o', 'ovl0', '-j', 'ACCEPT'],
    ['iptables', '-I', 'DOCKER-USER', '-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'ACCEPT'],
    ['ip', 'route', 'replace', '10.96.0.0/16', 'dev', 'ovl0', 'src', '10.97.1.1'],
    ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'],
    ['sysctl', '-q', '-w', 'net.ipv4.conf.ovl0.route_localnet=1'],
    ['sysctl', '-q', '-w', 'net.ipv4.conf.vxlan0.route_localnet=1'],
  ]);
  t.deepEqual(planHost(cfg, done), []);
  t.deepEqual(planHost({ ...cfg, firewall: 'none' }, { ...done, overlayAccept: false, dnatAccept: false }), []);
});

test('planHost: a VXLAN device with the wrong VNI is recreated; a stray address removed', (t) => {
  const plan = planHost(cfg, { ...done, vxlan: { ...done.vxlan!, vni: 42 } });
  t.deepEqual(plan.slice(0, 2).map((c) => c.slice(0, 3).join(' ')), ['ip link del', 'ip link add']);
  t.true(plan.some((c) => c.join(' ') === 'ip addr add 10.97.1.0/32 dev vxlan0'));
  t.deepEqual(planHost(cfg, { ...done, vxlanAddrs: ['10.97.1.0/32', '10.97.9.0/32'] }), [['ip', 'addr', 'del', '10.97.9.0/32', 'dev', 'vxlan0']]);
  t.deepEqual(planHost(cfg, { ...done, vxlan: { ...done.vxlan!, mtu: 1500 } }), [['ip', 'link', 'set', 'vxlan0', 'address', '02:00:0a:61:01:00', 'mtu', '1450']]);
});

const none: PeerState = { fdb: [], neigh: [], routes: [] };
const peers = [{ underlayIp: '10.98.0.12', subnet: '10.97.2.0/24' }, { underlayIp: '10.98.0.13', subnet: '10.97.3.0/24' }, { underlayIp: '10.98.0.11', subnet: '10.97.1.0/24' }];

test('planPeers: three entries per remote host (fdb, neighbour, route), self skipped', (t) => {
  t.deepEqual(planPeers(cfg, peers, none).map((c) => c.join(' ')), [
    'bridge fdb append 02:00:0a:61:02:00 dev vxlan0 dst 10.98.0.12',
    'ip neigh replace 10.97.2.0 lladdr 02:00:0a:61:02:00 dev vxlan0 nud permanent',
    'ip route replace 10.97.2.0/24 via 10.97.2.0 dev vxlan0 onlink',
    'bridge fdb append 02:00:0a:61:03:00 dev vxlan0 dst 10.98.0.13',
    'ip neigh replace 10.97.3.0 lladdr 02:00:0a:61:03:00 dev vxlan0 nud permanent',
    'ip route replace 10.97.3.0/24 via 10.97.3.0 dev vxlan0 onlink',
  ]);
});

test('planPeers: diff against parsed state — nothing when equal, removal and a moved host', (t) => {
  // Real `-j` output captured on this machine (one peer, 10.97.2.0/24 at 10.98.0.12).
  const state: PeerState = {
    fdb: parseFdbJson('[{"mac":"02:00:0a:61:02:00","dst":"10.98.0.12","flags":["self"],"state":"permanent"},{"mac":"02:00:0a:61:01:00","flags":["self"],"state":"permanent"}]'),
    neigh: parseNeighJson('[{"dst":"10.97.2.0","lladdr":"02:00:0a:61:02:00","state":["PERMANENT"]}]'),
    routes: parseRouteJson('[{"dst":"10.97.2.0/24","gateway":"10.97.2.0","flags":["onlink"]}]'),
  };
  t.deepEqual(state.fdb, [{ mac: '02:00:0a:61:02:00', dst: '10.98.0.12' }]);
  t.deepEqual(planPeers(cfg, [peers[0]!], state), []);
  t.deepEqual(planPeers(cfg, [], state).map((c) => c.join(' ')), [
    'ip route del 10.97.2.0/24 dev vxlan0',
    'ip neigh del 10.97.2.0 dev vxlan0',
    'bridge fdb del 02:00:0a:61:02:00 dev vxlan0 dst 10.98.0.12',
  ]);
  t.deepEqual(planPeers(cfg, [{ underlayIp: '10.98.0.22', subnet: '10.97.2.0/24' }], state).map((c) => c.join(' ')), [
    'bridge fdb del 02:00:0a:61:02:00 dev vxlan0 dst 10.98.0.12',
    'bridge fdb append 02:00:0a:61:02:00 dev vxlan0 dst 10.98.0.22',
  ]);
  t.throws(() => planPeers(cfg, [{ underlayIp: '10.98.0.12', subnet: '192.168.0.0/24' }], state), { message: /outside the cluster CIDR/ });
});

test('link and address parsers read `ip -j -d link` / `ip -j addr`', (t) => {
  const link = '[{"ifindex":4,"ifname":"vxlan0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"address":"02:00:0a:61:01:00","linkinfo":{"info_kind":"vxlan","info_data":{"id":4097,"local":"10.98.0.11","link":"eth0","port":4789,"learning":false}}}]';
  t.deepEqual(parseVxlanLinkJson(link), done.vxlan);
  t.is(parseVxlanLinkJson('[{"ifname":"vxlan0","linkinfo":{"info_kind":"veth"}}]'), null);
  t.deepEqual(parseAddrJson('[{"ifname":"vxlan0","addr_info":[{"family":"inet","local":"10.97.1.0","prefixlen":32},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]'), ['10.97.1.0/32']);
});
