/**
 * Go's text/template, as Docker users write it after `--format` (Go `text/template` semantics;
 * the functions of docker/cli `templates/templates.go`):
 *
 * - text and actions `{{ … }}`, with `{{-` / `-}}` trimming the white space next to them, and
 *   comments `{{/* … *\/}}`;
 * - pipelines `a | b | c` (a command's value is passed as the last argument of the next), field
 *   chains `.A.B`, `$`, `$var.A`, literals ("strings", `raw strings`, 'c', numbers, true, false,
 *   nil), parenthesized pipelines;
 * - `if`/`else if`/`else`, `range` (over lists, maps in key order, integers; `$i, $v :=`; `else`;
 *   `break`, `continue`), `with`/`else with`/`else`, variables `$x := …` and `$x = …` (scoped
 *   like Go's), `define`/`template`/`block`;
 * - Go's functions (and, or, not, len, index, slice, print, printf, println, eq, ne, lt, le, gt,
 *   ge, html, js, urlquery) and Docker's (json, join, split, lower, upper, title, truncate, pad).
 *
 * Values are JavaScript values (objects from JSON). A missing field prints `<no value>` as Go's
 * map lookup does; truthiness is Go's (false, 0, "", nil, empty list or map are false).
 * Errors are one-line `TemplateError`s naming the position and the fix.
 */

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

// ---- lexer -----------------------------------------------------------------------------------

type Tok =
  | { k: 'text'; v: string }
  | { k: 'action'; v: string; pos: number };

/** Splits `src` into text and action sources, applying the trim markers. */
function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ k: 'text', v: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let j = open + 2;
    const trimLeft = src[j] === '-' && /\s/.test(src[j + 1] ?? '');
    if (trimLeft) {
      text = text.replace(/\s+$/, '');
      j += 1;
    }
    if (text) out.push({ k: 'text', v: text });
    // Find the closing }} outside string literals.
    let close = -1;
    let q: string | undefined;
    for (let x = j; x < src.length - 1; x++) {
      const c = src[x]!;
      if (q) {
        if (c === '\\' && q !== '`') x++;
        else if (c === q) q = undefined;
        continue;
      }
      if (c === '"' || c === '`' || c === "'") q = c;
      else if (c === '}' && src[x + 1] === '}') {
        close = x;
        break;
      }
    }
    if (close < 0) throw new TemplateError(`template: unclosed action starting at offset ${open}; close it with }}`);
    let body = src.slice(j, close);
    let next = close + 2;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      const m = /^\s*/.exec(src.slice(next))!;
      next += m[0].length;
    }
    out.push({ k: 'action', v: body.trim(), pos: open });
    i = next;
  }
  return out;
}

type Word =
  | { t: 'field'; v: string[] } // .A.B (empty = dot)
  | { t: 'var'; v: string; fields: string[] } // $x.A
  | { t: 'ident'; v: string }
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'nil' }
  | { t: 'pipe' }
  | { t: 'lparen' }
  | { t: 'rparen' }
  | { t: 'assign'; decl: boolean }
  | { t: 'comma' };

