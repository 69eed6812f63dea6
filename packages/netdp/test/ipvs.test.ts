import test from 'ava';
import { assignFwmarks, renderIpvsNft, renderIpvsRestore, renderIpvsUpdate, ipvsVips, IpvsDataplane } from '../src/ipvs.js';
import { nftRunner } from '../src/nft.js';
import { golden, netnsSet, sampleTable } from './helpers.js';

test('fwmarks start at 256, are stable across syncs and reuse freed marks', (t) => {
  const t1 = sampleTable();
  const m1 = assignFwmarks(t1);
  t.deepEqual([...m1.values()].sort(), [256, 257, 258, 259, 260]);
  const t2 = structuredClone(t1);
  t2.services = t2.services.filter((s) => s.id !== 'api0000000000000000000003');
  t2.services.push({ id: 'zzz0000000000000000000009', name: 'late', vip: '10.96.0.30', ports: [{ protocol: 'tcp', targetPort: 1 }], backends: [] });
  const m2 = assignFwmarks(t2, m1);
  for (const [k, v] of m2) if (m1.has(k)) t.is(v, m1.get(k)!);
  t.is(m2.get('zzz0000000000000000000009/tcp/1'), m1.get('api0000000000000000000003/tcp/8000'));
});

test('ipvsadm -R restore: golden (fwmark services, -s rr, -m destinations, drain = weight 0)', (t) => {
  const tb = sampleTable();
  golden(t, 'ipvs-restore.txt', renderIpvsRestore(tb, assignFwmarks(tb)));
});

test('ipvsadm -R update: golden (drain, add, remove)', (t) => {
  const prev = sampleTable();
  const pm = assignFwmarks(prev);
  const next = structuredClone(prev);
  const web = next.services[0]!;
  web.backends[0]!.state = 'draining';
  web.backends = web.backends.filter((b) => b.ip !== '10.97.3.2');
  web.backends.push({ ip: '10.97.2.9', taskId: 'b9tsk00000000000000000000', state: 'active' });
  next.services = next.services.filter((s) => s.id !== 'dns0000000000000000000002');
  golden(t, 'ipvs-update.txt', renderIpvsUpdate(prev, pm, next, assignFwmarks(next, pm)));
  t.is(renderIpvsUpdate(prev, pm, prev, pm), '');
});

test('IPVS mark table: golden, and nft accepts it (checked in a netns)', async (t) => {
  const tb = sampleTable();
  const text = renderIpvsNft(tb, assignFwmarks(tb));
  golden(t, 'ipvs-marks.nft', text);
  t.deepEqual(ipvsVips(tb), ['10.96.0.10', '10.96.0.11']);
  const { ns } = await netnsSet(t, ['ipvs']);
  await nftRunner({ netns: ns.ipvs }).apply(text);
  t.regex((await nftRunner({ netns: ns.ipvs }).list('shoal_ipvs'))!, /meta mark set ip daddr \. meta l4proto \. th dport map @svc_marks/);
});

test('IPVS dataplane refuses to sync where the kernel has no IPVS', async (t) => {
  const dp = new IpvsDataplane();
  const caps = await dp.probe();
  if (caps.ipvs) return t.pass('this kernel has IPVS; refusal not testable here');
  await t.throwsAsync(dp.sync(sampleTable()), { message: /IPVS is not available/ });
});
