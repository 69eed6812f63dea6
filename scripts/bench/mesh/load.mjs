// Bounded closed-loop HTTP load (autocannon-like): C keep-alive connections issue GETs back to back
// for D seconds per sample. Targets are interleaved over R rounds (so drifting background load hits
// them alike) and the median sample is reported. JSON lines: <name>_rps, <name>_p99_ms, <name>_errors,
// and <name>_vs_<first>_rps_ratio for every target after the first.
// Usage: node load.mjs D C R NAME=URL [NAME=URL …]
import http from 'node:http';
const [d, c, r, ...targets] = process.argv.slice(2);
const D = Number(d) * 1000;
const C = Number(c);
const R = Number(r);
const out = (metric, value, unit) => console.log(JSON.stringify({ metric, value: Math.round(value * 1000) / 1000, unit }));

async function sample(url) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  const lat = [];
  let errors = 0;
  const end = performance.now() + D;
  const one = () => new Promise((resolve) => {
    const t = performance.now();
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) lat.push(performance.now() - t); else errors++;
        resolve();
      });
    });
    req.on('error', () => { errors++; resolve(); });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
  const start = performance.now();
  await Promise.all(Array.from({ length: C }, async () => { while (performance.now() < end) await one(); }));
  const secs = (performance.now() - start) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { rps: lat.length / secs, p99: lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] : 0, errors };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const named = targets.map((t) => { const i = t.indexOf('='); return { name: t.slice(0, i), url: t.slice(i + 1), samples: [] }; });
for (let k = 0; k < R; k++) for (const t of named) t.samples.push(await sample(t.url));
for (const t of named) {
  out(`${t.name}_rps`, median(t.samples.map((s) => s.rps)), 'req/s');
  out(`${t.name}_p99_ms`, median(t.samples.map((s) => s.p99)), 'ms');
  out(`${t.name}_errors`, t.samples.reduce((a, s) => a + s.errors, 0), 'count');
}
const base = median(named[0].samples.map((s) => s.rps));
for (const t of named.slice(1)) out(`${t.name}_vs_${named[0].name}_rps_ratio`, median(t.samples.map((s) => s.rps)) / base, 'ratio');