function words(src: string): Word[] {
  const out: Word[] = [];
  let i = 0;
  const fieldChain = (start: number): [string[], number] => {
    const parts: string[] = [];
    let j = start;
    while (src[j] === '.') {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(j + 1));
      if (!m) {
        if (parts.length === 0) return [[], j + 1]; // bare dot
        break;
      }
      parts.push(m[0]);
      j += 1 + m[0].length;
    }
    return [parts, j];
  };
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '|') (out.push({ t: 'pipe' }), i++);
    else if (c === '(') (out.push({ t: 'lparen' }), i++);
    else if (c === ')') {
      out.push({ t: 'rparen' });
      i++;
      if (src[i] === '.') {
        const [f, j] = fieldChain(i);
        // (pipeline).Field: represented as a field on the previous value
        out.push({ t: 'field', v: ['\u0000chain', ...f] });
        i = j;
      }
    } else if (c === ',') (out.push({ t: 'comma' }), i++);
    else if (c === ':' && src[i + 1] === '=') (out.push({ t: 'assign', decl: true }), (i += 2));
    else if (c === '=') (out.push({ t: 'assign', decl: false }), i++);
    else if (c === '.') {
      const [f, j] = fieldChain(i);
      out.push({ t: 'field', v: f });
      i = j;
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*/.exec(src.slice(i))!;
      i += m[0].length;
      const [f, j] = src[i] === '.' ? fieldChain(i) : [[], i];
      out.push({ t: 'var', v: m[0], fields: f });
      i = j;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < src.length && src[j] !== '"'; j++) {
        if (src[j] === '\\') {
          const e = src[++j]!;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === '0' ? '\0' : e;
        } else s += src[j];
      }
      if (j >= src.length) throw new TemplateError(`template: unterminated string in {{${src}}}`);
      out.push({ t: 'str', v: s });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError(`template: unterminated raw string in {{${src}}}`);
      out.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
    } else if (c === "'") {
      const m = /^'(\\.|[^'])'/.exec(src.slice(i));
      if (!m) throw new TemplateError(`template: bad character constant in {{${src}}}`);
      const ch = m[1]!.length === 2 ? ({ n: '\n', t: '\t' } as Record<string, string>)[m[1]![1]!] ?? m[1]![1]! : m[1]!;
      out.push({ t: 'num', v: ch.codePointAt(0)! });
      i += m[0].length;
    } else if (/[-+0-9]/.test(c)) {
      const m = /^[-+]?(0x[0-9a-fA-F]+|\d+(\.\d+)?([eE][-+]?\d+)?)/.exec(src.slice(i));
      if (!m) throw new TemplateError(`template: bad number in {{${src}}}`);
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
      if (!m) throw new TemplateError(`template: unexpected ${JSON.stringify(c)} in {{${src}}}`);
      const v = m[0];
      out.push(v === 'true' || v === 'false' ? { t: 'bool', v: v === 'true' } : v === 'nil' ? { t: 'nil' } : { t: 'ident', v });
      i += v.length;
    }
  }
  return out;
}

// ---- parser ----------------------------------------------------------------------------------

type Arg =
  | { a: 'field'; path: string[] }
  | { a: 'var'; name: string; path: string[] }
  | { a: 'lit'; v: unknown }
  | { a: 'fn'; name: string }
  | { a: 'pipe'; p: Pipeline; path: string[] };

interface Command {
  args: Arg[];
}
interface Pipeline {
  decl: string[];
  assign: boolean;
  cmds: Command[];
}

type NodeT =
  | { n: 'text'; v: string }
  | { n: 'action'; p: Pipeline }
  | { n: 'if'; p: Pipeline; then: NodeT[]; else: NodeT[] }
  | { n: 'with'; p: Pipeline; then: NodeT[]; else: NodeT[] }
  | { n: 'range'; p: Pipeline; body: NodeT[]; else: NodeT[] }
  | { n: 'template'; name: string; p?: Pipeline }
  | { n: 'break' }
  | { n: 'continue' };

function parsePipeline(ws: Word[], src: string): Pipeline {
  let i = 0;
  const decl: string[] = [];
  let assign = false;
  // $x := / $x, $y := / $x =
  const ai = ws.findIndex((w) => w.t === 'assign');
  if (ai > 0 && ws.slice(0, ai).every((w) => w.t === 'var' || w.t === 'comma')) {
    for (const w of ws.slice(0, ai)) if (w.t === 'var') decl.push(w.v);
    assign = !(ws[ai] as { decl: boolean }).decl;
    i = ai + 1;
  }
  const cmds: Command[] = [];
  let cur: Arg[] = [];
  const argOf = (k: number): [Arg, number] => {
    const w = ws[k]!;
    switch (w.t) {
      case 'field':
        return [{ a: 'field', path: w.v }, k + 1];
      case 'var':
        return [{ a: 'var', name: w.v, path: w.fields }, k + 1];
      case 'str':
      case 'num':
      case 'bool':
        return [{ a: 'lit', v: w.v }, k + 1];
      case 'nil':
        return [{ a: 'lit', v: null }, k + 1];
      case 'ident':
        return [{ a: 'fn', name: w.v }, k + 1];
      case 'lparen': {
        let depth = 1;
        let j = k + 1;
        for (; j < ws.length && depth > 0; j++) {
          if (ws[j]!.t === 'lparen') depth++;
          else if (ws[j]!.t === 'rparen') depth--;
        }
        if (depth !== 0) throw new TemplateError(`template: unclosed ( in {{${src}}}`);
        const inner = parsePipeline(ws.slice(k + 1, j - 1), src);
        let path: string[] = [];
        const after = ws[j];
        if (after?.t === 'field' && after.v[0] === '\u0000chain') {
          path = after.v.slice(1);
          j++;
        }
        return [{ a: 'pipe', p: inner, path }, j];
      }
      default:
        throw new TemplateError(`template: unexpected ${w.t} in {{${src}}}`);
    }
  };
  while (i < ws.length) {
    if (ws[i]!.t === 'pipe') {
      if (cur.length === 0) throw new TemplateError(`template: missing command before | in {{${src}}}`);
      cmds.push({ args: cur });
      cur = [];
      i++;
      continue;
    }
    const [a, j] = argOf(i);
    cur.push(a);
    i = j;
  }
  if (cur.length) cmds.push({ args: cur });
  if (cmds.length === 0) throw new TemplateError(`template: missing value in {{${src}}}`);
  return { decl, assign, cmds };
}

