import test from 'ava';
import type { Config, Secret, Task } from '@shoal/api';
import { FakeDispatcher, FakeExecutor, fakeTask, until } from '@shoal/testkit';
import { Agent } from '../src/agent.js';
import { taskFiles } from '../src/files.js';
import { renderGoTemplate } from '../src/gotemplate.js';

// Secrets and configs on the agent: Go templates, the files of a task, delivery through the executor.

const meta = { version: 1, createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z' };
const b64 = (s: string) => Buffer.from(s).toString('base64');
const secret = (id: string, name: string, data: string, templated = false): Secret => ({
  id, meta, spec: { name, labels: {}, data: b64(data), ...(templated ? { templating: { name: 'golang' } } : {}) },
});

test('Go templates: fields, functions, pipelines, if/else, trimming, comments; errors are one line', (t) => {
  const data = { Service: { Name: 'web' }, Task: { Slot: '2' }, Node: { Hostname: 'n1' }, Empty: '' };
  const f = { env: (k: unknown) => (k === 'DB' ? 'pg' : '') };
  t.is(renderGoTemplate('{{ .Service.Name }}.{{.Task.Slot}}@{{ .Node.Hostname }}', data), 'web.2@n1');
  t.is(renderGoTemplate('db={{ env "DB" }} x={{ env "NOPE" }}', data, f), 'db=pg x=');
  t.is(renderGoTemplate('{{ printf "%s-%d%%" .Service.Name 7 }}|{{ .Service.Name | printf "<%s>" }}|{{ index .Service "Name" }}', data), 'web-7%|<web>|web');
  t.is(renderGoTemplate('a\n  {{- /* gone */ -}}\n  b{{ if eq .Task.Slot "1" }}one{{ else if .Empty }}e{{ else }}other{{ end }}', data), 'ab' + 'other');
  t.is(renderGoTemplate('{{if .Node.Hostname}}yes{{end}} {{ len "abc" }} {{ "q\\n" }}', data), 'yes 3 q\n');
  t.throws(() => renderGoTemplate('{{ .Service.Nme }}', data), { message: 'template: no field .Service.Nme; use one of .Service.Name' });
  t.throws(() => renderGoTemplate('{{ nosuch 1 }}', data), { message: /^template: function "nosuch" not defined; use one of / });
  t.throws(() => renderGoTemplate('{{ range .X }}{{ end }}', data), { message: /^template: \{\{range \.X\}\} is not supported/ });
  t.throws(() => renderGoTemplate('{{ if .Task.Slot }}x', data), { message: 'template: missing {{end}}' });
  t.throws(() => renderGoTemplate('{{ .Task.Slot', data), { message: /^template: unclosed action/ });
});

function taskWith(refs: Pick<Task['spec']['container'], 'secrets' | 'configs'>, slot = 3, env: string[] = []): Task {
  const t = fakeTask({ nodeId: 'node1', slot, serviceName: 'api', env });
  t.spec.container = { ...t.spec.container, ...refs };
  return t;
}

test('a task\'s files: targets, owners, modes; templates rendered per task and node, with env and the task\'s secrets', (t) => {
  const s1 = secret('s1', 'db_pass', 'hunter2');
  const c1: Config = secret('c1', 'app.conf', 'host={{ .Node.Hostname }} slot={{ .Task.Slot }} svc={{ .Service.Name }} db={{ env "DB" }} pw={{ secret "pw" }}', true);
  const task = taskWith({
    secrets: [{ secretId: 's1', secretName: 'db_pass', file: { name: 'pw', uid: '1000', gid: '2000', mode: 0o400 } }],
    configs: [{ configId: 'c1', configName: 'app.conf', file: { name: '/etc/app.conf', uid: '0', gid: '0', mode: 0o444 } }],
  }, 3, ['DB=pg']);
  const files = taskFiles(task, { secrets: new Map([['s1', s1]]), configs: new Map([['c1', c1]]) }, { task, node: { hostname: 'host-a' } });
  t.deepEqual(files.map((f) => [f.kind, f.target, f.uid, f.gid, f.mode.toString(8), f.data.toString()]), [
    ['secret', '/run/secrets/pw', 1000, 2000, '400', 'hunter2'],
    ['config', '/etc/app.conf', 0, 0, '444', 'host=host-a slot=3 svc=api db=pg pw=hunter2'],
  ]);
  // A relative config target lands under /.
  const t2 = taskWith({ configs: [{ configId: 'c2', configName: 'plain', file: { name: 'plain', uid: '0', gid: '0', mode: 0o444 } }] });
  const f2 = taskFiles(t2, { secrets: new Map(), configs: new Map([['c2', secret('c2', 'plain', '{{ not a template }}')]]) }, { task: t2, node: { hostname: 'h' } });
  t.is(f2[0]!.target, '/plain');
  t.is(f2[0]!.data.toString(), '{{ not a template }}', 'not templated unless created with the golang driver');
  // Missing data and bad templates: one line each (the task is rejected).
  t.throws(() => taskFiles(task, { secrets: new Map(), configs: new Map([['c1', c1]]) }, { task, node: { hostname: 'h' } }), { message: /^secret db_pass \(s1\) is not available on this node/ });
  const bad = secret('c3', 'bad', '{{ secret "nope" }}', true);
  const t3 = taskWith({ configs: [{ configId: 'c3', configName: 'bad', file: { name: 'bad', uid: '0', gid: '0', mode: 0o444 } }] });
  t.throws(() => taskFiles(t3, { secrets: new Map(), configs: new Map([['c3', bad]]) }, { task: t3, node: { hostname: 'h' } }), { message: 'config bad: template: secret: secret target nope not found; the task\'s secrets have targets (none)' });
});

test('the agent holds exactly the secrets of its tasks that have not ended, and gives each task its files', async (t) => {
  const dispatcher = new FakeDispatcher(50);
  const executor = new FakeExecutor('node1');
  const agent = new Agent({ nodeId: 'node1', addr: '127.0.0.1', dispatcher, executor, statusBatchMs: 5, retryMs: 20, backoff: { initialMs: 5, maxMs: 40 } });
  dispatcher.secrets.set('s1', secret('s1', 'db_pass', 'hunter2'));
  dispatcher.secrets.set('s2', secret('s2', 'other', 'not-for-this-node'));
  const ref = { secretId: 's1', secretName: 'db_pass', file: { name: 'db_pass', uid: '0', gid: '0', mode: 0o444 } };
  const task = taskWith({ secrets: [ref] }, 1);
  dispatcher.setTask(task);
  dispatcher.setTask(fakeTask({ nodeId: 'node1', slot: 2 }));
  agent.start();
  await until(() => dispatcher.stateOf(task.id) === 'running', 'running');
  t.deepEqual(agent.state().secrets, ['s1']);
  t.deepEqual(executor.files.get(task.id)!.map((f) => [f.target, f.data.toString()]), [['/run/secrets/db_pass', 'hunter2']]);
  t.is(executor.files.size, 1, 'the task without secrets got no files');
  // The task ends: the next set no longer carries the secret, and the agent forgets it.
  executor.exit(task.id, 1);
  await until(() => dispatcher.stateOf(task.id) === 'failed', 'failed');
  dispatcher.setDesired(task.id, 'shutdown');
  await until(() => agent.state().secrets.length === 0, 'secret dropped');
  dispatcher.removeTask(task.id);
  await until(() => !executor.files.has(task.id), 'files gone with the container');
  await agent.stop();
});
