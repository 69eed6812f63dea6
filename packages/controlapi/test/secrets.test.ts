import test from 'ava';
import { ShoalError } from '@shoal/api';
import { newTestStore } from '@shoal/testkit';
import { ControlApi } from '../src/index.js';

// Secrets and configs in the control API: Docker's rules and messages, one line each, nothing
// written on a refusal.

const img = 'shoal/busybox:latest';
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

async function rejects(t: import('ava').ExecutionContext, p: Promise<unknown>, code: ShoalError['code'], message: string | RegExp): Promise<void> {
  const e = await t.throwsAsync(p, { instanceOf: ShoalError });
  t.is((e as ShoalError | undefined)?.code, code);
  if (typeof message === 'string') t.is(e?.message, message);
  else t.regex(e?.message ?? '', message);
  t.false((e?.message ?? '').includes('\n'));
}

test('secrets: created, listed and inspected without their data; names unique in any case; labels only change', async (t) => {
  const c = new ControlApi(newTestStore());
  const { id } = await c.createSecretLike('secrets', { name: 'db_pass', data: b64('hunter2'), labels: { env: 'prod' } });
  await rejects(t, c.createSecretLike('secrets', { name: 'DB_PASS', data: b64('x') }), 'AlreadyExists', 'secret DB_PASS already exists as db_pass (names are case-insensitive)');
  const ls = c.listSecretLike('secrets');
  t.deepEqual(ls.map((s) => s.spec), [{ name: 'db_pass', labels: { env: 'prod' } }]);
  t.false(JSON.stringify(c.getSecret('db_pass')).includes(b64('hunter2')), 'inspect never shows the data');
  t.is(c.getSecret(id.slice(0, 5)).id, id, 'by unique ID prefix');
  await c.updateSecretLike('secrets', 'db_pass', { labels: { env: 'dev' } });
  t.deepEqual(c.getSecret(id).spec.labels, { env: 'dev' });
  await rejects(t, c.updateSecretLike('secrets', 'db_pass', { labels: {}, version: 1 }), 'FailedPrecondition', /^update out of sequence: secret db_pass is at version \d+, not 1/);
  // Filters (Docker's): name prefix, id prefix, label.
  await c.createSecretLike('secrets', { name: 'db_user', data: b64('u') });
  t.deepEqual(c.listSecretLike('secrets', { name: ['db_'] }).map((s) => s.spec.name), ['db_pass', 'db_user']);
  t.deepEqual(c.listSecretLike('secrets', { label: ['env=dev'] }).map((s) => s.spec.name), ['db_pass']);
  t.deepEqual(c.listSecretLike('secrets', { label: ['env'], name: ['db_u'] }).map((s) => s.spec.name), []);
  // Configs show their data.
  await c.createSecretLike('configs', { name: 'app.conf', data: b64('port=80'), templateDriver: 'golang' });
  t.is(Buffer.from(c.getConfig('app.conf').spec.data, 'base64').toString(), 'port=80');
  t.deepEqual(c.getConfig('app.conf').spec.templating, { name: 'golang' });
});

test('bad secret input: one line naming the value, nothing created', async (t) => {
  const c = new ControlApi(newTestStore());
  const nameRule = 'only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]';
  await rejects(t, c.createSecretLike('secrets', { name: '-bad', data: b64('x') }), 'InvalidArgument', `invalid secret name "-bad": ${nameRule}`);
  await rejects(t, c.createSecretLike('secrets', { name: 'a'.repeat(65), data: b64('x') }), 'InvalidArgument', /^invalid secret name "a{65}"/);
  await rejects(t, c.createSecretLike('secrets', { name: 's', data: '' }), 'InvalidArgument', 'secret data must be larger than 0 and less than 512000 bytes; s has 0 bytes');
  await rejects(t, c.createSecretLike('secrets', { name: 's', data: b64(Buffer.alloc(512000)) }), 'InvalidArgument', 'secret data must be larger than 0 and less than 512000 bytes; s has 512000 bytes');
  await t.notThrowsAsync(c.createSecretLike('configs', { name: 'big', data: b64(Buffer.alloc(512000)) }), 'configs may be up to 1000 KiB (Docker)');
  await rejects(t, c.createSecretLike('secrets', { name: 's', data: 'not base64!' }), 'InvalidArgument', 'invalid secret data for s: it must be base64-encoded');
  await rejects(t, c.createSecretLike('secrets', { name: 's', data: b64('x'), templateDriver: 'jinja' }), 'InvalidArgument', 'invalid template driver "jinja": only golang is supported');
  await rejects(t, c.createSecretLike('secrets', { name: 's', data: b64('x'), labels: { '': 'v' } }), 'InvalidArgument', 'invalid secret label "=v": the key is empty; use KEY=VALUE');
  t.deepEqual(c.listSecretLike('secrets'), []);
});

