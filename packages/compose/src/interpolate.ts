/**
 * Variable interpolation (Compose Specification, "Interpolation"): in every string VALUE (never in
 * keys) `${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`,
 * `${VAR:+replacement}`, `${VAR+replacement}` (nestable), and `$$` for a literal `$`. A `$` not
 * followed by a name or a brace is kept as it is. An unset variable without a default becomes the
 * empty string, with a warning (Docker's). Applied per file, before the merge.
 */
import { ComposeError, joinPath, posOf, type Origins } from './source.js';

/** Variables: name → value (undefined = unset). */
export type Env = Readonly<Record<string, string | undefined>>;

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;

interface Ctx {
  env: Env;
  path: string;
  warn(msg: string): void;
  unset: Set<string>;
}

/**
 * Interpolates one string. @throws Error (caught and positioned by {@link interpolateTree}) for a
 * required variable that is unset/empty, or a brace that is never closed.
 */
export function interpolateString(s: string, env: Env, onUnset: (name: string) => void = () => {}): string {
  const ctx: Ctx = { env, path: '', warn: () => {}, unset: new Set() };
  const out = expand(s, 0, ctx, false);
  for (const n of ctx.unset) onUnset(n);
  return out.text;
}

/** Expands from `i`; inside a braced default (`inner`), stops at the closing `}`. */
function expand(s: string, i: number, ctx: Ctx, inner: boolean): { text: string; end: number } {
  let text = '';
  while (i < s.length) {
    const c = s[i]!;
    if (inner && c === '}') return { text, end: i };
    if (c !== '$') {
      text += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      text += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const r = braced(s, i + 2, ctx);
      text += r.text;
      i = r.end;
      continue;
    }
    const m = NAME.exec(s.slice(i + 1));
    if (!m) {
      text += '$';
      i++;
      continue;
    }
    text += lookup(m[0], ctx);
    i += 1 + m[0].length;
  }
  if (inner) throw new Error(`a "\${" is never closed by "}" in ${JSON.stringify(s)}`);
  return { text, end: i };
}

function lookup(name: string, ctx: Ctx): string {
  const v = ctx.env[name];
  if (v === undefined) {
    ctx.unset.add(name);
    return '';
  }
  return v;
}

/** `${…}` starting after the brace at `i`; returns the value and the index after the `}`. */
function braced(s: string, i: number, ctx: Ctx): { text: string; end: number } {
  const m = NAME.exec(s.slice(i));
  if (!m) throw new Error(`invalid interpolation format in ${JSON.stringify(s)}: "\${" must be followed by a variable name`);
  const name = m[0];
  let j = i + name.length;
  if (s[j] === '}') return { text: lookup(name, ctx), end: j + 1 };
  if (j >= s.length) throw new Error(`a "\${" is never closed by "}" in ${JSON.stringify(s)}`);
  const colon = s[j] === ':';
  if (colon) j++;
  const op = s[j];
  if (op !== '-' && op !== '?' && op !== '+') {
    throw new Error(`invalid interpolation format in ${JSON.stringify(s)}: unsupported modifier after \${${name}; use :- - :? ? :+ or +`);
  }
  const arg = expand(s, j + 1, ctx, true);
  const end = arg.end + 1;
  const v = ctx.env[name];
  const missing = v === undefined || (colon && v === '');
  switch (op) {
    case '-':
      return { text: missing ? arg.text : v!, end };
    case '+':
      return { text: missing ? '' : arg.text, end };
    default: {
      if (!missing) return { text: v!, end };
      const why = arg.text || `variable ${name} is ${v === undefined ? 'not set' : 'empty'}`;
      throw new RequiredVariableError(name, why);
    }
  }
}

/** `${VAR:?message}` / `${VAR?message}` with VAR missing. */
export class RequiredVariableError extends Error {
  constructor(readonly variable: string, readonly reason: string) {
    super(`required variable ${variable} is missing a value: ${reason}`);
  }
}

/**
 * Interpolates every string value of `data` (a parsed compose file) in place of a copy.
 * @param warn receives Docker's warning for each unset variable (once per name).
 * @throws ComposeError at the value's position, naming its key path.
 */
export function interpolateTree(data: unknown, env: Env, origins: Origins, warn: (msg: string) => void): unknown {
  const warned = new Set<string>();
  const walk = (v: unknown, path: (string | number)[]): unknown => {
    if (typeof v === 'string') {
      try {
        return interpolateString(v, env, (name) => {
          if (warned.has(name)) return;
          warned.add(name);
          warn(`The "${name}" variable is not set. Defaulting to a blank string.`);
        });
      } catch (e) {
        const p = joinPath(path);
        throw new ComposeError((e as Error).message, p, posOf(origins, p));
      }
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, [...path, k]);
      return out;
    }
    return v;
  };
  return walk(data, []);
}
