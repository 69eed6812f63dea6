/**
 * The one parser of Shoal's data-driven test files (after cockroachdb/datadriven, as etcd-io/raft's
 * `testdata/*.txt` use it): used by the Raft core's interaction scripts (`raft/testdata`), the
 * scheduler's scenario traces (`packages/scheduler/testdata`) and the cluster harness's scenarios
 * (`packages/testkit/testdata`).
 *
 * A file is a sequence of stanzas:
 *
 *     # comments and blank lines (kept verbatim when the file is rewritten)
 *     command arg arg key=value key=value
 *     ----
 *     expected output, up to the next blank line
 *
 * Output that itself holds blank lines is written between two `----` lines and ends with two:
 *
 *     command
 *     ----
 *     ----
 *     first paragraph
 *
 *     second paragraph
 *     ----
 *     ----
 *
 * `SHOAL_REWRITE=1` (the one rewrite flag of every data-driven test) makes {@link runDataDriven}
 * write the outputs it got into the file instead of comparing them: review the diff before
 * committing it.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** One command and what it is expected to print. */
export interface Stanza {
  /** Comment and blank lines before the command (kept when rewriting). */
  preamble: string[];
  /** 1-based line of the command in its file. */
  line: number;
  /** The command line as written. */
  command: string;
  /** Its first word. */
  cmd: string;
  /** Its arguments: see {@link parseArgs}. */
  args: Args;
  /** The expected output (lines joined with `\n`, no trailing newline; '' for none). */
  expected: string;
}

/** A command's arguments: positional words, and `key=value` pairs (a key may repeat). */
export interface Args {
  pos: string[];
  kv: Map<string, string[]>;
  /** The last value of `key`, if given. */
  get(key: string): string | undefined;
  /** Every value of `key`, in order. */
  all(key: string): string[];
  /** `key` as an integer, or `def`. @throws Error naming the key when it is not an integer. */
  int(key: string, def?: number): number | undefined;
  /** `key` as a boolean (`true`/`false`), or `def`. */
  bool(key: string, def?: boolean): boolean | undefined;
}

/** True when the test run should rewrite expected outputs (`SHOAL_REWRITE=1`). */
export const REWRITE = process.env['SHOAL_REWRITE'] === '1';

/** Splits words into positional ones and `key=value` pairs (`key=` with an empty value counts). */
export function parseArgs(words: readonly string[]): Args {
  const pos: string[] = [];
  const kv = new Map<string, string[]>();
  for (const w of words) {
    const i = w.indexOf('=');
    if (i > 0) {
      const k = w.slice(0, i);
      kv.set(k, [...(kv.get(k) ?? []), w.slice(i + 1)]);
    } else pos.push(w);
  }
  return {
    pos,
    kv,
    get: (k) => kv.get(k)?.at(-1),
    all: (k) => kv.get(k) ?? [],
    int(k, def) {
      const v = kv.get(k)?.at(-1);
      if (v === undefined) return def;
      const n = Number(v);
      if (!Number.isInteger(n)) throw new Error(`${k}=${v} is not an integer`);
      return n;
    },
    bool(k, def) {
      const v = kv.get(k)?.at(-1);
      if (v === undefined) return def;
      if (v !== 'true' && v !== 'false') throw new Error(`${k}=${v} is not true or false`);
      return v === 'true';
    },
  };
}

/**
 * Parses a data-driven file.
 * @throws Error naming the file and line when a command is not followed by `----`.
 */
export function parseScript(text: string, file = 'script'): { stanzas: Stanza[]; trailer: string[] } {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const stanzas: Stanza[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.trim() === '' || l.startsWith('#')) {
      preamble.push(l);
      i++;
      continue;
    }
    const command = l;
    const line = i + 1;
    i++;
    if (lines[i] !== '----') throw new Error(`${file}:${line}: expected ---- after "${command}"`);
    i++;
    const out: string[] = [];
    if (lines[i] === '----') {
      // Block form: up to the closing `----` `----`.
      i++;
      while (i < lines.length && !(lines[i] === '----' && lines[i + 1] === '----')) out.push(lines[i++]!);
      if (i >= lines.length) throw new Error(`${file}:${line}: output of "${command}" opened with ---- ---- is never closed`);
      i += 2;
    } else {
      while (i < lines.length && lines[i] !== '') out.push(lines[i++]!);
    }
    const words = command.trim().split(/\s+/);
    stanzas.push({ preamble, line, command, cmd: words[0]!, args: parseArgs(words.slice(1)), expected: out.join('\n') });
    preamble = [];
  }
  return { stanzas, trailer: preamble };
}

/**
 * Writes a file back with `outputs` (one per stanza) as the expected outputs. Comments and blank
 * lines are kept; a blank line separates each output from the next stanza.
 */
export function formatScript(stanzas: readonly Stanza[], trailer: readonly string[], outputs: readonly string[]): string {
  const parts: string[] = [];
  stanzas.forEach((s, k) => {
    const pre = [...s.preamble];
    if (k > 0 && pre[0]?.trim() !== '') pre.unshift('');
    const out = outputs[k] ?? '';
    parts.push(...pre, s.command, '----');
    if (out.split('\n').some((x) => x.trim() === '') && out !== '') parts.push('----', out, '----', '----');
    else if (out !== '') parts.push(out);
  });
  parts.push(...trailer);
  let text = parts.join('\n');
  if (!text.endsWith('\n')) text += '\n';
  return text;
}

/** The assertion a test framework gives (ava's `t` fits). */
export interface DataDrivenAssert {
  is(actual: string, expected: string, message?: string): void;
}

/**
 * Runs every stanza of `file` through `run` in order and compares each output with the expected
 * one — or, under `SHOAL_REWRITE=1`, writes the outputs into the file. Trailing whitespace of an
 * output is dropped. A thrown error is the output `error: <message>`.
 * @returns the outputs.
 */
export async function runDataDriven(file: string, run: (s: Stanza) => string | Promise<string>, t: DataDrivenAssert, opts: { rewrite?: boolean } = {}): Promise<string[]> {
  const rewrite = opts.rewrite ?? REWRITE;
  const text = readFileSync(file, 'utf8');
  const { stanzas, trailer } = parseScript(text, file);
  const outputs: string[] = [];
  for (const s of stanzas) {
    let out: string;
    try {
      out = await run(s);
    } catch (e) {
      out = `error: ${e instanceof Error ? e.message : String(e)}`;
    }
    out = out.replace(/\s+$/, '');
    outputs.push(out);
    if (!rewrite) t.is(out, s.expected, `${file}:${s.line}: output of "${s.command}" differs (SHOAL_REWRITE=1 rewrites the file)`);
  }
  if (rewrite) writeFileSync(file, formatScript(stanzas, trailer, outputs));
  return outputs;
}
