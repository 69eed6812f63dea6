import test from 'ava';
import type { Service, ServiceSpec } from '@shoal/api';
import { AddressPool, IdAllocator, parseCidr, SubnetAllocator, PortAllocator, checkPortConflicts, findPortConflict } from '../src/index.js';

test('parseCidr: normalised subnets and one-line errors', (t) => {
  t.deepEqual(parseCidr('10.0.1.0/24'), { base: 0x0a000100, bits: 24, size: 256 });
  t.throws(() => parseCidr('10.0.1.5/24'), { message: "invalid subnet '10.0.1.5/24': host bits are set; did you mean 10.0.1.0/24?" });
  t.throws(() => parseCidr('10.0.1.0'), { message: /expected CIDR notation/ });
  t.throws(() => parseCidr('10.0.300.0/24'), { message: /invalid IPv4 address '10.0.300.0'/ });
  t.throws(() => parseCidr('10.0.0.0/31'), { message: /between \/8 and \/30/ });
});

test('AddressPool: gateway .1, network/broadcast reserved, full pool throws, release and next-fit reuse', (t) => {
  const p = new AddressPool('10.0.9.0/29');
  t.is(p.gateway, '10.0.9.1');
  t.is(p.free, 5);
  const got = [1, 2, 3, 4, 5].map((i) => p.allocate(`t${i}`));
  t.deepEqual(got, ['10.0.9.2', '10.0.9.3', '10.0.9.4', '10.0.9.5', '10.0.9.6']);
  t.throws(() => p.allocate('t6'), { message: 'no free address left in 10.0.9.0/29' });
  t.false(p.release('10.0.9.3', 'someone-else'), 'only the owner releases');
  t.true(p.release('10.0.9.3/29', 't2'));
  t.is(p.free, 1);
  t.is(p.allocate('t7'), '10.0.9.3');
  t.is(p.ownerOf('10.0.9.3'), 't7');
  // next-fit: a freed address comes back only after the others
  const q = new AddressPool('10.0.8.0/24');
  const a = q.allocate('a');
  q.release(a, 'a');
  t.not(q.allocate('b'), a);
});

test('AddressPool.reserve: rebuilding from recorded addresses', (t) => {
  const p = new AddressPool('10.0.0.0/24');
  t.true(p.reserve('10.0.0.7/24', 'x'));
  t.true(p.reserve('10.0.0.7/24', 'x'), 'idempotent for its owner');
  t.false(p.reserve('10.0.0.7', 'y'), 'taken by another owner');
  t.false(p.reserve('10.0.0.1', 'y'), 'gateway');
  t.false(p.reserve('10.9.0.1', 'y'), 'outside the subnet');
  t.is(p.free, 252);
});

test('SubnetAllocator: /24s from the pool, explicit subnets reserved, overlaps refused', (t) => {
  const s = new SubnetAllocator('10.0.0.0/8', 24);
  t.is(s.reserve('10.255.0.0/16', 'ingress'), '10.255.0.0/16');
  t.is(s.allocate('a'), '10.0.0.0/24');
  t.is(s.reserve('10.0.1.0/24', 'b'), '10.0.1.0/24');
  t.is(s.allocate('c'), '10.0.2.0/24');
  t.throws(() => s.reserve('10.0.0.0/16', 'd'), { message: 'subnet 10.0.0.0/16 overlaps 10.0.0.0/24 already used by network a' });
  s.release('a');
  t.is(s.reserve('10.0.0.0/24', 'e'), '10.0.0.0/24');
  const small = new SubnetAllocator('192.168.0.0/23', 24);
  small.allocate('x');
  small.allocate('y');
  t.throws(() => small.allocate('z'), { message: 'address pool 192.168.0.0/23 has no free /24 subnet left' });
});

test('IdAllocator: VNIs from 4097', (t) => {
  const v = new IdAllocator();
  t.is(v.allocate('a'), 4097);
  t.true(v.reserve(4098, 'b'));
  t.is(v.allocate('c'), 4099);
  t.false(v.reserve(4097, 'z'));
  v.release(4097, 'a');
  t.true(v.reserve(4097, 'z'));
});

