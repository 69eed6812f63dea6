import test from 'ava';
import { renderNftRuleset, renderNftUpdate, nftRunner, NftDataplane, NftError } from '../src/nft.js';
import type { ServiceTable } from '../src/table.js';
import { removedBackends } from '../src/table.js';
import { golden, netnsSet, sampleTable } from './helpers.js';

const withBackends = (t: ServiceTable, id: string, f: (s: ServiceTable['services'][number]) => void): ServiceTable => {
  const c = structuredClone(t);
  f(c.services.find((s) => s.id === id)!);
  return c;
};

test('full ruleset: golden', (t) => {
  golden(t, 'full.nft', renderNftRuleset(sampleTable()));
});

test('empty table: golden (base chains and empty maps only)', (t) => {
  golden(t, 'empty.nft', renderNftRuleset({ services: [] }, { table: 'shoal' }));
});

test('rendering is independent of input order', (t) => {
  const a = sampleTable();
  const b = structuredClone(a);
  b.services.reverse();
  for (const s of b.services) s.backends.reverse();
  t.is(renderNftRuleset(a), renderNftRuleset(b));
});

test('incremental: one backend change flushes and refills only that chain', (t) => {
  const prev = sampleTable();
  const next = withBackends(prev, 'web0000000000000000000001', (s) => {
    s.backends = s.backends.filter((b) => b.ip !== '10.97.2.2');
    s.backends.push({ ip: '10.97.1.50', taskId: 'a5tsk00000000000000000000', state: 'active' });
  });
  golden(t, 'update-backend.nft', renderNftUpdate(prev, next)!);
});

test('incremental: add and remove services, change a VIP', (t) => {
  const prev = sampleTable();
  const next = structuredClone(prev);
  next.services = next.services.filter((s) => s.id !== 'api0000000000000000000003');
  next.services[1]!.vip = '10.96.0.12';
  next.services.push({ id: 'new0000000000000000000004', name: 'cache', vip: '10.96.0.20', ports: [{ protocol: 'tcp', targetPort: 6379 }], backends: [{ ip: '10.97.2.9', taskId: 'b9tsk00000000000000000000', state: 'active' }] });
  golden(t, 'update-services.nft', renderNftUpdate(prev, next)!);
});

test('incremental: same table is empty, postrouting change needs a full sync', (t) => {
  t.is(renderNftUpdate(sampleTable(), sampleTable()), '');
  t.is(renderNftUpdate(sampleTable(), { ...sampleTable(), clusterCidr: '10.98.0.0/16' }), null);
});

test('bad tables are refused with a one-line error naming the value', (t) => {
  const bad = (f: (x: ServiceTable) => void) => {
    const x = sampleTable();
    f(x);
    return x;
  };
  t.throws(() => renderNftRuleset(bad((x) => (x.services[0]!.vip = '10.96.0.300'))), { message: /invalid VIP "10.96.0.300"/ });
  t.throws(() => renderNftRuleset(bad((x) => (x.services[0]!.id = 'Web-1'))), { message: /invalid service id "Web-1"/ });
  t.throws(() => renderNftRuleset(bad((x) => (x.services[2]!.ports[0]!.publishedPort = 8080))), { message: /published port tcp\/8080 is claimed by services web and api/ });
  t.throws(() => renderNftRuleset(bad((x) => (x.services[0]!.backends[0]!.weight = 0))), { message: /invalid weight 0/ });
  t.throws(() => renderNftRuleset(bad((x) => (x.services[0]!.ports[0]!.targetPort = 70000))), { message: /invalid target port .* 70000/ });
});

test('removedBackends lists hard removals per protocol, not drains', (t) => {
  const prev = sampleTable();
  const next = withBackends(prev, 'web0000000000000000000001', (s) => {
    s.backends = s.backends.filter((b) => b.ip !== '10.97.2.2');
    s.backends[0]!.state = 'draining';
  });
  next.services = next.services.filter((s) => s.id !== 'api0000000000000000000003');
  t.deepEqual(removedBackends(prev, next).map((r) => `${r.protocol}/${r.ip}`), ['tcp/10.97.2.2', 'tcp/10.97.1.7']);
});

test('netns: rendered rulesets load; incremental updates leave the kernel equal to a full load', async (t) => {
  const { ns } = await netnsSet(t, ['nft']);
  const runner = nftRunner({ netns: ns.nft });
  const dp = new NftDataplane({ netns: ns.nft, conntrack: true });
  const t1 = sampleTable();
  t.is((await dp.sync(t1)).mode, 'full');
  t.is((await dp.sync(t1)).mode, 'noop');
  const t2 = withBackends(t1, 'web0000000000000000000001', (s) => s.backends.push({ ip: '10.97.2.3', taskId: 'b3tsk00000000000000000000', state: 'active' }));
  t2.services = t2.services.filter((s) => s.id !== 'dns0000000000000000000002');
  t2.services.push({ id: 'new0000000000000000000004', name: 'cache', vip: '10.96.0.20', ports: [{ protocol: 'tcp', targetPort: 6379, publishedPort: 30002 }], backends: [] });
  t.is((await dp.sync(t2)).mode, 'incremental');
  const incremental = await runner.list('shoal');
  // A fresh full load of the same table lists identically (element order aside, nft sorts).
  const dp2 = new NftDataplane({ netns: ns.nft });
  t.is((await dp2.sync(t2)).mode, 'full');
  const full = await runner.list('shoal');
  t.truthy(full);
  t.is(normalize(incremental!), normalize(full!));
  t.regex(full!, /dnat ip to numgen random mod 4 map \{ 0-1 : 10\.97\.1\.2 \. 80, 2 : 10\.97\.2\.2 \. 80, 3 : 10\.97\.2\.3 \. 80 \}/);
  t.regex(full!, /reject with tcp reset/);
  // Someone deletes our table behind our back: the next incremental sync falls back to a full one.
  await runner.apply('delete table ip shoal\n');
  const t3 = withBackends(t2, 'web0000000000000000000001', (s) => s.backends.pop());
  t.is((await dp2.sync(t3)).mode, 'full');
  // A published port moves to another service in one incremental transaction (delete + add element).
  const t4 = structuredClone(t3);
  t4.services.find((s) => s.id === 'web0000000000000000000001')!.ports[0]!.publishedPort = undefined;
  t4.services.find((s) => s.id === 'new0000000000000000000004')!.ports[0]!.publishedPort = 8080;
  t.is((await dp2.sync(t4)).mode, 'incremental');
  const moved = await runner.list('shoal');
  await new NftDataplane({ netns: ns.nft }).sync(t4);
  t.is(normalize(moved!), normalize((await runner.list('shoal'))!));
  t.regex(moved!, /tcp \. 8080 comment "svc=cache mesh" : goto svc_new0000000000000000000004_tcp6379/);
  // nft's errors surface with its stderr.
  const err = await t.throwsAsync(runner.apply('add rule ip shoal nosuchchain accept\n'));
  t.true(err instanceof NftError);
  t.regex(err!.message, /nosuchchain|No such file/);
  await dp2.close();
  t.is(await runner.list('shoal'), null);
  await dp2.close(); // idempotent
});

/** nft lists set elements in kernel order; compare as sorted lines. */
function normalize(s: string): string {
  return s.split(/[\n,]/).map((l) => l.trim()).filter(Boolean).sort().join('\n');
}
