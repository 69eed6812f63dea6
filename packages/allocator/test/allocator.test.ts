import test from 'ava';
import type { Network, Node, PortConfig, Service, Task } from '@shoal/api';
import type { MemoryStore, Proposer } from '@shoal/store';
import { FakeClock, newTestStore } from '@shoal/testkit';
import { Allocator, UndoJournal, type AllocatorOptions } from '../src/index.js';

const meta = { version: 0, createdAt: '', updatedAt: '' };

function service(id: string, name: string, over: { ports?: PortConfig[]; networks?: string[]; mode?: 'vip' | 'dnsrr' } = {}): Service {
  return {
    id, meta, specVersion: 1,
    spec: {
      name, labels: {}, mode: { replicated: { replicas: 1 } },
      endpoint: { mode: over.mode ?? 'vip', ports: over.ports ?? [] },
      task: {
        container: { image: 'x' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 },
        placement: { constraints: [], maxReplicas: 0 }, networks: (over.networks ?? []).map((target) => ({ target })), forceUpdate: 0,
      },
    },
  };
}

function task(id: string, svc: Service, slot = 1): Task {
  return {
    id, meta, serviceId: svc.id, serviceName: svc.spec.name, slot, nodeId: '', spec: svc.spec.task, specVersion: 1,
    desiredState: 'running', status: { state: 'new', timestamp: '', message: '' }, networks: [],
  };
}

function network(id: string, name: string, subnet?: string): Network {
  return { id, meta, spec: { name, labels: {}, driver: 'overlay', attachable: false, ingress: false, ...(subnet ? { subnet } : {}) } };
}

const node = (id: string): Node => ({ id, meta, role: 'worker', spec: { labels: {}, desiredRole: 'worker', availability: 'active' }, status: { state: 'ready', message: '', addr: '' } });
const port = (targetPort: number, publishedPort: number): PortConfig => ({ protocol: 'tcp', targetPort, publishedPort, publishMode: 'ingress' });

const clocks = new WeakMap<Allocator, FakeClock>();

/** An allocator on its own fake clock (tests in a file run concurrently: no shared clock). */
function newAllocator(store: MemoryStore, opts: AllocatorOptions = {}): Allocator {
  const clock = new FakeClock();
  const alloc = new Allocator(store, { ...opts, clock });
  clocks.set(alloc, clock);
  return alloc;
}

/**
 * Runs `alloc` to quiescence on its fake clock — awaits its pass, fires its next debounce or retry
 * timer, until no pass is running and no timer is armed — then returns `fn()`, failing when that is
 * falsy. Deterministic: no wall-clock polling.
 */
async function settled<T>(alloc: Allocator, what: string, fn: () => T | undefined | false): Promise<T> {
  const clock = clocks.get(alloc)!;
  for (let i = 0; i < 100; i++) {
    await alloc.idle();
    const due = clock.nextDueInMs;
    if (due === undefined) break;
    clock.advance(due);
  }
  const v = fn();
  if (!v) throw new Error(`not so once the allocator settled: ${what}`);
  return v;
}

const get = <T extends 'tasks' | 'services' | 'networks'>(s: MemoryStore, table: T, id: string) => s.view((tx) => tx.get(table, id));
const ingressOf = (s: MemoryStore) => s.view((tx) => tx.list('networks').find((n) => n.spec.ingress));

/** Every address recorded on a task meant to run (not ended) or as a VIP, to check for duplicates. */
function heldAddresses(s: MemoryStore): string[] {
  const ended = ['complete', 'shutdown', 'failed', 'rejected', 'orphaned', 'remove'];
  return s.view((tx) => [
    ...tx.list('tasks').filter((t) => t.desiredState === 'running' && !ended.includes(t.status.state)).flatMap((t) => t.networks.flatMap((a) => a.addresses)),
    ...tx.list('services').flatMap((x) => x.endpoint?.virtualIps.map((v) => v.addr) ?? []),
  ]);
}

