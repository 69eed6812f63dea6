/**
 * Runs the data-driven scripts in `raft/testdata/*.txt` (see interaction.ts) with the shared
 * parser of `@shoal/testkit/datadriven`. Set SHOAL_REWRITE=1 to regenerate expected outputs.
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runDataDriven } from '@shoal/testkit/datadriven';
import { InteractionEnv } from './interaction.js';

const dir = fileURLToPath(new URL('../../testdata/', import.meta.url));

for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
  test(`interaction script ${file}`, async (t) => {
    const env = new InteractionEnv();
    await runDataDriven(dir + file, (s) => env.handle(s.command), t);
    t.pass();
  });
}
