import test from 'ava';
import { ShoalError, type StackDeployInput } from '@shoal/api';
import { newTestStore } from '@shoal/testkit';
import { ControlApi } from '../src/index.js';

const img = 'shoal/busybox:latest';
const input = (over: Partial<StackDeployInput> = {}): StackDeployInput => ({
  stack: 's',
  networks: [{ name: 's_default', external: false, labels: {} }],
  services: [
    { name: 's_db', image: img, networks: [{ target: 's_default', aliases: ['db'] }] },
    { name: 's_web', image: img, replicas: 2, networks: [{ target: 's_default', aliases: ['web'] }], ports: [{ targetPort: 80, publishedPort: 8080 }] },
  ],
  ...over,
});

test('deploy: networks and services in one go; the same file again changes nothing; one changed service is updated alone', async (t) => {
  const c = new ControlApi(newTestStore());
  const r1 = await c.deployStack(input());
  t.deepEqual(r1, { created: ['s_db', 's_web'], updated: [], unchanged: [], removed: [], networks: ['s_default'], secrets: [], configs: [] });
  const web = c.getService('s_web');
  t.is(web.spec.labels['com.docker.stack.namespace'], 's');
  t.deepEqual(web.spec.task.networks, [{ target: c.getNetwork('s_default').id, aliases: ['web'] }]);
  const r2 = await c.deployStack(input());
  t.deepEqual([r2.created, r2.updated, r2.unchanged, r2.networks], [[], [], ['s_db', 's_web'], []]);
  t.is(c.getService('s_web').meta.version, web.meta.version, 'not written again');
  const changed = input();
  changed.services[1]!.env = ['A=1'];
  const r3 = await c.deployStack(changed);
  t.deepEqual([r3.updated, r3.unchanged], [['s_web'], ['s_db']]);
  t.is(c.getService('s_web').specVersion, web.specVersion + 1, 'its tasks roll');
  t.deepEqual(c.listStacks(), [{ name: 's', services: 2 }]);
  t.deepEqual(c.stackServices('s').map((x) => x.service.spec.name), ['s_db', 's_web']);
});

test('nothing is half-applied: a bad service, a missing external network or a port conflict deploys nothing', async (t) => {
  const c = new ControlApi(newTestStore());
  const bad = input();
  bad.services[1]!.replicas = -1;
  const e1 = await t.throwsAsync(c.deployStack(bad), { instanceOf: ShoalError });
  t.regex(e1!.message, /^service s_web: invalid replicas value -1/);
  const ext = input({ networks: [{ name: 's_default', external: false, labels: {} }, { name: 'shared-net', external: true, labels: {} }] });
  const e2 = await t.throwsAsync(c.deployStack(ext), { instanceOf: ShoalError });
  t.is(e2!.message, 'network "shared-net" is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed');
  await c.createService({ name: 'other', image: img, ports: [{ targetPort: 80, publishedPort: 8080 }] });
  const e3 = await t.throwsAsync(c.deployStack(input()), { instanceOf: ShoalError });
  t.regex(e3!.message, /port 8080\/tcp is already in use by service other/);
  t.deepEqual(c.listServices().map((s) => s.service.spec.name), ['other']);
  t.deepEqual(c.listNetworks().map((n) => n.spec.name), []);
});

test('waves (only), dry run, prune and rm', async (t) => {
  const c = new ControlApi(newTestStore());
  const dry = await c.deployStack(input({ dryRun: true }));
  t.deepEqual(dry.created, ['s_db', 's_web']);
  t.deepEqual(c.listServices(), [], 'a dry run writes nothing');
  await c.deployStack(input({ only: ['s_db'] }));
  t.deepEqual(c.listServices().map((s) => s.service.spec.name), ['s_db']);
  await c.deployStack(input({ only: ['s_web'] }));
  t.deepEqual(c.listServices().map((s) => s.service.spec.name), ['s_db', 's_web']);
  await t.throwsAsync(c.deployStack(input({ only: ['s_nope'] })), { message: /"only" names "s_nope"/ });
  const pruned = await c.deployStack(input({ services: [input().services[1]!], prune: true }));
  t.deepEqual(pruned.removed, ['s_db']);
  const r = await c.removeStack('s');
  t.deepEqual(r, { services: ['s_web'], networks: ['s_default'], secrets: [], configs: [] });
  await t.throwsAsync(c.removeStack('s'), { message: 'Nothing found in stack: s' });
  t.throws(() => c.stackServices('s'), { message: 'Nothing found in stack: s' });
});
