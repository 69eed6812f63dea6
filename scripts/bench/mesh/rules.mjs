// Rule-update latency of the nftables dataplane, in a throwaway netns (must already be entered:
// mesh.sh runs this under `nsenter --net=...`). JSON lines {"metric","value","unit"}.
// Usage: node rules.mjs [services=1000] [backends=10] [runs=15]
import { NftDataplane, renderNftRuleset, nftModel, diffNftModels } from '@shoal/netdp';

const S = Number(process.argv[2] ?? 1000);
const B = Number(process.argv[3] ?? 10);
const N = Number(process.argv[4] ?? 15);
const out = (metric, value, unit) => console.log(JSON.stringify({ metric, value: Math.round(value * 1000) / 1000, unit }));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const id = (i) => `s${String(i).padStart(24, '0')}`;
const ip = (n) => `10.${97 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;

function table(gen) {
  const services = [];
  for (let i = 0; i < S; i++) {
    const backends = [];
    for (let j = 0; j < B; j++) backends.push({ ip: ip(1 + i * B + j), taskId: `t${i}x${j}`, state: 'active' });
    if (i === 0) backends[0] = { ip: ip(200000 + gen), taskId: `t0g${gen}`, state: 'active' }; // the one backend that changes
    services.push({ id: id(i), name: `svc${i}`, vip: `10.96.${i >> 8}.${i & 255}`, ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 20000 + i }], backends });
  }
  return { services, clusterCidr: '10.97.0.0/16', hairpin: [{ subnet: '10.97.1.0/24', bridge: 'ovl0' }] };
}

const t0 = table(0);
let t = performance.now();
const text = renderNftRuleset(t0);
out('nft_render_full_ms', performance.now() - t, 'ms');
out('nft_ruleset_bytes', Buffer.byteLength(text), 'bytes');
// The dataplane's path: per-service memo, so only the changed service is re-rendered.
const memo = new Map();
const m0 = nftModel(t0, memo);
const t1 = table(1);
t = performance.now();
const upd = diffNftModels(m0, nftModel(t1, memo));
out('nft_render_one_backend_change_ms', performance.now() - t, 'ms');
out('nft_update_bytes', Buffer.byteLength(upd), 'bytes');

// Full loads (delete-table prelude + whole table), each a fresh dataplane → mode 'full'.
const full = [];
for (let k = 0; k < Math.max(3, Math.floor(N / 5)); k++) {
  const dp = new NftDataplane({ conntrack: false });
  const r = await dp.sync(table(0));
  if (r.mode !== 'full') throw new Error(`expected a full sync, got ${r.mode}`);
  full.push(r.ms);
}
out(`nft_full_load_${S}x${B}_ms`, median(full), 'ms');

// One backend changes per transaction: flush chain + add rule, one `nft -f`.
const dp = new NftDataplane({ conntrack: false, fullResyncEvery: 0 });
await dp.sync(table(0));
const inc = [];
for (let k = 1; k <= N; k++) {
  const r = await dp.sync(table(k));
  if (r.mode !== 'incremental') throw new Error(`expected an incremental sync, got ${r.mode}`);
  inc.push(r.ms);
}
out(`nft_one_backend_change_${S}x${B}_ms`, median(inc), 'ms');
out(`nft_one_backend_change_${S}x${B}_max_ms`, Math.max(...inc), 'ms');
await dp.close();
