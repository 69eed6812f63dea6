// Runs scripts/check-deps.mjs on the small trees under fixtures/ (one per rule) and compares every
// finding. The real tree is checked by `npm run check-deps`, not here: it has known violations
// while packages are being restructured, and this test must pass on a clean checkout.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDeps, DEPS_FILE, DOC_FILE } from '../check-deps.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name) => path.join(here, 'fixtures', name);
const script = path.join(here, '..', 'check-deps.mjs');

/** Runs the CLI; returns { code, out } instead of throwing on exit 1. */
function cli(...args) {
  try {
    return { code: 0, out: execFileSync(process.execPath, [script, ...args], { encoding: 'utf8' }) };
  } catch (e) {
    return { code: e.status, out: String(e.stdout) };
  }
}

/** A writable copy of a fixture (the docs test rewrites files). */
function copy(t, name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `check-deps-${name}-`));
  fs.cpSync(fixture(name), dir, { recursive: true });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('allowlists: runtime vs types-only, dynamic import and require, npm lists, unknown names', (t) => {
  t.deepEqual(checkDeps({ root: fixture('allowlist') }).problems, [
    'cmd/cli/src/main.ts:3: imports @shoal/srv at runtime (import { type … }, kept as import {} under verbatimModuleSyntax), which cmd/cli may use for types only; make it `import type { … }` / `export type { … } from`',
    'cmd/cli/src/main.ts:5: imports @shoal/srv at runtime (export { type … } from, kept as export {} under verbatimModuleSyntax), which cmd/cli may use for types only; make it `import type { … }` / `export type { … } from`',
    'cmd/cli/src/main.ts:9: imports @shoal/srv at runtime (dynamic import()), which cmd/cli may use for types only; load nothing: `import type { … }` instead',
    'cmd/cli/src/main.ts:9: imports @shoal/srv at runtime (createRequire()()), which cmd/cli may use for types only; load nothing: `import type { … }` instead',
    'cmd/cli/src/main.ts:10: imports @shoal/srv at runtime (require()), which cmd/cli may use for types only; load nothing: `import type { … }` instead',
    'package.json:2: workspace packages/extra has no entry in scripts/deps.json; add one ("<name>": { "path": "packages/extra", "runtime": [...] })',
    'packages/api/src/index.ts:3: imports the npm package nanoid at runtime, which api may not (npm: typebox); move that code out of api, or add nanoid to its npm list in scripts/deps.json',
    'packages/lib/src/index.ts:2: imports @shoal/srv, which lib may not (runtime: api; types only: ghost); depend on it through api or an allowed workspace, or change scripts/deps.json if the architecture changed',
    'packages/lib/src/index.ts:3: imports types from @shoal/cli, which lib may not (runtime: api; types only: ghost); move the type to api, or change scripts/deps.json if the architecture changed',
    'packages/lib/src/index.ts:4: imports @shoal/testkit, which lib may not (runtime: api; types only: ghost); depend on it through api or an allowed workspace, or change scripts/deps.json if the architecture changed',
    'packages/lib/src/index.ts:5: imports @shoal/nope, which is no workspace in scripts/deps.json; add an entry for it, or fix the name',
    'packages/lib/src/sneak.ts:2: imports ../../srv/src/index.js, a file of srv, by relative path; import @shoal/srv (if lib may) instead',
    'scripts/deps.json:5: lib lists "ghost", which is no workspace in scripts/deps.json; fix the name or add an entry for it',
  ]);
});

test('package.json drift: undeclared, misplaced, unused, @types and ignoreUnused', (t) => {
  t.deepEqual(checkDeps({ root: fixture('drift') }).problems, [
    'packages/w/package.json:5: @shoal/api is in dependencies but only tests import it (packages/w/test/w.test.ts:3); move it to devDependencies',
    'packages/w/package.json:8: declares @types/gone in dependencies, but no file of w imports it; remove it, or add it to w.ignoreUnused in scripts/deps.json with the reason',
    'packages/w/package.json:9: declares unused-pkg in dependencies, but no file of w imports it; remove it, or add it to w.ignoreUnused in scripts/deps.json with the reason',
    'packages/w/package.json:10: test-only is in dependencies but only tests import it (packages/w/test/w.test.ts:2); move it to devDependencies',
    'packages/w/src/index.ts:4: imports runtime-in-dev at runtime, but packages/w/package.json declares it in devDependencies only; move it to dependencies',
    'packages/w/src/index.ts:5: imports undeclared-pkg at runtime, which packages/w/package.json does not declare; add "undeclared-pkg" to its dependencies',
    'packages/w/src/index.ts:6: imports types from types-undeclared, which packages/w/package.json does not declare; add "types-undeclared" to its devDependencies',
    'packages/w/test/w.test.ts:4: imports test-undeclared, which packages/w/package.json does not declare; add "test-undeclared" to its devDependencies',
    'scripts/deps.json:4: w.ignoreUnused lists stale-pkg, which packages/w/package.json does not declare; remove the entry',
  ]);
});

