import test from 'ava';
import {
  ellipsis, formatTable, goDuration, humanDuration, naturalCompare, nodeTable, prettyEnum, serviceIds, servicePorts,
  serviceTable, sortTasks, taskIds, taskPorts, taskTable, networkTable, inspectJson, prettyService, prettyNode, renderTemplate, UsageError,
} from '../src/index.js';
import { swarmInfoText } from '../src/commands/info.js';
import { network, node, service, task } from './fixtures.js';

const lines = (...ls: string[]) => ls.map((l) => `${l}\n`).join('');

test('formatTable pads every column but the last to max(10, widest + 3)', (t) => {
  t.is(formatTable([['ID', 'NAME', 'X'], ['abcdefghijkl', 'n', 'last']]), lines(
    'ID             NAME      X',
    'abcdefghijkl   n         last',
  ));
  // Widths count code points (tabwriter counts runes), so "…" is one column.
  t.is(formatTable([['A…', 'B'], ['xxxxxxxxxxx', 'y']]), lines('A…            B', 'xxxxxxxxxxx   y'));
});

test('humanDuration follows go-units HumanDuration', (t) => {
  t.is(humanDuration(0), 'Less than a second');
  t.is(humanDuration(999), 'Less than a second');
  t.is(humanDuration(1000), '1 second');
  t.is(humanDuration(5_400), '5 seconds');
  t.is(humanDuration(59_999), '59 seconds');
  t.is(humanDuration(60_000), 'About a minute');
  t.is(humanDuration(119_000), 'About a minute');
  t.is(humanDuration(120_000), '2 minutes');
  t.is(humanDuration(59 * 60_000), '59 minutes');
  t.is(humanDuration(60 * 60_000), 'About an hour');
  t.is(humanDuration(89 * 60_000), 'About an hour');
  t.is(humanDuration(91 * 60_000), '2 hours');
  t.is(humanDuration(47 * 3_600_000), '47 hours');
  t.is(humanDuration(48 * 3_600_000), '2 days');
  t.is(humanDuration(14 * 24 * 3_600_000), '2 weeks');
  t.is(humanDuration(60 * 24 * 3_600_000), '2 months');
  t.is(humanDuration(3 * 365 * 24 * 3_600_000), '3 years');
  t.is(humanDuration(-5000), 'Less than a second');
});

test('goDuration prints Go time.Duration strings', (t) => {
  t.is(goDuration(0), '0s');
  t.is(goDuration(500), '500ms');
  t.is(goDuration(5000), '5s');
  t.is(goDuration(90_000), '1m30s');
  t.is(goDuration(3_600_000), '1h0m0s');
  t.is(goDuration(1500), '1.5s');
});

test('text helpers', (t) => {
  t.is(prettyEnum('running'), 'Running');
  t.is(prettyEnum(''), '');
  t.is(ellipsis('short', 30), 'short');
  t.is(ellipsis('abcdef', 4), 'abc…');
  t.true(naturalCompare('node2', 'node10') < 0);
  t.true(naturalCompare('web.10', 'web.9') > 0);
  t.true(naturalCompare('a', 'b') < 0);
  t.is(naturalCompare('x1', 'x1'), 0);
  t.deepEqual(['node-10', 'node-2', 'node-1', 'alpha'].sort(naturalCompare), ['alpha', 'node-1', 'node-2', 'node-10']);
  t.is(inspectJson([{ a: 1 }]), '[\n    {\n        "a": 1\n    }\n]\n');
});