test('start creates the ingress network (10.255.0.0/16, first VNI); overlays get pool subnets and VNIs', async (t) => {
  const store = newTestStore();
  const alloc = newAllocator(store);
  alloc.start();
  const ing = await settled(alloc, 'ingress', () => ingressOf(store));
  t.is(ing.spec.name, 'ingress');
  t.deepEqual(ing.ipam, { subnet: '10.255.0.0/16', gateway: '10.255.0.1' });
  t.is(ing.vni, 4097);
  await store.update((tx) => { tx.create('networks', network('n1', 'backend')); tx.create('networks', network('n2', 'fixed', '10.0.0.0/24')); });
  const [a, b] = await settled(alloc, 'ipam', () => {
    const x = get(store, 'networks', 'n1'), y = get(store, 'networks', 'n2');
    return x?.ipam && y?.ipam && [x, y];
  });
  t.deepEqual(b!.ipam, { subnet: '10.0.0.0/24', gateway: '10.0.0.1' });
  t.deepEqual(a!.ipam, { subnet: '10.0.1.0/24', gateway: '10.0.1.1' }, 'the explicit subnet is skipped');
  t.deepEqual([a!.vni, b!.vni].sort(), [4098, 4099]);
  await alloc.stop();
  // A second start (new leader) finds the ingress network and creates no other.
  const again = newAllocator(store);
  again.start();
  await again.tick();
  t.is(store.view((tx) => tx.list('networks')).filter((n) => n.spec.ingress).length, 1);
  await again.stop();
});

test('service ports and VIPs, task addresses, NEW → PENDING', async (t) => {
  const store = newTestStore();
  const alloc = newAllocator(store);
  alloc.start();
  await store.update((tx) => tx.create('networks', network('n1', 'backend')));
  const web = service('s1', 'web', { ports: [port(80, 0), port(443, 8443)], networks: ['backend'] });
  await store.update((tx) => { tx.create('services', web); tx.create('tasks', task('t1', web)); });
  const t1 = await settled(alloc, 'pending', () => { const x = get(store, 'tasks', 't1'); return x?.status.state === 'pending' && x; });
  const svc = get(store, 'services', 's1')!;
  const ing = ingressOf(store)!;
  t.deepEqual(svc.endpoint?.ports.map((p) => p.publishedPort), [30000, 8443]);
  // VIPs come from the VIP range (10.96.0.0/16), one per attached network.
  t.deepEqual(svc.endpoint?.virtualIps, [{ networkId: ing.id, addr: '10.96.0.2/16' }, { networkId: 'n1', addr: '10.96.0.3/16' }]);
  t.deepEqual(t1.networks, [{ networkId: ing.id, addresses: ['10.255.0.2/16'] }, { networkId: 'n1', addresses: ['10.0.0.2/24'] }]);
  t.deepEqual(t1.endpoint, svc.endpoint);
  t.is(t1.status.message, 'pending task scheduling');
  t.is(t1.status.err, undefined);

  // dnsrr: no VIPs; a network given by name works too; no ports → no ingress attachment.
  const rr = service('s2', 'rr', { mode: 'dnsrr', networks: ['backend'] });
  await store.update((tx) => { tx.create('services', rr); tx.create('tasks', task('t2', rr)); });
  const t2 = await settled(alloc, 'pending', () => { const x = get(store, 'tasks', 't2'); return x?.status.state === 'pending' && x; });
  t.deepEqual(t2.networks, [{ networkId: 'n1', addresses: ['10.0.0.3/24'] }]);
  t.is(get(store, 'services', 's2')!.endpoint, undefined);
  await alloc.stop();
});

test('published-port conflict: tasks wait with the reason, proceed once the port is free', async (t) => {
  const store = newTestStore();
  const alloc = newAllocator(store);
  alloc.start();
  const web = service('s1', 'web', { ports: [port(80, 8080)] });
  await store.update((tx) => { tx.create('services', web); tx.create('tasks', task('t1', web)); });
  await settled(alloc, 'web pending', () => get(store, 'tasks', 't1')?.status.state === 'pending');
  const other = service('s2', 'other', { ports: [port(80, 8080)] });
  await store.update((tx) => { tx.create('services', other); tx.create('tasks', task('t2', other)); });
  const stuck = await settled(alloc, 'reason', () => get(store, 'tasks', 't2')?.status.err);
  t.is(stuck, 'port 8080/tcp is already in use by service web');
  t.is(get(store, 'tasks', 't2')!.status.state, 'new');
  await store.update((tx) => { tx.delete('tasks', 't1'); tx.delete('services', 's1'); });
  const t2 = await settled(alloc, 'other pending', () => { const x = get(store, 'tasks', 't2'); return x?.status.state === 'pending' && x; });
  t.is(t2.status.err, undefined);
  t.deepEqual(get(store, 'services', 's2')!.endpoint?.ports.map((p) => p.publishedPort), [8080]);
  await alloc.stop();
});

