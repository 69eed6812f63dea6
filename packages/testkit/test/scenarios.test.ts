/**
 * The cluster harness's scenario files, `packages/testkit/testdata/*.txt` (the language is in
 * src/cluster/scenario.ts; README.md). `SHOAL_REWRITE=1` rewrites their expected outputs.
 * Serial: the harness installs a process-wide seeded ID source.
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runDataDriven } from '../src/index.js';
import { ScenarioRunner } from '../src/cluster/index.js';

const dir = fileURLToPath(new URL('../../testdata/', import.meta.url));

for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
  test.serial(`scenario ${file}`, async (t) => {
    const runner = new ScenarioRunner();
    try {
      await runDataDriven(dir + file, (s) => runner.handle(s), t);
    } finally {
      await runner.close();
    }
    t.pass();
  });
}

test.serial('a scenario run twice prints the same, to the letter', async (t) => {
  const outputs: string[][] = [];
  for (let i = 0; i < 2; i++) {
    const runner = new ScenarioRunner();
    try {
      outputs.push(await runDataDriven(dir + 'b08-leader-killed.txt', (s) => runner.handle(s), { is: () => undefined }, { rewrite: false }));
    } finally {
      await runner.close();
    }
  }
  t.deepEqual(outputs[0], outputs[1]);
});
