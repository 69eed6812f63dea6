#!/usr/bin/env node
// The `shoal` command: loads the bundled CLI (built by `node cmd/shoal/build.mjs`).
import('../dist/shoal.mjs').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('shoal.mjs')) {
    process.stderr.write('Error: the shoal CLI is not built; run `npx tsc -b cmd/shoal && node cmd/shoal/build.mjs`\n');
  } else {
    process.stderr.write(`Error: ${e && e.message ? e.message : e}\n`);
  }
  process.exit(1);
});
