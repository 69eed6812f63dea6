#!/usr/bin/env node
// Boundary check (design.md "Rules of the house"): every workspace may import only the Shoal
// workspaces in its allowlist below, and the Raft core does no I/O. The table is the one drawn in
// docs/ARCHITECTURE.md; change both together. Exit 1 with one line per violation.
import fs from 'node:fs';
import path from 'node:path';

const ALLOW = {
  raft: [],
  api: [],
  store: ['api'],
  replication: ['raft', 'api'],
  ca: ['api'],
  controlapi: ['api', 'store'],
  orchestrator: ['api', 'store'],
  scheduler: ['api', 'store'],
  allocator: ['api', 'store'],
  dispatcher: ['api', 'store'],
  manager: ['api', 'store', 'replication', 'ca', 'rpc', 'controlapi', 'orchestrator', 'scheduler', 'allocator', 'dispatcher'],
  agent: ['api'],
  'executor-docker': ['api', 'agent'],
  netdp: ['api'],
  rpc: ['api', 'ca'],
  client: ['api'],
  shoal: ['api', 'client', 'controlapi'],
  shoald: ['api', 'manager', 'agent', 'executor-docker', 'netdp', 'client', 'controlapi', 'ca', 'rpc', 'replication'],
  e2e: ['api', 'client'],
  runtime: [],
  testkit: ['api', 'store', 'agent', 'runtime'],
};
// Every tier may use the runtime (Clock, Logger, ReconcileLoop) but the pure Raft core; only tests
// (files under test/) may use the testkit.
const EVERYWHERE = (name, dir, dep) => (dep === 'runtime' && name !== 'raft') || (dep === 'testkit' && dir === 'test');
// The pure Raft core: no timers, sockets, files or processes (tests may use them).
const RAFT_FORBIDDEN = /^node:(fs|net|http|https|dgram|child_process|worker_threads|timers)/;

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const pkgJson = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const problems = [];

function* tsFiles(dir) {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'node_modules' && e.name !== 'dist') yield* tsFiles(p); }
    else if (/\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts')) yield p;
  }
}

const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
for (const ws of pkgJson.workspaces) {
  const name = JSON.parse(fs.readFileSync(path.join(root, ws, 'package.json'), 'utf8')).name.replace('@shoal/', '');
  const allowed = ALLOW[name];
  if (!allowed) { problems.push(`${ws}: workspace @shoal/${name} has no entry in scripts/check-deps.mjs`); continue; }
  for (const dir of ['src', 'test', 'e2e', 'lib']) {
    for (const file of tsFiles(path.join(root, ws, dir))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(importRe)) {
        const spec = m[1] ?? m[2];
        const rel = path.relative(root, file);
        const sh = /^@shoal\/([^/]+)/.exec(spec);
        if (sh && sh[1] !== name && !allowed.includes(sh[1]) && !EVERYWHERE(name, dir, sh[1])) {
          problems.push(`${rel}: imports @shoal/${sh[1]}, which @shoal/${name} may not use (allowed: ${allowed.join(', ') || 'none'})`);
        }
        if (name === 'raft' && dir === 'src' && RAFT_FORBIDDEN.test(spec)) {
          problems.push(`${rel}: the Raft core must stay pure but imports ${spec}`);
        }
      }
    }
  }
}
if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`check-deps: ${pkgJson.workspaces.length} workspaces within their import allowlists`);