test('missing network: task stays NEW with the reason', async (t) => {
  const store = newTestStore();
  const alloc = newAllocator(store);
  alloc.start();
  const s = service('s1', 'web', { networks: ['nosuch'] });
  await store.update((tx) => { tx.create('services', s); tx.create('tasks', task('t1', s)); });
  t.is(await settled(alloc, 'reason', () => get(store, 'tasks', 't1')?.status.err), 'network nosuch not found');
  // A network whose subnet overlaps another cannot be allocated: its tasks say so.
  await store.update((tx) => tx.create('networks', network('n9', 'clash', '10.255.1.0/24')));
  const s2 = service('s2', 'api', { networks: ['clash'] });
  await store.update((tx) => { tx.create('services', s2); tx.create('tasks', task('t2', s2)); });
  t.is(await settled(alloc, 'reason', () => get(store, 'tasks', 't2')?.status.err),
    'network clash: subnet 10.255.1.0/24 overlaps 10.255.0.0/16 already used by network ingress');
  await alloc.stop();
});

test('IPAM: full subnet → waits; addresses come back on task end, deletion and node crash; rebuild leaks nothing', async (t) => {
  const store = newTestStore();
  let alloc = newAllocator(store);
  alloc.start();
  await store.update((tx) => { tx.create('networks', network('n1', 'tiny', '10.9.0.0/28')); tx.create('nodes', node('w1')); tx.create('nodes', node('w2')); });
  const s = service('s1', 'web', { networks: ['n1'] });
  // 16 addresses − network, broadcast, gateway = 13 tasks (the VIP comes from the VIP range).
  await store.update((tx) => { tx.create('services', s); for (let i = 1; i <= 14; i++) tx.create('tasks', task(`t${i}`, s, i)); });
  await settled(alloc, '13 pending + 1 stuck', () => get(store, 'tasks', 't14')?.status.err);
  t.is(get(store, 'tasks', 't14')!.status.err, 'network tiny: no free address left in 10.9.0.0/28');
  t.is(store.view((tx) => tx.list('tasks')).filter((x) => x.status.state === 'pending').length, 13);
  // Scaled away before scheduling, t14 stops waiting and t13 plays the last task below.
  await store.update((tx) => { const x = tx.get('tasks', 't14')!; x.desiredState = 'shutdown'; tx.update('tasks', x); });
  await store.update((tx) => { const x = tx.get('tasks', 't13')!; x.desiredState = 'shutdown'; tx.update('tasks', x); });
  t.is(alloc.freeAddresses('n1'), 1);

  // Place tasks on nodes as the scheduler and agents would: t1..t6 on w1 running, t7..t12 on w2.
  await store.update((tx) => {
    for (let i = 1; i <= 12; i++) {
      const x = tx.get('tasks', `t${i}`)!;
      x.nodeId = i <= 6 ? 'w1' : 'w2';
      x.status.state = 'running';
      tx.update('tasks', x);
    }
  });
  // A replacement takes the last address; the next waits until a task that fails gives its address back.
  await store.update((tx) => tx.create('tasks', task('t13b', s, 13)));
  await settled(alloc, 't13b pending', () => get(store, 'tasks', 't13b')?.status.state === 'pending');
  t.is(alloc.freeAddresses('n1'), 0);
  await store.update((tx) => tx.create('tasks', task('t13c', s, 13)));
  await settled(alloc, 't13c stuck', () => get(store, 'tasks', 't13c')?.status.err);
  await store.update((tx) => { const x = tx.get('tasks', 't1')!; x.status.state = 'failed'; tx.update('tasks', x); });
  await settled(alloc, 't13c pending', () => get(store, 'tasks', 't13c')?.status.state === 'pending');
  t.is(alloc.freeAddresses('n1'), 0);
  // Deleting a running task frees its address.
  await store.update((tx) => tx.delete('tasks', 't2'));
  t.is(alloc.freeAddresses('n1'), 1);
  // w2 crashes: its tasks are being shut down but never report back; their addresses come back once w2 is Down.
  await store.update((tx) => {
    for (let i = 7; i <= 12; i++) { const x = tx.get('tasks', `t${i}`)!; x.desiredState = 'shutdown'; tx.update('tasks', x); }
  });
  t.is(alloc.freeAddresses('n1'), 1, 'still held while the node may be running them');
  await store.update((tx) => { const n = tx.get('nodes', 'w2')!; n.status.state = 'down'; tx.update('nodes', n); });
  t.is(alloc.freeAddresses('n1'), 7);
  // Tasks never scheduled and then scaled away release too.
  await store.update((tx) => { const x = tx.get('tasks', 't13b')!; x.desiredState = 'shutdown'; tx.update('tasks', x); });
  t.is(alloc.freeAddresses('n1'), 8);

  // A new leader's allocator rebuilds the same picture.
  await alloc.stop();
  alloc = newAllocator(store);
  alloc.start();
  await alloc.tick();
  t.is(alloc.freeAddresses('n1'), 8);
  await store.update((tx) => { for (let i = 20; i < 28; i++) tx.create('tasks', task(`t${i}`, s, i)); });
  await settled(alloc, 'all pending', () => store.view((tx) => tx.list('tasks')).filter((x) => x.id >= 't20' && x.status.state === 'pending').length === 8);
  t.is(alloc.freeAddresses('n1'), 0);
  // Addresses recorded on live tasks and VIPs are all distinct.
  const live = heldAddresses(store).filter((a) => a.startsWith('10.9.'));
  t.is(new Set(live).size, live.length);
  await alloc.stop();
});

