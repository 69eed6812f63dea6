import test from 'ava';
import type { Config, Service, Task } from '@shoal/api';
import { newTestStore } from '@shoal/testkit';
import { SupersededReaper } from '../src/index.js';

const meta = { version: 0, createdAt: '', updatedAt: '' };
const config = (id: string, labels: Record<string, string> = {}): Config => ({ id, meta, spec: { name: id, labels, data: 'eA==' } });
const ref = (id: string) => ({ configId: id, configName: id, file: { name: `/${id}`, uid: '0', gid: '0', mode: 0o444 } });

function service(id: string, configId: string): Service {
  return {
    id, meta, specVersion: 1,
    spec: {
      name: id, labels: {}, mode: { replicated: { replicas: 1 } },
      task: { container: { image: 'x', env: [], labels: {}, configs: [ref(configId)] }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 }, placement: { constraints: [] }, networks: [], resources: {}, forceUpdate: 0 },
      endpoint: { mode: 'vip', ports: [] },
    },
  } as unknown as Service;
}

function task(id: string, configId: string, state: Task['status']['state'], nodeId = 'n1', desiredState: Task['desiredState'] = 'running'): Task {
  return {
    id, meta, serviceId: 'svc', slot: 1, nodeId, desiredState, specVersion: 1,
    spec: { container: { image: 'x', env: [], labels: {}, configs: [ref(configId)] } },
    status: { state, timestamp: '', message: '' },
  } as unknown as Task;
}

const settle = async (r: SupersededReaper) => {
  for (let i = 0; i < 20; i++) {
    await new Promise((res) => setTimeout(res, 300));
    await r.idle();
  }
};

test('a superseded config goes once no service spec and no unfinished task uses it; others stay', async (t) => {
  const store = newTestStore();
  const SUP = 'com.shoal.stack.superseded-by';
  await store.update((tx) => {
    tx.create('configs', config('old', { [SUP]: 'new' }));
    tx.create('configs', config('new'));
    tx.create('configs', config('plain'));
    tx.create('services', service('svc', 'new'));
    tx.create('tasks', task('t-old', 'old', 'running'));
    tx.create('tasks', task('t-never', 'old', 'pending', '', 'shutdown'));
    tx.create('tasks', task('t-new', 'new', 'running'));
  });
  const r = new SupersededReaper(store);
  r.start();
  await settle(r);
  t.truthy(store.view((tx) => tx.get('configs', 'old')), 'a running task still uses it');
  // The rolling update replaced the old task: it stopped.
  await store.update((tx) => tx.update('tasks', { ...tx.get('tasks', 't-old')!, desiredState: 'shutdown', status: { state: 'shutdown', timestamp: '', message: '' } }));
  await settle(r);
  t.falsy(store.view((tx) => tx.get('configs', 'old')));
  t.truthy(store.view((tx) => tx.get('configs', 'new')));
  t.truthy(store.view((tx) => tx.get('configs', 'plain')), 'never superseded: not the reaper\'s');
  r.stop();
});

test('a superseded config a service still names (by ID) stays', async (t) => {
  const store = newTestStore();
  await store.update((tx) => {
    tx.create('configs', config('old', { 'com.shoal.stack.superseded-by': 'new' }));
    tx.create('services', service('other', 'old'));
  });
  const r = new SupersededReaper(store);
  r.start();
  await settle(r);
  t.truthy(store.view((tx) => tx.get('configs', 'old')));
  await store.update((tx) => tx.delete('services', 'other'));
  await settle(r);
  t.falsy(store.view((tx) => tx.get('configs', 'old')));
  r.stop();
});
