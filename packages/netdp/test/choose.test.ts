import test from 'ava';
import { chooseDataplane, decideDataplane } from '../src/choose.js';
import type { Capabilities } from '../src/dataplane.js';

const caps = (nft: boolean, ipvs: boolean): Capabilities => ({ nft, ipvs, root: true, kernel: 'x' });

test('auto prefers nftables, then IPVS, then userspace', (t) => {
  t.is(decideDataplane('auto', caps(true, true)).kind, 'nftables');
  t.is(decideDataplane('auto', caps(false, true)).kind, 'ipvs');
  t.is(decideDataplane('auto', caps(false, false)).kind, 'userspace');
});

test('an explicit choice the host cannot run is refused with the fix', (t) => {
  t.throws(() => decideDataplane('ipvs', caps(true, false)), { message: /\/proc\/net\/ip_vs is missing.*use auto or nftables/ });
  t.throws(() => decideDataplane('nftables', caps(false, true)), { message: /nft does not work here/ });
  t.throws(() => decideDataplane('bogus' as 'auto', caps(true, true)), { message: /invalid --lb-dataplane "bogus"/ });
  t.is(decideDataplane('userspace', caps(false, false)).kind, 'userspace');
});

test('on this host (root, nft works) auto picks nftables', async (t) => {
  const c = await chooseDataplane();
  t.is(c.kind, 'nftables');
  t.is(c.dataplane.kind, 'nftables');
});
