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

test('secrets and configs: created with the stack; a changed file takes the name, the old one is renamed and marked; rm and prune remove them', async (t) => {
  const c = new ControlApi(newTestStore());
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const withObjects = (conf: string) => input({
    secrets: [{ name: 's_pw', external: false, data: b64('hunter2') }],
    configs: [{ name: 's_conf', external: false, data: b64(conf) }, { name: 's_tpl', external: false, data: b64('{{.Task.Slot}}'), templateDriver: 'golang' }],
    services: [{ name: 's_web', image: img, secrets: [{ source: 's_pw' }], configs: [{ source: 's_conf', target: '/etc/app.conf' }, { source: 's_tpl', target: '/etc/tpl' }] }],
    networks: [],
  });
  const r1 = await c.deployStack(withObjects('v1'));
  t.deepEqual([r1.secrets, r1.configs], [['s_pw'], ['s_conf', 's_tpl']]);
  const conf1 = c.getConfig('s_conf');
  t.is(conf1.spec.labels['com.docker.stack.namespace'], 's');
  t.is(c.getConfig('s_tpl').spec.templating?.name, 'golang');
  const web1 = c.getService('s_web');
  t.deepEqual(web1.spec.task.container.configs?.map((r) => r.configId), [conf1.id, c.getConfig('s_tpl').id]);

  // The same file again: nothing written.
  const r2 = await c.deployStack(withObjects('v1'));
  t.deepEqual([r2.secrets, r2.configs, r2.unchanged], [[], [], ['s_web']]);

  // The file changed: a new object takes the name, the service rolls onto it.
  const r3 = await c.deployStack(withObjects('v2'));
  t.deepEqual([r3.configs, r3.updated], [['s_conf'], ['s_web']]);
  const conf2 = c.getConfig('s_conf');
  t.not(conf2.id, conf1.id);
  t.is(Buffer.from(conf2.spec.data, 'base64').toString(), 'v2');
  const old = c.getConfig(conf1.id);
  t.is(old.spec.name, `s_conf.${conf1.id.slice(0, 12)}`);
  t.is(old.spec.labels['com.shoal.stack.superseded-by'], conf2.id);
  const web3 = c.getService('s_web');
  t.is(web3.spec.task.container.configs?.[0]?.configId, conf2.id);
  t.is(web3.specVersion, web1.specVersion + 1, 'its tasks roll');

  // A name taken by an object outside the stack is refused, nothing written.
  await c.createSecretLike('secrets', { name: 's_other', data: b64('x') });
  const clash = withObjects('v2');
  clash.secrets!.push({ name: 's_other', external: false, data: b64('y') });
  await t.throwsAsync(c.deployStack(clash), { message: 'secret s_other exists and is not part of stack s; remove it, or declare it `external: true` in the compose file' });
  // An external one must exist.
  const ext = withObjects('v2');
  ext.secrets!.push({ name: 'nope', external: true });
  await t.throwsAsync(c.deployStack(ext), { message: /secret "nope" is declared as external, but could not be found/ });
  // Bad data names the stack and the object; nothing written.
  const bad = withObjects('v3');
  bad.configs![0]!.data = '';
  await t.throwsAsync(c.deployStack(bad), { message: /^stack s: config data must be larger than 0/ });
  t.is(c.getConfig('s_conf').id, conf2.id);

  // --prune drops the stack's objects the file no longer declares (and nothing uses).
  const fewer = withObjects('v2');
  fewer.configs = [fewer.configs![0]!];
  fewer.services[0]!.configs = [{ source: 's_conf', target: '/etc/app.conf' }];
  const r4 = await c.deployStack({ ...fewer, prune: true });
  t.deepEqual(r4.removed, ['s_tpl']);

  const rm = await c.removeStack('s');
  t.deepEqual(rm, { services: ['s_web'], networks: [], secrets: ['s_pw'], configs: ['s_conf'] });
  t.deepEqual(c.listSecretLike('configs').map((x) => x.spec.name), [], 'the superseded version went too');
  t.deepEqual(c.listSecretLike('secrets').map((x) => x.spec.name), ['s_other'], 'not the stack\'s: kept');
});