interface Parsed {
  root: NodeT[];
  defs: Map<string, NodeT[]>;
}

function parse(src: string): Parsed {
  const toks = lex(src);
  const defs = new Map<string, NodeT[]>();
  let i = 0;
  // Parses nodes until one of `stops` (an action keyword); returns the nodes and the stop action.
  const list = (stops: string[]): { nodes: NodeT[]; stop?: string; rest?: string } => {
    const nodes: NodeT[] = [];
    while (i < toks.length) {
      const t = toks[i++]!;
      if (t.k === 'text') {
        nodes.push({ n: 'text', v: t.v });
        continue;
      }
      const a = t.v;
      if (a.startsWith('/*')) {
        if (!a.endsWith('*/')) throw new TemplateError('template: unclosed comment; end it with */');
        continue;
      }
      const kw = /^(if|else|end|range|with|define|template|block|break|continue)\b\s*/.exec(a);
      const word = kw?.[1];
      const rest = kw ? a.slice(kw[0].length) : a;
      if (word && stops.includes(word)) return { nodes, stop: word, rest };
      switch (word) {
        case 'if':
        case 'with':
        case 'range':
          nodes.push(control(word, rest, a));
          break;
        case 'define':
        case 'block': {
          const m = /^"([^"]*)"\s*(.*)$/.exec(rest);
          if (!m) throw new TemplateError(`template: {{${word}}} needs a quoted name`);
          const body = list(['end']);
          if (body.stop !== 'end') throw new TemplateError(`template: {{${word} "${m[1]}"}} has no {{end}}`);
          defs.set(m[1]!, body.nodes);
          if (word === 'block') nodes.push({ n: 'template', name: m[1]!, ...(m[2] ? { p: parsePipeline(words(m[2]), a) } : {}) });
          break;
        }
        case 'template': {
          const m = /^"([^"]*)"\s*(.*)$/.exec(rest);
          if (!m) throw new TemplateError('template: {{template}} needs a quoted name');
          nodes.push({ n: 'template', name: m[1]!, ...(m[2] ? { p: parsePipeline(words(m[2]), a) } : {}) });
          break;
        }
        case 'break':
          nodes.push({ n: 'break' });
          break;
        case 'continue':
          nodes.push({ n: 'continue' });
          break;
        case 'else':
        case 'end':
          throw new TemplateError(`template: unexpected {{${word}}}`);
        default:
          nodes.push({ n: 'action', p: parsePipeline(words(a), a) });
      }
    }
    return { nodes };
  };
  /**
   * An if/with/range whose opening action was just read; consumes through its {{end}}.
   * `{{else if …}}` / `{{else with …}}` continue the chain: a nested node sharing the same end.
   */
  function control(word: 'if' | 'with' | 'range', rest: string, src: string): NodeT {
    const p = parsePipeline(words(rest), src);
    const body = list(['else', 'end']);
    let els: NodeT[] = [];
    if (body.stop === 'else') {
      const r = (body.rest ?? '').trim();
      const chained = /^(if|with)\b\s*(.*)$/.exec(r);
      if (chained && chained[1] === word && word !== 'range') els = [control(word, chained[2]!, r)];
      else {
        const e = list(['end']);
        if (e.stop !== 'end') throw new TemplateError(`template: {{${word}}} has no {{end}}`);
        els = e.nodes;
      }
    } else if (body.stop !== 'end') throw new TemplateError(`template: {{${word} ${rest}}} has no {{end}}`);
    return word === 'range' ? { n: 'range', p, body: body.nodes, else: els } : { n: word, p, then: body.nodes, else: els };
  }
  const top = list([]);
  return { root: top.nodes, defs };
}

