import test from 'ava';
import type { NetworkView } from '@shoal/api';
import { dnsRecordsFromView, serviceTableFromView } from '../src/fromview.js';
import { renderNftRuleset } from '../src/nft.js';
import { resolveServiceName } from '../src/dns.js';

const view: NetworkView = {
  clusterCidr: '10.97.0.0/16', vipCidr: '10.96.0.0/16',
  nodes: [{ id: 'n1', addr: '10.99.0.11', subnet: '10.97.1.0/24', vtepMac: '02:00:0a:61:01:00', state: 'ready' }],
  services: [
    { id: 'web', name: 'web', mode: 'vip', networks: [{ id: 'app', aliases: ['www'] }],
      ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }, { protocol: 'tcp', targetPort: 81, publishedPort: 9081, publishMode: 'host' }],
      virtualIps: [{ networkId: 'ingressid', addr: '10.96.0.2/16' }, { networkId: 'app', addr: '10.96.0.3/16' }] },
    { id: 'rr', name: 'rr', mode: 'dnsrr', networks: [{ id: 'app' }], ports: [{ protocol: 'tcp', targetPort: 53, publishedPort: 30000, publishMode: 'ingress' }], virtualIps: [] },
  ],
  tasks: [
    { id: 't1', serviceId: 'web', nodeId: 'n1', addr: '10.97.1.2', networks: ['app', 'ingressid'], backend: 'active' },
    { id: 't2', serviceId: 'web', nodeId: 'n1', addr: '10.97.1.3', networks: ['app', 'ingressid'], backend: 'draining' },
    { id: 't3', serviceId: 'web', nodeId: 'n1', addr: '10.97.1.4', networks: ['app', 'ingressid'], backend: null },
    { id: 't4', serviceId: 'rr', nodeId: 'n1', addr: '10.97.1.5', networks: ['app'], backend: 'active' },
  ],
};

test('a network view becomes a ServiceTable: one entry per VIP, mesh ports on the first, dnsrr mesh-only', (t) => {
  const table = serviceTableFromView(view, { hairpin: [{ subnet: '10.97.1.0/24', bridge: 'ovl0' }] });
  const backends = [{ ip: '10.97.1.2', taskId: 't1', state: 'active' }, { ip: '10.97.1.3', taskId: 't2', state: 'draining' }];
  t.deepEqual(table.services, [
    { id: 'web', name: 'web', vip: '10.96.0.2', vipAllPorts: true, ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080 }, { protocol: 'tcp', targetPort: 81, publishedPort: undefined }], backends },
    { id: 'webxapp', name: 'web', vip: '10.96.0.3', vipAllPorts: true, ports: [{ protocol: 'tcp', targetPort: 80 }, { protocol: 'tcp', targetPort: 81 }], backends },
    { id: 'rr', name: 'rr', ports: [{ protocol: 'tcp', targetPort: 53, publishedPort: 30000 }], backends: [{ ip: '10.97.1.5', taskId: 't4', state: 'active' }] },
  ]);
  t.is(table.clusterCidr, '10.97.0.0/16');
  t.notThrows(() => renderNftRuleset(table));
});

test('a network view becomes DNS records scoped by network', (t) => {
  const dns = dnsRecordsFromView(view);
  t.deepEqual(dns.services, [
    { name: 'web', aliases: ['www'], networkId: 'app', mode: 'vip', vip: '10.96.0.3', taskIps: ['10.97.1.2'] },
    { name: 'rr', networkId: 'app', mode: 'dnsrr', taskIps: ['10.97.1.5'] },
  ]);
  const idx = {
    byName: new Map([['web', [dns.services[0]!]], ['www', [dns.services[0]!]], ['rr', [dns.services[1]!]]]),
    clients: new Map(dns.clients.map((c) => [c.ip, new Set(c.networks)])),
  };
  t.deepEqual(resolveServiceName(idx, 'web', '10.97.1.5'), ['10.96.0.3']);
  t.deepEqual(resolveServiceName(idx, 'tasks.web', '10.97.1.5'), ['10.97.1.2']);
  t.deepEqual(resolveServiceName(idx, 'rr', '10.97.1.2'), ['10.97.1.5']);
  t.is(resolveServiceName(idx, 'web', '10.97.9.9'), null, 'unknown askers are forwarded');
});