test('services use secrets and configs by name: defaults filled in, unknown names and conflicting targets refused, nothing written', async (t) => {
  const c = new ControlApi(newTestStore());
  const s1 = await c.createSecretLike('secrets', { name: 'db_pass', data: b64('x') });
  await c.createSecretLike('secrets', { name: 'api_key', data: b64('y') });
  const c1 = await c.createSecretLike('configs', { name: 'app.conf', data: b64('z') });
  const { id } = await c.createService({
    name: 'web', image: img,
    secrets: [{ source: 'db_pass' }, { source: 'api_key', target: 'key', uid: '1000', gid: '1000', mode: 0o400 }],
    configs: [{ source: c1.id }],
  });
  const spec = c.getService(id).spec.task.container;
  t.deepEqual(spec.secrets, [
    { secretId: s1.id, secretName: 'db_pass', file: { name: 'db_pass', uid: '0', gid: '0', mode: 0o444 } },
    { secretId: spec.secrets![1]!.secretId, secretName: 'api_key', file: { name: 'key', uid: '1000', gid: '1000', mode: 0o400 } },
  ]);
  t.deepEqual(spec.configs, [{ configId: c1.id, configName: 'app.conf', file: { name: 'app.conf', uid: '0', gid: '0', mode: 0o444 } }]);
  await rejects(t, c.createService({ name: 'x', image: img, secrets: [{ source: 'nope' }, { source: 'gone' }] }), 'InvalidArgument',
    'secrets not found: nope, gone; create them first with `shoal secret create`');
  await rejects(t, c.createService({ name: 'x', image: img, configs: [{ source: 'nope' }] }), 'InvalidArgument', 'config not found: nope; create it first with `shoal config create`');
  await rejects(t, c.createService({ name: 'x', image: img, secrets: [{ source: 'db_pass', target: 't' }, { source: 'api_key', target: 't' }] }), 'InvalidArgument',
    'secret references \'db_pass\' and \'api_key\' have a conflicting target: \'t\'');
  await rejects(t, c.createService({ name: 'x', image: img, secrets: [{ source: 'db_pass', target: '/etc/x' }], configs: [{ source: 'app.conf', target: '/etc/x' }] }), 'InvalidArgument',
    'secret \'db_pass\' and config \'app.conf\' have a conflicting target: \'/etc/x\'');
  await rejects(t, c.createService({ name: 'x', image: img, secrets: [{ source: 'db_pass', mode: 0o1777 }] }), 'InvalidArgument',
    'invalid secret mode 1023 for db_pass: must be permission bits from 0 to 0777 (e.g. 0400)');
  await rejects(t, c.createService({ name: 'x', image: img, secrets: [{ source: 'db_pass', uid: 'root' }] }), 'InvalidArgument',
    'invalid secret uid "root" for db_pass: must be a numeric ID such as 0 or 1000');
  await rejects(t, c.createService({ name: 'x', image: img, secrets: [{ source: 'db_pass', target: '../../etc/shadow' }] }), 'InvalidArgument',
    'invalid secret target "../../etc/shadow" for db_pass: it must not contain ".." or NUL');
  t.deepEqual(c.listServices().map((s) => s.service.spec.name), ['web']);
});