// ---- execution -------------------------------------------------------------------------------

type Fn = (...args: unknown[]) => unknown;

/** Go's truthiness. */
export function truth(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** How Go's fmt prints a value with %v (maps as map[k:v], lists as [a b]). */
export function show(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `map[${keys.map((k) => `${k}:${show((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function printf(format: string, ...args: unknown[]): string {
  let ai = 0;
  return format.replace(/%([-+# 0]*)(\d*)(?:\.(\d+))?([vsdqfxXtT%])/g, (_m, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    const a = args[ai++];
    let s: string;
    switch (verb) {
      case 'd': s = String(Math.trunc(Number(a))); break;
      case 'f': s = Number(a).toFixed(prec === undefined ? 6 : Number(prec)); break;
      case 'q': s = JSON.stringify(String(a)); break;
      case 'x': s = typeof a === 'number' ? a.toString(16) : Buffer.from(String(a)).toString('hex'); break;
      case 'X': s = (typeof a === 'number' ? a.toString(16) : Buffer.from(String(a)).toString('hex')).toUpperCase(); break;
      case 't': s = String(!!a); break;
      case 'T': s = a === null ? '<nil>' : Array.isArray(a) ? '[]interface {}' : typeof a === 'object' ? 'map[string]interface {}' : typeof a === 'number' ? (Number.isInteger(a) ? 'int' : 'float64') : typeof a === 'boolean' ? 'bool' : 'string'; break;
      default: s = show(a);
    }
    if (verb === 's' && prec !== undefined) s = s.slice(0, Number(prec));
    const w = Number(width || 0);
    if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : s.padStart(w, flags.includes('0') && verb !== 's' ? '0' : ' ');
    return s;
  });
}

function cmp(a: unknown, b: unknown, op: string): boolean {
  if (typeof a !== typeof b && !(a == null && b == null)) throw new TemplateError(`template: ${op}: incompatible types for comparison (${typeof a} and ${typeof b})`);
  switch (op) {
    case 'lt': return (a as number) < (b as number);
    case 'le': return (a as number) <= (b as number);
    case 'gt': return (a as number) > (b as number);
    default: return (a as number) >= (b as number);
  }
}

const FUNCS: Record<string, Fn> = {
  // Go's builtins (and/or are handled lazily in callFn).
  not: (a) => !truth(a),
  len: (a) => {
    if (typeof a === 'string' || Array.isArray(a)) return a.length;
    if (a && typeof a === 'object') return Object.keys(a).length;
    throw new TemplateError(`template: len of ${show(a)}: it is not a list, map or string`);
  },
  index: (a, ...keys) => {
    let v = a;
    for (const k of keys) {
      if (v === null || v === undefined) throw new TemplateError(`template: index of untyped nil`);
      if (Array.isArray(v)) {
        const i = Number(k);
        if (!Number.isInteger(i) || i < 0 || i >= v.length) throw new TemplateError(`template: index out of range: ${String(k)}`);
        v = v[i];
      } else v = (v as Record<string, unknown>)[String(k)];
    }
    return v;
  },
  slice: (a, ...idx) => {
    const [i = 0, j] = idx.map(Number);
    if (typeof a === 'string' || Array.isArray(a)) return a.slice(i, j);
    throw new TemplateError(`template: slice of ${show(a)}`);
  },
  print: (...a) => a.map((x, i) => (i > 0 && typeof x !== 'string' && typeof a[i - 1] !== 'string' ? ' ' : '') + show(x)).join(''),
  println: (...a) => `${a.map(show).join(' ')}\n`,
  printf: (f, ...a) => printf(String(f), ...a),
  eq: (a, ...bs) => bs.some((b) => a === b || (a == null && b == null)),
  ne: (a, b) => a !== b,
  lt: (a, b) => cmp(a, b, 'lt'),
  le: (a, b) => cmp(a, b, 'le'),
  gt: (a, b) => cmp(a, b, 'gt'),
  ge: (a, b) => cmp(a, b, 'ge'),
  html: (...a) => a.map(show).join('').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c]!),
  js: (...a) => a.map(show).join('').replace(/[\\'"<>&=]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`),
  urlquery: (...a) => encodeURIComponent(a.map(show).join('')),
  // docker/cli templates/templates.go
  json: (a) => JSON.stringify(a === undefined ? null : a),
  split: (s, sep) => String(s).split(String(sep)),
  join: (a, sep) => (a == null ? '' : Array.isArray(a) ? a.map((x) => (typeof x === 'string' ? x : show(x))).join(String(sep)) : show(a)),
  title: (s) => String(s).replace(/(^|[^A-Za-z0-9])([a-z])/g, (_m, p: string, c: string) => p + c.toUpperCase()),
  lower: (s) => String(s).toLowerCase(),
  upper: (s) => String(s).toUpperCase(),
  pad: (s, pre, post) => (String(s) === '' ? '' : ' '.repeat(Number(pre)) + String(s) + ' '.repeat(Number(post))),
  truncate: (s, n) => (String(s).length < Number(n) ? String(s) : String(s).slice(0, Number(n))),
};

/** Functions for a `table` header row: the header text passes through them unchanged (docker/cli HeaderFunctions). */
const HEADER_FUNCS: Record<string, Fn> = {
  json: (v) => v, split: (v) => v, join: (v) => v, title: (v) => v, lower: (v) => v, upper: (v) => v, truncate: (v) => v,
};

class Break {}
class Continue {}

interface Scope {
  vars: Map<string, unknown>[];
}

function lookupField(v: unknown, path: string[], what: string): unknown {
  let cur = v;
  for (const f of path) {
    if (cur === null || cur === undefined) return undefined;
    if (typeof cur !== 'object') throw new TemplateError(`template: can't evaluate field ${f} in type ${typeof cur} (${what})`);
    const o = cur as Record<string, unknown>;
    if (f in o) cur = o[f];
    else {
      // Objects may be in camelCase where Docker's are PascalCase: `.Spec.Name` also finds `spec.name`.
      const alt = f[0]!.toLowerCase() + f.slice(1);
      cur = alt in o ? o[alt] : Object.keys(o).find((k) => k.toLowerCase() === f.toLowerCase()) !== undefined
        ? o[Object.keys(o).find((k) => k.toLowerCase() === f.toLowerCase())!] : undefined;
    }
  }
  return cur;
}

function evalArg(a: Arg, dot: unknown, sc: Scope, funcs: Record<string, Fn>, src: string): unknown {
  switch (a.a) {
    case 'field':
      return lookupField(dot, a.path, src);
    case 'var': {
      for (let i = sc.vars.length - 1; i >= 0; i--) {
        const m = sc.vars[i]!;
        if (m.has(a.name)) return lookupField(m.get(a.name), a.path, src);
      }
      throw new TemplateError(`template: undefined variable ${a.name} in {{${src}}}`);
    }
    case 'lit':
      return a.v;
    case 'pipe':
      return lookupField(evalPipeline(a.p, dot, sc, funcs, src), a.path, src);
    case 'fn':
      return callFn(a.name, [], dot, sc, funcs, src);
  }
}

function callFn(name: string, args: Arg[], dot: unknown, sc: Scope, funcs: Record<string, Fn>, src: string, piped?: { v: unknown }): unknown {
  if (name === 'and' || name === 'or') {
    const all = [...args.map((x) => () => evalArg(x, dot, sc, funcs, src)), ...(piped ? [() => piped.v] : [])];
    let v: unknown;
    for (const f of all) {
      v = f();
      if (name === 'and' ? !truth(v) : truth(v)) return v;
    }
    return v;
  }
  const f = funcs[name];
  if (!f) throw new TemplateError(`template: function ${JSON.stringify(name)} not defined; available: ${Object.keys(funcs).concat('and', 'or').sort().join(', ')}`);
  const vals = args.map((x) => evalArg(x, dot, sc, funcs, src));
  if (piped) vals.push(piped.v);
  return f(...vals);
}

function evalPipeline(p: Pipeline, dot: unknown, sc: Scope, funcs: Record<string, Fn>, src: string): unknown {
  let piped: { v: unknown } | undefined;
  for (const c of p.cmds) {
    const [first, ...rest] = c.args;
    let v: unknown;
    if (first!.a === 'fn') v = callFn(first!.name, rest, dot, sc, funcs, src, piped);
    else {
      if (rest.length || piped) throw new TemplateError(`template: can't give arguments to a non-function in {{${src}}}`);
      v = evalArg(first!, dot, sc, funcs, src);
    }
    piped = { v };
  }
  const v = piped!.v;
  if (p.decl.length) {
    if (p.assign) {
      for (let i = sc.vars.length - 1; i >= 0; i--) {
        if (sc.vars[i]!.has(p.decl[0]!)) {
          sc.vars[i]!.set(p.decl[0]!, v);
          return undefined;
        }
      }
      throw new TemplateError(`template: undefined variable ${p.decl[0]} in {{${src}}}`);
    }
    sc.vars[sc.vars.length - 1]!.set(p.decl[0]!, v);
    return undefined;
  }
  return v;
}

function exec(nodes: NodeT[], dot: unknown, sc: Scope, funcs: Record<string, Fn>, defs: Map<string, NodeT[]>, out: string[], depth = 0): void {
  if (depth > 100) throw new TemplateError('template: exceeded maximum template depth (100)');
  for (const n of nodes) {
    switch (n.n) {
      case 'text':
        out.push(n.v);
        break;
      case 'action': {
        const v = evalPipeline(n.p, dot, sc, funcs, '');
        if (!n.p.decl.length) out.push(show(v));
        break;
      }
      case 'if':
      case 'with': {
        sc.vars.push(new Map());
        try {
          const v = evalPipeline({ ...n.p, decl: [] }, dot, sc, funcs, '');
          if (n.p.decl.length) sc.vars[sc.vars.length - 1]!.set(n.p.decl[0]!, v);
          if (truth(v)) exec(n.then, n.n === 'with' ? v : dot, sc, funcs, defs, out, depth + 1);
          else exec(n.else, dot, sc, funcs, defs, out, depth + 1);
        } finally {
          sc.vars.pop();
        }
        break;
      }
      case 'range': {
        const v = evalPipeline({ ...n.p, decl: [] }, dot, sc, funcs, '');
        let items: [unknown, unknown][];
        if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
        else if (typeof v === 'number') items = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
        else if (v && typeof v === 'object') items = Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]);
        else if (v === null || v === undefined) items = [];
        else throw new TemplateError(`template: range can't iterate over ${show(v)}`);
        if (items.length === 0) {
          exec(n.else, dot, sc, funcs, defs, out, depth + 1);
          break;
        }
        for (const [k, x] of items) {
          const m = new Map<string, unknown>();
          if (n.p.decl.length === 1) m.set(n.p.decl[0]!, x);
          else if (n.p.decl.length === 2) (m.set(n.p.decl[0]!, k), m.set(n.p.decl[1]!, x));
          sc.vars.push(m);
          try {
            exec(n.body, x, sc, funcs, defs, out, depth + 1);
          } catch (e) {
            if (e instanceof Break) break;
            if (!(e instanceof Continue)) throw e;
          } finally {
            sc.vars.pop();
          }
        }
        break;
      }
      case 'template': {
        const body = defs.get(n.name);
        if (!body) throw new TemplateError(`template: no such template ${JSON.stringify(n.name)}`);
        const v = n.p ? evalPipeline(n.p, dot, sc, funcs, '') : undefined;
        exec(body, v, { vars: [new Map([['$', v]])] }, funcs, defs, out, depth + 1);
        break;
      }
      case 'break':
        throw new Break();
      case 'continue':
        throw new Continue();
    }
  }
}

const cache = new Map<string, Parsed>();

/**
 * Renders Go template `src` with `data` as dot. `header` uses Docker's header functions (a `table`
 * header passes column titles through json/upper/… unchanged).
 * @throws TemplateError (one line) for a syntax error or a failed evaluation.
 */
export function executeTemplate(src: string, data: unknown, opts: { header?: boolean } = {}): string {
  let parsed = cache.get(src);
  if (!parsed) {
    parsed = parse(src);
    cache.set(src, parsed);
  }
  const out: string[] = [];
  const funcs = opts.header ? { ...FUNCS, ...HEADER_FUNCS } : FUNCS;
  try {
    exec(parsed.root, data, { vars: [new Map([['$', data]])] }, funcs, parsed.defs, out);
  } catch (e) {
    if (e instanceof Break || e instanceof Continue) throw new TemplateError('template: break or continue outside range');
    throw e;
  }
  return out.join('');
}