test('dynamic published port survives a leader change and a service update', async (t) => {
  const store = newTestStore();
  let alloc = newAllocator(store);
  alloc.start();
  const s = service('s1', 'web', { ports: [port(80, 0)] });
  await store.update((tx) => tx.create('services', s));
  await settled(alloc, 'endpoint', () => get(store, 'services', 's1')?.endpoint);
  await alloc.stop();
  alloc = newAllocator(store);
  alloc.start();
  await store.update((tx) => { const x = tx.get('services', 's1')!; x.spec.labels.v = '2'; x.specVersion++; tx.update('services', x); });
  await alloc.tick();
  t.deepEqual(get(store, 'services', 's1')!.endpoint?.ports.map((p) => p.publishedPort), [30000]);
  const other = service('s2', 'api', { ports: [port(80, 0)] });
  await store.update((tx) => tx.create('services', other));
  const ep = await settled(alloc, 'endpoint', () => get(store, 'services', 's2')?.endpoint);
  t.deepEqual(ep.ports.map((p) => p.publishedPort), [30001]);
  await alloc.stop();
});

test('switching a service to dnsrr or dropping its ports releases VIPs and ports', async (t) => {
  const store = newTestStore();
  const alloc = newAllocator(store);
  alloc.start();
  await store.update((tx) => tx.create('networks', network('n1', 'backend', '10.7.0.0/24')));
  await store.update((tx) => tx.create('services', service('s1', 'web', { ports: [port(80, 8080)], networks: ['n1'] })));
  const ep = await settled(alloc, 'endpoint', () => get(store, 'services', 's1')?.endpoint);
  t.is(ep.virtualIps.length, 2);
  const free = alloc.freeVips();
  await store.update((tx) => {
    const s = tx.get('services', 's1')!;
    s.spec.endpoint = { mode: 'dnsrr', ports: [] };
    tx.update('services', s);
  });
  await settled(alloc, 'released', () => get(store, 'services', 's1')?.endpoint?.virtualIps.length === 0);
  t.deepEqual(get(store, 'services', 's1')!.endpoint, { ports: [], virtualIps: [] });
  t.is(alloc.freeVips(), free + 2);
  // Port 8080 is free for another service now.
  await store.update((tx) => tx.create('services', service('s2', 'api', { ports: [port(80, 8080)] })));
  const ep2 = await settled(alloc, 'endpoint', () => get(store, 'services', 's2')?.endpoint);
  t.deepEqual(ep2.ports.map((p) => p.publishedPort), [8080]);
  await alloc.stop();
});

test('a deleted node releases the addresses of its tasks that are being shut down', async (t) => {
  const store = newTestStore();
  const alloc = newAllocator(store);
  alloc.start();
  await store.update((tx) => { tx.create('networks', network('n1', 'backend', '10.8.0.0/24')); tx.create('nodes', node('w1')); });
  const s = service('s1', 'web', { mode: 'dnsrr', networks: ['n1'] });
  await store.update((tx) => { tx.create('services', s); tx.create('tasks', task('t1', s)); tx.create('tasks', task('t2', s, 2)); });
  await settled(alloc, 'pending', () => store.view((tx) => tx.list('tasks')).every((x) => x.status.state === 'pending'));
  await store.update((tx) => {
    for (const id of ['t1', 't2']) { const x = tx.get('tasks', id)!; x.nodeId = 'w1'; x.status.state = 'running'; tx.update('tasks', x); }
  });
  const free = alloc.freeAddresses('n1')!;
  await store.update((tx) => { const x = tx.get('tasks', 't1')!; x.desiredState = 'shutdown'; tx.update('tasks', x); });
  t.is(alloc.freeAddresses('n1'), free);
  await store.update((tx) => tx.delete('nodes', 'w1'));
  t.is(alloc.freeAddresses('n1'), free + 1, 't1 released; t2 (still desired running) waits for the orchestrator');
  await store.update((tx) => { const x = tx.get('tasks', 't2')!; x.desiredState = 'shutdown'; tx.update('tasks', x); });
  t.is(alloc.freeAddresses('n1'), free + 2);
  await alloc.stop();
});

