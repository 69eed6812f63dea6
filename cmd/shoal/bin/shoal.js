#!/usr/bin/env -S node --
// The `shoal` command. Loads the esbuild bundle (dist/shoal.mjs, built by `node cmd/shoal/build.mjs`)
// for a fast start; falls back to the tsc output (dist/src/main.js) when the bundle is missing.
const missing = (e, file) => e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(file);

import('../dist/shoal.mjs')
  .catch((e) => {
    if (missing(e, 'shoal.mjs')) return import('../dist/src/main.js');
    throw e;
  })
  .catch((e) => {
    if (missing(e, 'main.js')) {
      process.stderr.write('Error: the shoal CLI is not built; run `npx tsc -b cmd/shoal && node cmd/shoal/build.mjs`\n');
    } else {
      process.stderr.write(`Error: ${e && e.message ? e.message : e}\n`);
    }
    process.exit(1);
  });
