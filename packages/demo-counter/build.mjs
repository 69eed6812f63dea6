#!/usr/bin/env node
// Bundles the counter (and ioredis) into one ESM file, dist/counter.mjs, for the shoal/counter
// image (scripts/build-demo-images.sh). Run after `tsc -b`.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, 'dist/src/main.js')],
  outfile: join(here, 'dist/counter.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
