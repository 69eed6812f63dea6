import test from 'ava';
import { expandTemplate } from '../src/template.js';

const ctx = {
  task: { id: 'tsk1', serviceId: 'svc1', serviceName: 'web', slot: 3, nodeId: 'node1' },
  node: { hostname: 'host-a', os: 'linux', architecture: 'x86_64' },
};

test('expands Docker service template fields', (t) => {
  t.is(expandTemplate('{{.Node.Hostname}}-{{.Task.Slot}}', ctx), 'host-a-3');
  t.is(expandTemplate('{{ .Service.Name }}/{{.Service.ID}}/{{.Task.ID}}/{{.Node.ID}}', ctx), 'web/svc1/tsk1/node1');
  t.is(expandTemplate('{{.Task.Name}}', ctx), 'web.3.tsk1');
  t.is(expandTemplate('{{.Node.Platform.OS}}/{{.Node.Platform.Architecture}}', ctx), 'linux/x86_64');
});

test('global tasks (slot 0) use the node ID as the slot', (t) => {
  const g = { ...ctx, task: { ...ctx.task, slot: 0 } };
  t.is(expandTemplate('{{.Task.Slot}} {{.Task.Name}}', g), 'node1 web.node1.tsk1');
});

test('strings without placeholders are untouched; unknown fields are named in the error', (t) => {
  t.is(expandTemplate('A=1', ctx), 'A=1');
  t.throws(() => expandTemplate('X={{.Task.Nope}}', ctx), { message: /template "X=\{\{\.Task\.Nope\}\}": unknown field \.Task\.Nope; use one of \.Service\.ID/ });
});
