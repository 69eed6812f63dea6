#!/usr/bin/env node
// CLI start-up benchmark: wall time of whole `shoal` processes, as a script would run them.
// Usage: node cmd/shoal/bench/startup.mjs [RUNS]   (default 20; `service ls` is measured when
// $SHOAL_HOST, or the default socket, answers). Prints one JSON line per figure:
// {"metric","value","unit"} with the median and the minimum over the runs, and bare `node -e 0`
// as the floor on this machine.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '../bin/shoal.js');
const runs = Number(process.argv[2] ?? 20);

function measure(args) {
  const times = [];
  let status = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    status ||= r.status ?? 1;
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length / 2)], min: times[0], status };
}

const emit = (metric, value) => console.log(JSON.stringify({ metric, value: Math.round(value * 10) / 10, unit: 'ms' }));

const floor = measure(['-e', '0']);
emit('node_e0_wall_p50', floor.p50);
const version = measure([BIN, '--version']);
emit('shoal_version_wall_p50', version.p50);
emit('shoal_version_wall_min', version.min);
const ls = measure([BIN, 'service', 'ls']);
if (ls.status === 0) {
  emit('shoal_service_ls_wall_p50', ls.p50);
  emit('shoal_service_ls_wall_min', ls.min);
} else {
  console.error('startup.mjs: `shoal service ls` failed (no daemon at $SHOAL_HOST?); skipped that figure');
}
