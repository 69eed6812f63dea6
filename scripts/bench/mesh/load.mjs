// Bounded closed-loop HTTP load (autocannon-like): C keep-alive connections issue GETs back to back
// for D seconds, then stop. Prints JSON lines: <name>_rps, <name>_p99_ms, <name>_errors.
// Usage: node load.mjs NAME URL [durationS=5] [connections=32]
import http from 'node:http';
const [name, url, d = '5', c = '32'] = process.argv.slice(2);
const D = Number(d) * 1000;
const C = Number(c);
const agent = new http.Agent({ keepAlive: true, maxSockets: C });
const lat = [];
let errors = 0;
let ok = 0;
const end = performance.now() + D;
const one = () => new Promise((resolve) => {
  const t = performance.now();
  const req = http.get(url, { agent }, (res) => {
    res.resume();
    res.on('end', () => {
      if (res.statusCode === 200) { ok++; lat.push(performance.now() - t); } else errors++;
      resolve();
    });
  });
  req.on('error', () => { errors++; resolve(); });
  req.setTimeout(5000, () => req.destroy(new Error('timeout')));
});
const start = performance.now();
await Promise.all(Array.from({ length: C }, async () => { while (performance.now() < end) await one(); }));
const secs = (performance.now() - start) / 1000;
lat.sort((a, b) => a - b);
const p99 = lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] : 0;
const out = (metric, value, unit) => console.log(JSON.stringify({ metric, value: Math.round(value * 100) / 100, unit }));
out(`${name}_rps`, ok / secs, 'req/s');
out(`${name}_p99_ms`, p99, 'ms');
out(`${name}_errors`, errors, 'count');
agent.destroy();