test('nodes get overlay /24s from 10.97.0.0/16 (from .1 on), kept across leaders, freed on delete; networks may not overlap the overlay or VIP ranges', async (t) => {
  const store = newTestStore();
  let alloc = newAllocator(store);
  alloc.start();
  await store.update((tx) => { tx.create('nodes', node('w1')); tx.create('nodes', node('w2')); });
  const ov = (id: string) => store.view((tx) => tx.get('nodes', id))?.overlay;
  await settled(alloc, 'subnets', () => ov('w1') && ov('w2'));
  t.deepEqual([ov('w1'), ov('w2')].map((o) => o!.subnet).sort(), ['10.97.1.0/24', '10.97.2.0/24']);
  t.is(ov('w1')!.vtepMac, `02:00:0a:61:0${ov('w1')!.subnet.split('.')[2]}:00`);
  await alloc.stop();
  alloc = newAllocator(store);
  alloc.start();
  await store.update((tx) => { tx.delete('nodes', 'w1'); tx.create('nodes', node('w3')); });
  await settled(alloc, 'w3 subnet', () => ov('w3'));
  t.not(ov('w3')!.subnet, ov('w2')!.subnet);
  await store.update((tx) => {
    tx.create('networks', network('n1', 'clash97', '10.97.200.0/24'));
    tx.create('networks', network('n2', 'clash96', '10.96.0.0/24'));
  });
  await alloc.tick();
  const nets = store.view((tx) => tx.list('networks'));
  t.is(nets.find((n) => n.id === 'n1')!.ipam, undefined);
  t.is(nets.find((n) => n.id === 'n2')!.ipam, undefined);
  await alloc.stop();
});

test('UndoJournal: rollback runs the inverses newest first, once; commit forgets them', (t) => {
  const j = new UndoJournal();
  const seen: number[] = [];
  j.record(() => seen.push(1));
  j.record(() => seen.push(2));
  j.rollback();
  j.rollback();
  t.deepEqual(seen, [2, 1]);
  j.record(() => seen.push(3));
  j.commit();
  j.rollback();
  t.deepEqual(seen, [2, 1]);
  t.is(j.size, 0);
});

test('a failed write is rolled back in memory and retried after retryMs on the clock', async (t) => {
  const store = newTestStore();
  const web = service('s1', 'web', { networks: ['backend'] });
  await store.update((tx) => { tx.create('networks', network('n1', 'backend')); tx.create('services', web); tx.create('tasks', task('t1', web)); });
  const alloc = newAllocator(store, { retryMs: 1000 });
  const clock = clocks.get(alloc)!;
  alloc.start();
  await settled(alloc, 'allocated', () => get(store, 'tasks', 't1')?.status.state === 'pending');
  const free = alloc.freeAddresses('n1')!;
  const real = (store as unknown as { proposer: Proposer }).proposer;
  let refuse = 0;
  store.setProposer({ propose: (data) => (refuse-- > 0 ? Promise.reject(new Error('not leader')) : real.propose(data)) });
  await store.update((tx) => tx.create('tasks', task('t2', web, 2)));
  refuse = 1; // the allocator's next entry is refused (as when leadership is lost for a moment)
  clock.advance(5); // the debounce: this pass's write is refused
  await alloc.idle();
  t.is(get(store, 'tasks', 't2')?.status.state, 'new');
  t.is(alloc.freeAddresses('n1'), free, 'the address taken for the refused write was given back');
  clock.advance(999);
  await alloc.idle();
  t.is(get(store, 'tasks', 't2')?.status.state, 'new', 'not retried before retryMs');
  clock.advance(1);
  await alloc.idle();
  t.is(get(store, 'tasks', 't2')?.status.state, 'pending', 'retried after retryMs');
  t.is(alloc.freeAddresses('n1'), free - 1);
  await alloc.stop();
});
