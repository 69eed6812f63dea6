#!/usr/bin/env node
// Bundles the `shoal` CLI into one ESM file, dist/shoal.mjs, so that start-up reads one file
// instead of resolving dozens of modules (yargs, @shoal/client, @shoal/api). Run after `tsc -b`
// (it bundles the compiled dist/src/main.js): `npx tsc -b cmd/shoal && node cmd/shoal/build.mjs`.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, 'dist/src/main.js');
if (!existsSync(entry)) {
  console.error(`build.mjs: ${entry} is missing; run \`npx tsc -b cmd/shoal\` first`);
  process.exit(1);
}
await build({
  entryPoints: [entry],
  // Code splitting: commands are imported lazily (cli.ts `lazy`), so each command's code — e.g.
  // the compose loader (yaml, ajv and the Compose Specification's schema) for `stack deploy` —
  // is its own chunk, read only when that command runs; every start stays small.
  outdir: join(here, 'dist'),
  entryNames: 'shoal',
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  keepNames: false,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [{
    // `string-width` compiles a huge Unicode regex at load time; use a light equivalent.
    name: 'light-string-width',
    setup(b) {
      b.onResolve({ filter: /^string-width$/ }, () => ({ path: join(here, 'build-shims/string-width.mjs') }));
    },
  }],
  // Some dependencies (yargs' helpers) use require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __shoalCreateRequire } from 'node:module'; const require = __shoalCreateRequire(import.meta.url);" },
});