test('secret rm is refused while a service uses it (Docker\'s words); rotation: add the new one, remove the old, tasks are replaced', async (t) => {
  const c = new ControlApi(newTestStore());
  await c.createSecretLike('secrets', { name: 's_v1', data: b64('one') });
  const { id } = await c.createService({ name: 'web', image: img, secrets: [{ source: 's_v1', target: 'db' }] });
  await c.createService({ name: 'api', image: img, secrets: [{ source: 's_v1' }] });
  await rejects(t, c.removeSecretLike('secrets', 's_v1'), 'InvalidArgument', 'secret \'s_v1\' is in use by the following services: api, web');
  await c.removeService('api');
  await rejects(t, c.removeSecretLike('secrets', 's_v1'), 'InvalidArgument', 'secret \'s_v1\' is in use by the following service: web');
  await rejects(t, c.removeSecretLike('secrets', 'nope'), 'NotFound', 'secret nope not found');
  await c.createSecretLike('secrets', { name: 's_v2', data: b64('two') });
  const before = c.getService(id);
  // What `service update --secret-rm s_v1 --secret-add source=s_v2,target=db` sends: the new list.
  await c.updateService('web', { spec: { secrets: [{ source: 's_v2', target: 'db' }] } });
  const after = c.getService(id);
  t.is(after.specVersion, before.specVersion + 1, 'the task spec changed: tasks are replaced');
  t.deepEqual(after.spec.task.container.secrets!.map((r) => [r.secretName, r.file.name]), [['s_v2', 'db']]);
  await c.removeSecretLike('secrets', 's_v1');
  t.deepEqual(c.listSecretLike('secrets').map((s) => s.spec.name), ['s_v2']);
  await rejects(t, c.updateService('web', { rollback: true }), 'InvalidArgument', 'secret not found: s_v1; create it first with `shoal secret create`');
  // An update that does not touch the secrets keeps them.
  await c.updateService('web', { spec: { env: ['A=1'] } });
  t.deepEqual(c.getService(id).spec.task.container.secrets!.map((r) => r.secretName), ['s_v2']);
  // Configs follow the same rule.
  await c.createSecretLike('configs', { name: 'conf', data: b64('x') });
  await c.updateService('web', { spec: { configs: [{ source: 'conf' }] } });
  await rejects(t, c.removeSecretLike('configs', 'conf'), 'InvalidArgument', 'config \'conf\' is in use by the following service: web');
});

test('autolock in the cluster object: on with a key, rotation only while on, off drops the key', async (t) => {
  const c = new ControlApi(newTestStore());
  await c.bootstrapCluster({ nodeId: 'n1', raftId: 'r1', addr: '127.0.0.1:2377', description: { hostname: 'h', platform: { os: 'linux', architecture: '' }, resources: { nanoCpus: 0, memoryBytes: 0 }, engine: { engineVersion: '', labels: {} } }, cluster: {} });
  await rejects(t, c.setUnlockKey('SWMKEY-1-x'), 'FailedPrecondition', 'cannot rotate because autolock is not turned on');
  await c.updateCluster({ autolock: true, unlockKey: 'SWMKEY-1-a' });
  t.is(c.getCluster().unlockKey, 'SWMKEY-1-a');
  t.true(c.getCluster().spec.encryption?.autoLockManagers);
  await c.updateCluster({ autolock: true, unlockKey: 'SWMKEY-1-b' });
  t.is(c.getCluster().unlockKey, 'SWMKEY-1-a', 'on again keeps the key');
  await c.setUnlockKey('SWMKEY-1-c');
  t.is(c.getCluster().unlockKey, 'SWMKEY-1-c');
  await c.updateCluster({ autolock: false });
  t.is(c.getCluster().unlockKey, undefined);
  t.false(c.getCluster().spec.encryption?.autoLockManagers);
});