test('PortAllocator: dynamic ports, kept across re-assignment, conflicts name the owner', (t) => {
  const names: Record<string, string> = { s1: 'web', s2: 'api' };
  const p = new PortAllocator([30000, 30002], (id) => names[id] ?? id);
  const web = p.assign('s1', [{ protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'ingress' }, { protocol: 'tcp', targetPort: 443, publishedPort: 8443, publishMode: 'ingress' }]);
  t.deepEqual(web.map((x) => x.publishedPort), [30000, 8443]);
  // Same spec again (e.g. a service update) keeps the dynamic port.
  t.deepEqual(p.assign('s1', [{ protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'ingress' }], web).map((x) => x.publishedPort), [30000]);
  t.is(p.ownerOf('tcp', 8443), undefined, 'dropped port freed');
  t.throws(() => p.assign('s2', [{ protocol: 'tcp', targetPort: 80, publishedPort: 30000, publishMode: 'ingress' }]), { message: 'port 30000/tcp is already in use by service web' });
  t.deepEqual(p.assign('s2', [{ protocol: 'udp', targetPort: 53, publishedPort: 30000, publishMode: 'ingress' }]).map((x) => x.publishedPort), [30000], 'udp is separate');
  t.deepEqual(p.assign('s2', [{ protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'host' }]).map((x) => x.publishedPort), [0], 'host mode passes through');
  p.assign('s3', [{ protocol: 'tcp', targetPort: 1, publishedPort: 0, publishMode: 'ingress' }, { protocol: 'tcp', targetPort: 2, publishedPort: 0, publishMode: 'ingress' }]);
  t.throws(() => p.assign('s4', [{ protocol: 'tcp', targetPort: 1, publishedPort: 0, publishMode: 'ingress' }]), { message: 'no free tcp port left in the dynamic range 30000-30002' });
  p.release('s1');
  t.deepEqual(p.assign('s4', [{ protocol: 'tcp', targetPort: 1, publishedPort: 0, publishMode: 'ingress' }]).map((x) => x.publishedPort), [30000]);
});

const spec = (name: string, ports: ServiceSpec['endpoint']): ServiceSpec => ({
  name, labels: {}, mode: { replicated: { replicas: 1 } }, endpoint: ports,
  task: { container: { image: 'x' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [], maxReplicas: 0 }, networks: [], forceUpdate: 0 },
});
const svc = (id: string, s: ServiceSpec, allocated?: Service['endpoint']): Service => ({ id, meta: { version: 1, createdAt: '', updatedAt: '' }, spec: s, specVersion: 1, ...(allocated ? { endpoint: allocated } : {}) });

test('checkPortConflicts: ingress vs ingress and host, host vs host allowed, self ignored', (t) => {
  const ing = (published: number, mode: 'ingress' | 'host' = 'ingress') => ({ mode: 'vip' as const, ports: [{ protocol: 'tcp' as const, targetPort: 80, publishedPort: published, publishMode: mode }] });
  const web = svc('s1', spec('web', ing(8080)));
  const dyn = svc('s2', spec('dyn', ing(0)), { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 30000, publishMode: 'ingress' }], virtualIps: [] });
  const hosty = svc('s3', spec('hosty', ing(9000, 'host')));
  const all = [web, dyn, hosty];
  t.throws(() => checkPortConflicts(all, spec('new', ing(8080))), { message: 'port 8080/tcp is already in use by service web' });
  t.is(findPortConflict(all, spec('new', ing(30000))), 'port 30000/tcp is already in use by service dyn');
  t.is(findPortConflict(all, spec('new', ing(9000))), 'port 9000/tcp is already in use by service hosty as a host-mode port');
  t.is(findPortConflict(all, spec('new', ing(8080, 'host'))), 'port 8080/tcp is already in use by service web');
  t.is(findPortConflict(all, spec('new', ing(9000, 'host'))), undefined);
  t.is(findPortConflict(all, spec('new', ing(0))), undefined);
  t.is(findPortConflict(all, spec('web', ing(8080)), 's1'), undefined, 'updating the owner itself');
  const twice = spec('twice', { mode: 'vip', ports: [...ing(81).ports, ...ing(81).ports] });
  t.is(findPortConflict([], twice), 'port 81/tcp is published more than once by service twice');
});
