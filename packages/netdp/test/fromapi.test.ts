import test from 'ava';
import type { Service, Task } from '@shoal/api';
import { serviceTableFromApi, dnsRecordsFromApi } from '../src/fromapi.js';
import { renderNftRuleset } from '../src/nft.js';

const meta = { version: 1, createdAt: '', updatedAt: '' };
const svc = (id: string, name: string, mode: 'vip' | 'dnsrr', vips: { networkId: string; addr: string }[], ports: Service['endpoint'] extends infer E ? E extends { ports: infer P } ? P : never : never): Service => ({
  id, meta, specVersion: 1,
  spec: {
    name, labels: {}, mode: { replicated: { replicas: 2 } }, endpoint: { mode, ports },
    task: { container: { image: 'x' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], maxReplicas: 0 }, networks: vips.length ? vips.map((v) => ({ target: v.networkId, aliases: ['www'] })) : [{ target: 'ov1' }], forceUpdate: 0 },
  },
  endpoint: { ports, virtualIps: vips },
});
const task = (id: string, serviceId: string, ip: string, state: Task['status']['state'], desired: Task['desiredState'] = 'running'): Task => ({
  id, meta, serviceId, serviceName: 's', slot: 1, nodeId: 'n', specVersion: 1, spec: svc('x', 'x', 'vip', [], []).spec.task,
  desiredState: desired, status: { state, timestamp: '', message: '' }, networks: [{ networkId: 'ov1', addresses: [`${ip}/24`] }],
});

test('services and tasks become a ServiceTable and DNS records', (t) => {
  const services = [
    svc('web', 'web', 'vip', [{ networkId: 'ov1', addr: '10.96.0.10/16' }], [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }, { protocol: 'tcp', targetPort: 9090, publishedPort: 9090, publishMode: 'host' }]),
    svc('rr', 'rr', 'dnsrr', [], []),
  ];
  const tasks = [
    task('t1', 'web', '10.97.1.2', 'running'),
    task('t2', 'web', '10.97.2.2', 'running', 'shutdown'),
    task('t3', 'web', '10.97.3.2', 'starting'),
    task('t4', 'rr', '10.97.1.9', 'running'),
    task('t5', 'web', '10.97.1.5', 'failed'),
  ];
  const table = serviceTableFromApi(services, tasks, { clusterCidr: '10.97.0.0/16' });
  t.deepEqual(table.services, [{
    id: 'web', name: 'web', vip: '10.96.0.10', vipAllPorts: true,
    ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080 }, { protocol: 'tcp', targetPort: 9090, publishedPort: undefined }],
    backends: [{ ip: '10.97.1.2', taskId: 't1', state: 'active' }, { ip: '10.97.2.2', taskId: 't2', state: 'draining' }],
  }]);
  t.notThrows(() => renderNftRuleset(table));
  const dns = dnsRecordsFromApi(services, tasks);
  t.deepEqual(dns.services, [
    { name: 'web', aliases: ['www'], networkId: 'ov1', mode: 'vip', vip: '10.96.0.10', taskIps: ['10.97.1.2'] },
    { name: 'rr', aliases: undefined, networkId: 'ov1', mode: 'dnsrr', vip: undefined, taskIps: ['10.97.1.9'] },
  ]);
  t.deepEqual(dns.clients.map((c) => c.ip), ['10.97.1.2', '10.97.2.2', '10.97.3.2', '10.97.1.9']);
});
