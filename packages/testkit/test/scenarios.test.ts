/**
 * The cluster harness's scenario files, `packages/testkit/testdata/*.txt` (the language is in
 * src/cluster/scenario.ts; README.md). `SHOAL_REWRITE=1` rewrites their expected outputs.
 * Serial: the harness installs a process-wide seeded ID source.
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runDataDriven } from '../src/index.js';
import type { Logger } from '@shoal/runtime';
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

test.serial('a scenario run twice gives the same trace: outputs and every log line of every component, with its fake time', async (t) => {
  const runs: { outputs: string[]; log: string[] }[] = [];
  for (let i = 0; i < 2; i++) {
    const log: string[] = [];
    const runner: ScenarioRunner = new ScenarioRunner({ logger: recorder(log, (): number => runner.cluster?.clock.now() ?? 0) });
    try {
      const outputs = await runDataDriven(dir + 'b08-leader-killed.txt', (s) => runner.handle(s), { is: () => undefined }, { rewrite: false });
      runs.push({ outputs, log });
    } finally {
      await runner.close();
    }
  }
  t.true(runs[0]!.log.length > 100, `a real trace (${runs[0]!.log.length} lines)`);
  t.deepEqual(runs[0]!.outputs, runs[1]!.outputs);
  const diff = runs[0]!.log.findIndex((l, i) => l !== runs[1]!.log[i]);
  t.is(diff, -1, diff < 0 ? '' : `first difference at line ${diff}:\n${runs[0]!.log[diff]}\n${runs[1]!.log[diff]}`);
  t.is(runs[0]!.log.length, runs[1]!.log.length);
});

/** A logger that keeps every line (debug included), stamped with the fake time. */
function recorder(out: string[], now: () => number): Logger {
  const line = (level: string) => (o: object | string, msg?: string) =>
    void out.push(`${now()} ${level} ${typeof o === 'string' ? o : `${msg ?? ''} ${JSON.stringify(o)}`}`);
  const l: Logger = { debug: line('D'), info: line('I'), warn: line('W'), error: line('E'), child: (b) => childOf(l, b) };
  return l;
}

function childOf(parent: Logger, bindings: Record<string, unknown>): Logger {
  const wrap = (f: Logger['info']) => (o: object | string, msg?: string) => (typeof o === 'string' ? f({ ...bindings }, o) : f({ ...bindings, ...o }, msg));
  return { debug: wrap(parent.debug), info: wrap(parent.info), warn: wrap(parent.warn), error: wrap(parent.error), child: (b) => childOf(parent, { ...bindings, ...b }) };
}
