/**
 * Runs the data-driven scripts in `raft/testdata/*.txt` (see interaction.ts). Set
 * RAFT_REWRITE=1 to regenerate expected outputs.
 */
import test from 'ava';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InteractionEnv, formatScript, parseScript } from './interaction.js';

const dir = fileURLToPath(new URL('../../testdata/', import.meta.url));
const rewrite = process.env.RAFT_REWRITE === '1';

for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
  test(`interaction script ${file}`, (t) => {
    const path = dir + file;
    const { stanzas, trailer } = parseScript(readFileSync(path, 'utf8'));
    const env = new InteractionEnv();
    const outputs = stanzas.map((s) => env.handle(s.command));
    if (rewrite) {
      writeFileSync(path, formatScript(stanzas, trailer, outputs));
      t.pass();
      return;
    }
    stanzas.forEach((s, i) => {
      t.is(outputs[i], s.expected, `${file}: output of "${s.command}" differs (RAFT_REWRITE=1 regenerates)`);
    });
  });
}