test('store writes: resolved by the checker, one finding per write (nested Tx calls included), tests exempt', (t) => {
  const msg = (line, what) => `packages/mgr/src/index.ts:${line}: mgr writes the store (${what}), which only store, ctl and tests may; go through controlapi or a reconciler instead`;
  t.deepEqual(checkDeps({ root: fixture('store-writes') }).problems, [
    msg(4, 'MemoryStore.update'),
    msg(8, 'MemoryStore.commit'),
    msg(9, 'MemoryStore.commit'),
    msg(14, 'Tx.delete'),
  ]);
});

test('pure core: built-in modules, npm packages, global timers, clocks, randomness, process, console', (t) => {
  const g = (line, name, why) => `raft/src/core.ts:${line}: the pure raft core uses the global ${name}: ${why}`;
  const timer = 'a timer; the host drives time through tick()';
  const clock = 'the wall clock; count ticks, or take times in messages from the host';
  t.deepEqual(checkDeps({ root: fixture('pure') }).problems, [
    'raft/src/core.ts:1: the pure raft core imports node:fs; I/O belongs in its host (replication), which passes data in through step()/ready()',
    'raft/src/core.ts:2: the pure raft core imports events; I/O belongs in its host (replication), which passes data in through step()/ready()',
    'raft/src/core.ts:4: imports the npm package some-npm at runtime, which raft may not (npm: none); move that code out of raft, or add some-npm to its npm list in scripts/deps.json',
    g(7, 'setTimeout', timer),
    g(8, 'setInterval', timer),
    g(9, 'Date', clock),
    g(10, 'Date', clock),
    g(11, 'performance', 'a clock (performance.now); count ticks instead'),
    'raft/src/core.ts:12: the pure raft core uses Math.random: randomness; use the seeded Config.random',
    g(13, 'console', 'output; log through the injected Config.logger'),
    g(13, 'process', 'process state and I/O; take settings through Config'),
    g(14, 'console', 'output; log through the injected Config.logger'),
  ]);
});

test('docs table: stale fails, --write-docs regenerates only the marked block, then the tree is clean', (t) => {
  const root = copy(t, 'docs');
  const stale = cli('--root', root);
  t.is(stale.code, 1);
  t.deepEqual(stale.out.trim().split('\n'), [
    `${DOC_FILE}:7: the "Who may import whom" table differs from ${DEPS_FILE}; run node scripts/check-deps.mjs --write-docs`,
    'check-deps: 1 violation',
  ]);

  const write = cli('--root', root, '--write-docs');
  t.is(write.code, 0, write.out);
  t.regex(write.out, /rewrote the table/);
  const doc = fs.readFileSync(path.join(root, DOC_FILE), 'utf8');
  t.true(doc.startsWith('# Fixture\n\n## Who may import whom\n\nHand-written text around the markers stays as it is.\n\n<!-- deps-table:begin -->\n'));
  t.true(doc.endsWith('<!-- deps-table:end -->\n\nMore text.\n'));
  t.regex(doc, /^\| store \| api \| — \| any \|$/m);
  t.regex(doc, /^- Generated from `scripts\/deps.json`/m);

  const clean = cli('--root', root);
  t.is(clean.code, 0);
  t.regex(clean.out, /^check-deps: 2 workspaces, 2 files: imports within their allowlists, .* docs table current \(\d+ ms\)\n$/);

  fs.writeFileSync(path.join(root, DOC_FILE), '# No markers\n');
  t.deepEqual(checkDeps({ root }).problems, [
    `${DOC_FILE}:1: has no <!-- deps-table:begin --> … <!-- deps-table:end --> block for the "Who may import whom" table; add the two markers, then run node scripts/check-deps.mjs --write-docs`,
  ]);
});

test('the repository: within its boundaries (npm run check-deps finds nothing)', (t) => {
  t.deepEqual(checkDeps().problems, []);
});

test('bad arguments exit 2 with the usage', (t) => {
  const r = (() => {
    try {
      execFileSync(process.execPath, [script, '--frobnicate'], { encoding: 'utf8', stdio: 'pipe' });
      return { code: 0, err: '' };
    } catch (e) {
      return { code: e.status, err: String(e.stderr) };
    }
  })();
  t.is(r.code, 2);
  t.regex(r.err, /unknown argument --frobnicate; usage: node scripts\/check-deps.mjs \[--root DIR\] \[--write-docs\]/);
});