test('servicePorts folds consecutive ingress ports into ranges, tcp before udp, host mode left out', (t) => {
  t.is(servicePorts([
    { protocol: 'udp', targetPort: 53, publishedPort: 53, publishMode: 'ingress' },
    { protocol: 'tcp', targetPort: 81, publishedPort: 8081, publishMode: 'ingress' },
    { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' },
    { protocol: 'tcp', targetPort: 90, publishedPort: 9090, publishMode: 'host' },
  ]), '*:8080-8081->80-81/tcp, *:53->53/udp');
  t.is(servicePorts([
    { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' },
    { protocol: 'tcp', targetPort: 90, publishedPort: 8081, publishMode: 'ingress' },
  ]), '*:8080->80/tcp, *:8081->90/tcp');
  t.is(servicePorts(undefined), '');
  t.is(taskPorts([{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'host' }, { protocol: 'udp', targetPort: 53, publishedPort: 5353, publishMode: 'host' }]),
    '*:8080->80/tcp,*:5353->53/udp');
});

test('serviceTable: Docker columns, natural name order, max per node, digest stripped', (t) => {
  const items = [
    { service: service({ id: 'cccccccccccc999', name: 'web10', replicas: 4, maxReplicas: 2, image: 'nginx:1.25@sha256:deadbeef' }), running: 0, desired: 4 },
    {
      service: service({
        id: 'bbbbbbbbbbbb999', name: 'web', replicas: 3,
        ports: { mode: 'vip', ports: [
          { protocol: 'udp', targetPort: 53, publishedPort: 53, publishMode: 'ingress' },
          { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' },
          { protocol: 'tcp', targetPort: 81, publishedPort: 8081, publishMode: 'ingress' },
        ] },
      }),
      running: 2, desired: 3,
    },
    { service: service({ id: 'aaaaaaaaaaaa999', name: 'api', global: true }), running: 1, desired: 1 },
  ];
  t.is(serviceTable(items), lines(
    'ID             NAME      MODE         REPLICAS               IMAGE                  PORTS',
    'aaaaaaaaaaaa   api       global       1/1                    shoal/busybox:latest   ',
    'bbbbbbbbbbbb   web       replicated   2/3                    shoal/busybox:latest   *:8080-8081->80-81/tcp, *:53->53/udp',
    'cccccccccccc   web10     replicated   0/4 (max 2 per node)   nginx:1.25             ',
  ));
  t.is(serviceIds(items), lines('aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'cccccccccccc'));
  t.is(serviceTable([]), lines('ID        NAME      MODE      REPLICAS   IMAGE     PORTS'));
});

test('taskTable: history indented under the newest task of a slot, ages, errors quoted and truncated', (t) => {
  const now = Date.parse('2026-01-01T01:00:00.000Z');
  const tasks = [
    task({ id: 'dddddddddddd4444444444444', slot: 10, nodeId: '', state: 'pending', at: '2025-12-31T01:00:00.000Z' }),
    task({ id: 'cccccccccccc3333333333333', slot: 2, nodeId: 'n2', state: 'running', at: '2026-01-01T00:00:00.000Z', ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'host' }] }),
    task({ id: 'bbbbbbbbbbbb2222222222222', slot: 1, state: 'failed', desired: 'shutdown', at: '2026-01-01T00:59:00.000Z', createdAt: '2026-01-01T00:58:00.000Z', err: 'starting container failed: No such image: nosuch:latest' }),
    task({ id: 'aaaaaaaaaaaa1111111111111', slot: 1, state: 'running', at: '2026-01-01T00:59:55.000Z', createdAt: '2026-01-01T00:59:50.000Z' }),
  ];
  const nodes = { n1: 'node-1', n2: 'node-2' };
  t.is(taskTable(tasks, nodes, { now }), lines(
    'ID             NAME        IMAGE                  NODE      DESIRED STATE   CURRENT STATE               ERROR                              PORTS',
    'aaaaaaaaaaaa   web.1       shoal/busybox:latest   node-1    Running         Running 5 seconds ago                                          ',
    'bbbbbbbbbbbb    \\_ web.1   shoal/busybox:latest   node-1    Shutdown        Failed about a minute ago   "starting container failed: No…"   ',
    'cccccccccccc   web.2       shoal/busybox:latest   node-2    Running         Running about an hour ago                                      *:8080->80/tcp',
    'dddddddddddd   web.10      shoal/busybox:latest             Running         Pending 24 hours ago                                           ',
  ));
  const full = taskTable(tasks, nodes, { now, trunc: false });
  t.true(full.includes('"starting container failed: No such image: nosuch:latest"'));
  t.true(full.includes('aaaaaaaaaaaa1111111111111'));
  t.is(taskIds(tasks), lines('aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'cccccccccccc', 'dddddddddddd'));
  t.deepEqual(sortTasks(tasks).map((x) => x.slot), [1, 1, 2, 10]);
});

test('taskTable names global tasks <service>.<nodeID>', (t) => {
  const out = taskTable([task({ id: 'x'.repeat(25), slot: 0, nodeId: 'nodeabc', state: 'running', at: '2026-01-01T00:00:00.000Z' })], {}, { now: Date.parse('2026-01-01T00:00:00.500Z') });
  t.true(out.includes('web.nodeabc'));
  t.true(out.includes('Running less than a second ago'));
});

test('nodeTable: full IDs with * for self, natural hostname order, manager status', (t) => {
  const nodes = [
    node({ id: '3'.repeat(25), hostname: 'node-10', state: 'down', availability: 'drain', worker: true, engine: '25.0.0' }),
    node({ id: '2'.repeat(25), hostname: 'node-2', leader: true }),
    node({ id: '1'.repeat(25), hostname: 'node-1' }),
  ];
  t.is(nodeTable(nodes, '2'.repeat(25)), lines(
    'ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION',
    '1111111111111111111111111     node-1     Ready     Active         Reachable        26.1.5',
    '2222222222222222222222222 *   node-2     Ready     Active         Leader           26.1.5',
    '3333333333333333333333333     node-10    Down      Drain                           25.0.0',
  ));
});

test('networkTable: NETWORK ID, NAME, DRIVER, SCOPE sorted by name', (t) => {
  t.is(networkTable([network('bbbbbbbbbbbbxyz', 'web-net'), network('aaaaaaaaaaaaxyz', 'ingress')]), lines(
    'NETWORK ID     NAME      DRIVER    SCOPE',
    'aaaaaaaaaaaa   ingress   overlay   swarm',
    'bbbbbbbbbbbb   web-net   overlay   swarm',
  ));
});

test('pretty renderings show the key facts', (t) => {
  const s = prettyService(service({ id: 'svcid', name: 'web', replicas: 3 }));
  t.regex(s, /^ID: +svcid$/m);
  t.regex(s, /^Service Mode: +Replicated$/m);
  t.regex(s, /^ Replicas: +3$/m);
  t.regex(s, /^ Image: +shoal\/busybox:latest$/m);
  const n = prettyNode(node({ id: 'nid', hostname: 'node-1', leader: true }));
  t.regex(n, /^Hostname: +node-1$/m);
  t.regex(n, /^ Leader: +Yes$/m);
  t.regex(n, /^ Memory: +2GiB$/m);
});

test('renderTemplate: Go templates after Docker\'s \\t and \\n escapes; errors are UsageErrors', (t) => {
  const data = { Swarm: { LocalNodeState: 'active', Nodes: 3, Cluster: { ID: 'c1' } }, spec: { name: 'web', labels: { a: '1' } } };
  t.is(renderTemplate('{{.Swarm.LocalNodeState}}', data), 'active');
  t.is(renderTemplate('{{ .Swarm.Nodes }} nodes\\t{{.Swarm.Cluster.ID}}', data), '3 nodes\tc1');
  t.is(renderTemplate('{{json .spec.labels}}', data), '{"a":"1"}');
  t.is(renderTemplate('{{.spec.labels}}', data), 'map[a:1]');
  t.is(renderTemplate('{{.nope.x}}', data), '<no value>');
  t.is(renderTemplate('{{range $k, $v := .spec.labels}}{{$k}}={{$v}}{{end}}', data), 'a=1');
  t.throws(() => renderTemplate('{{range .}}x', data), { instanceOf: UsageError, message: /^invalid --format "\{\{range \.\}\}x": template: \{\{range .*\}\} has no \{\{end\}\}$/ });
});

test('swarmInfoText: Docker-like Swarm section', (t) => {
  t.is(swarmInfoText({ localNodeState: 'inactive', nodeId: '' }), 'Swarm: inactive\n');
  t.is(swarmInfoText({
    localNodeState: 'active', nodeId: 'n1', role: 'manager', isLeader: true, leaderId: 'n1', clusterId: 'c1',
    managers: [{ nodeId: 'n1', addr: '10.0.0.1:2377', reachable: true }, { nodeId: 'n2', addr: '10.0.0.2:2377', reachable: false }], nodes: 3,
  }), [
    'Swarm: active', ' NodeID: n1', ' Is Manager: true', ' ClusterID: c1', ' Managers: 2', ' Nodes: 3', ' Leader: n1 (this node)',
    ' Manager Addresses:', '  10.0.0.1:2377', '  10.0.0.2:2377 (unreachable)', '',
  ].join('\n'));
});

test('--format templates use Docker field names; "table" adds headers and alignment', (t) => {
  const items = [
    { service: service({ id: 'bbbbbbbbbbbb999', name: 'web', replicas: 3 }), running: 2, desired: 3 },
    { service: service({ id: 'aaaaaaaaaaaa999', name: 'api', replicas: 1 }), running: 1, desired: 1 },
  ];
  t.is(serviceTable(items, '{{.Name}} {{.Replicas}}'), lines('api 1/1', 'web 2/3'));
  t.is(serviceTable(items, 'table {{.Name}}\\t{{.Replicas}}'), lines('NAME      REPLICAS', 'api       1/1', 'web       2/3'));
  t.is(serviceTable(items, 'table'), serviceTable(items));
  const nodes = [node({ id: 'n1'.padEnd(25, 'x'), hostname: 'node-1', leader: true })];
  t.is(nodeTable(nodes, 'n1'.padEnd(25, 'x'), '{{.Hostname}} {{.Self}} {{.ManagerStatus}}'), lines('node-1 true Leader'));
  const tasks = [
    task({ id: 'a'.repeat(25), slot: 1, state: 'running', at: '2026-01-01T00:00:00.000Z', createdAt: '2026-01-01T00:00:02.000Z' }),
    task({ id: 'b'.repeat(25), slot: 1, state: 'shutdown', desired: 'shutdown', at: '2026-01-01T00:00:00.000Z', createdAt: '2026-01-01T00:00:01.000Z' }),
  ];
  // Plain templates do not indent history rows (Docker indents only in tables).
  t.is(taskTable(tasks, {}, { now: Date.parse('2026-01-01T00:00:10.000Z'), format: '{{.Name}} {{.DesiredState}}' }), lines('web.1 Running', 'web.1 Shutdown'));
  t.is(taskTable(tasks, {}, { now: 0, format: 'table {{.Name}}' }), lines('NAME', 'web.1', ' \\_ web.1'));
  t.is(networkTable([network('aaaaaaaaaaaaxyz', 'ingress')], true, '{{.ID}} {{.Scope}}'), lines('aaaaaaaaaaaa swarm'));
});

test('pretty service: the update status as stored, rollback states included', (t) => {
  const s = service({ id: 'svcid', name: 'web' });
  s.updateStatus = { state: 'rollback_completed', startedAt: '2026-01-01T00:00:00.000Z', completedAt: '2026-01-01T00:01:00.000Z', message: 'rollback completed' };
  const text = prettyService(s);
  t.regex(text, /^UpdateStatus:\n State: +rollback_completed\n Started: +2026-01-01T00:00:00\.000Z\n Completed: +2026-01-01T00:01:00\.000Z\n Message: +rollback completed$/m);
  s.updateStatus = { state: 'rollback_started', startedAt: '2026-01-01T00:00:00.000Z', message: 'manually requested rollback' };
  t.regex(prettyService(s), /^ State: +rollback_started\n Started: .*\n Message: +manually requested rollback$/m);
});
