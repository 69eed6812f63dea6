/**
 * A subset of Go's `text/template`, for templated secrets and configs (`--template-driver golang`,
 * SwarmKit `template/`): enough for what Docker documents and configuration files use.
 *
 * - text, and actions `{{ … }}` with `{{-` / `-}}` trimming the white space next to them;
 * - comments `{{/* … *\/}}`;
 * - values: fields `.A.B` (of the context; a missing field is an error, as SwarmKit's
 *   `missingkey=error`), `.` itself, string literals `"…"` (Go escapes `\n \t \" \\`) and `` `…` ``,
 *   numbers, `true`/`false`;
 * - calls: `name arg…` with the functions given (Docker's `env`, `secret`, `config`, `join`) and
 *   the builtins `index`, `print`, `printf` (`%s %d %v %q %%`), `len`, `eq`, `ne`, `not`, `and`, `or`;
 *   pipelines `a | f b` (the value is passed as the last argument);
 * - `{{ if X }}…{{ else if Y }}…{{ else }}…{{ end }}` (Go's truthiness: false, 0, "", empty
 *   lists and maps, nil are false).
 *
 * Anything else (`range`, `with`, `define`, variables) is refused with a one-line error naming it.
 */

export type TemplateFunc = (...args: unknown[]) => unknown;

/** A template that could not be parsed or run; the message says where and why. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(`template: ${message}`);
    this.name = 'TemplateError';
  }
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Cmd[]; src: string }
  | { kind: 'if'; branches: { cond: Cmd[]; body: Node[] }[]; otherwise: Node[] };

type Arg = { kind: 'field'; path: string[] } | { kind: 'lit'; value: unknown } | { kind: 'call'; name: string; args: Arg[] };
/** One command of a pipeline: a function call or a single value. */
type Cmd = { name?: string; args: Arg[] };

type Token = { kind: 'text'; text: string } | { kind: 'action'; src: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) out.push({ kind: 'text', text });
      break;
    }
    const close = src.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(`unclosed action starting at ${JSON.stringify(src.slice(open, open + 20))}`);
    let inner = src.slice(open + 2, close);
    if (inner.startsWith('- ') || inner === '-' || /^-\s/.test(inner)) {
      text = text.replace(/\s+$/, '');
      inner = inner.slice(1);
    }
    if (/\s-$/.test(inner)) {
      trimNext = true;
      inner = inner.slice(0, -1);
    }
    if (text) out.push({ kind: 'text', text });
    out.push({ kind: 'action', src: inner.trim() });
    i = close + 2;
  }
  return out;
}

/** Splits an action into words: string literals, raw strings, parenthesised groups kept whole. */
function words(src: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '|') {
      out.push('|');
      i++;
      continue;
    }
    let j = i;
    if (c === '"') {
      j++;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) throw new TemplateError(`unterminated string in {{${src}}}`);
      j++;
    } else if (c === '`') {
      j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError(`unterminated raw string in {{${src}}}`);
      j++;
    } else if (c === '(') {
      let depth = 0;
      for (; j < src.length; j++) {
        if (src[j] === '(') depth++;
        else if (src[j] === ')' && --depth === 0) break;
      }
      if (j >= src.length) throw new TemplateError(`unbalanced parenthesis in {{${src}}}`);
      j++;
    } else {
      while (j < src.length && !/[\s|()]/.test(src[j]!)) j++;
    }
    out.push(src.slice(i, j));
    i = j;
  }
  return out;
}

function parseArg(w: string, src: string): Arg {
  if (w.startsWith('"')) {
    try {
      return { kind: 'lit', value: JSON.parse(w) as string };
    } catch {
      throw new TemplateError(`bad string ${w} in {{${src}}}`);
    }
  }
  if (w.startsWith('`')) return { kind: 'lit', value: w.slice(1, -1) };
  if (w.startsWith('(')) {
    const inner = words(w.slice(1, -1));
    const [name, ...rest] = inner;
    if (!name) throw new TemplateError(`empty parentheses in {{${src}}}`);
    if (/^[A-Za-z_]\w*$/.test(name) && !['true', 'false', 'nil'].includes(name)) return { kind: 'call', name, args: rest.map((x) => parseArg(x, src)) };
    if (rest.length) throw new TemplateError(`cannot call ${name} in {{${src}}}`);
    return parseArg(name, src);
  }
  if (w === '.') return { kind: 'field', path: [] };
  if (/^(\.[A-Za-z_]\w*)+$/.test(w)) return { kind: 'field', path: w.slice(1).split('.') };
  if (w === 'true' || w === 'false') return { kind: 'lit', value: w === 'true' };
  if (w === 'nil') return { kind: 'lit', value: undefined };
  if (/^-?\d+(\.\d+)?$/.test(w)) return { kind: 'lit', value: Number(w) };
  if (w.startsWith('$')) throw new TemplateError(`variables are not supported: {{${src}}}`);
  throw new TemplateError(`unexpected ${JSON.stringify(w)} in {{${src}}}`);
}

function parsePipeline(src: string): Cmd[] {
  const ws = words(src);
  if (!ws.length) throw new TemplateError('empty action {{}}');
  const cmds: Cmd[] = [];
  let cur: string[] = [];
  const flush = () => {
    if (!cur.length) throw new TemplateError(`missing command in pipeline {{${src}}}`);
    const [first, ...rest] = cur;
    if (/^[A-Za-z_]\w*$/.test(first!) && !['true', 'false', 'nil'].includes(first!)) cmds.push({ name: first!, args: rest.map((w) => parseArg(w, src)) });
    else {
      if (rest.length) throw new TemplateError(`cannot call ${first} in {{${src}}}`);
      cmds.push({ args: [parseArg(first!, src)] });
    }
    cur = [];
  };
  for (const w of ws) {
    if (w === '|') flush();
    else cur.push(w);
  }
  flush();
  return cmds;
}

const UNSUPPORTED = /^(range|with|define|template|block|break|continue)\b/;

function parse(tokens: Token[]): Node[] {
  let pos = 0;
  const body = (stops: string[]): { nodes: Node[]; stop: string } => {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos++]!;
      if (t.kind === 'text') {
        nodes.push(t);
        continue;
      }
      const src = t.src;
      if (src.startsWith('/*')) {
        if (!src.endsWith('*/')) throw new TemplateError(`unclosed comment {{${src}}}`);
        continue;
      }
      const kw = /^(if|else|end)\b/.exec(src)?.[1];
      if (kw === 'end' || kw === 'else') {
        if (!stops.includes(kw)) throw new TemplateError(`unexpected {{${src}}}`);
        pos--;
        return { nodes, stop: kw };
      }
      if (kw === 'if') {
        const branches: { cond: Cmd[]; body: Node[] }[] = [];
        let cond = parsePipeline(src.slice(2));
        let otherwise: Node[] = [];
        for (;;) {
          const r = body(['else', 'end']);
          branches.push({ cond, body: r.nodes });
          const stopTok = tokens[pos++] as { kind: 'action'; src: string } | undefined;
          if (!stopTok) throw new TemplateError('missing {{end}}');
          if (r.stop === 'end') break;
          const rest = stopTok.src.slice(4).trim();
          if (rest.startsWith('if ')) {
            cond = parsePipeline(rest.slice(3));
            continue;
          }
          if (rest) throw new TemplateError(`unexpected {{${stopTok.src}}}`);
          const e = body(['end']);
          otherwise = e.nodes;
          pos++;
          break;
        }
        nodes.push({ kind: 'if', branches, otherwise });
        continue;
      }
      if (UNSUPPORTED.test(src)) throw new TemplateError(`{{${src}}} is not supported; use fields, functions and if/else/end`);
      nodes.push({ kind: 'action', pipe: parsePipeline(src), src });
    }
    if (stops.length) throw new TemplateError('missing {{end}}');
    return { nodes, stop: '' };
  };
  return body([]).nodes;
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '<no value>';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.keys(v as object).sort().map((k) => `${k}:${show((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  return String(v);
}

function printf(format: unknown, ...args: unknown[]): string {
  let i = 0;
  return String(format).replace(/%[sdvq%]/g, (m) => {
    if (m === '%%') return '%';
    const a = args[i++];
    if (m === '%q') return JSON.stringify(show(a));
    if (m === '%d') return String(Math.trunc(Number(a)));
    return show(a);
  });
}

const BUILTINS: Record<string, TemplateFunc> = {
  index: (coll, ...keys) => keys.reduce<unknown>((c, k) => {
    if (c === null || typeof c !== 'object') throw new TemplateError(`index of ${show(c)}`);
    return (c as Record<string, unknown>)[String(k)];
  }, coll),
  print: (...a) => a.map(show).join(''),
  printf: (f, ...a) => printf(f, ...a),
  len: (v) => (typeof v === 'string' || Array.isArray(v) ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  eq: (a, ...bs) => bs.some((b) => a === b),
  ne: (a, b) => a !== b,
  not: (a) => !truthy(a),
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find((x) => truthy(x)) ?? a[a.length - 1],
};

/**
 * Renders `src` against `data` with `funcs` (and the builtins).
 * @throws TemplateError (one line) for a parse error, an unknown field or function, or an error a
 *   function throws (its message is kept).
 */
export function renderGoTemplate(src: string, data: unknown, funcs: Record<string, TemplateFunc> = {}): string {
  const nodes = parse(tokenize(src));
  const fns = { ...BUILTINS, ...funcs };
  const field = (path: string[]): unknown => {
    let cur: unknown = data;
    for (let i = 0; i < path.length; i++) {
      if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, path[i]!)) {
        const at = `.${path.slice(0, i + 1).join('.')}`;
        const known = cur && typeof cur === 'object' ? Object.keys(cur).map((k) => `.${[...path.slice(0, i), k].join('.')}`).join(', ') : '';
        throw new TemplateError(`no field ${at}${known ? `; use one of ${known}` : ''}`);
      }
      cur = (cur as Record<string, unknown>)[path[i]!];
    }
    return cur;
  };
  const call = (name: string, args: unknown[]): unknown => {
    const f = fns[name];
    if (!f) throw new TemplateError(`function ${JSON.stringify(name)} not defined; use one of ${Object.keys(fns).join(', ')}`);
    try {
      return f(...args);
    } catch (e) {
      if (e instanceof TemplateError) throw e;
      throw new TemplateError(`${name}: ${(e as Error).message}`);
    }
  };
  const arg = (a: Arg): unknown => (a.kind === 'lit' ? a.value : a.kind === 'field' ? field(a.path) : call(a.name, a.args.map(arg)));
  const pipe = (cmds: Cmd[]): unknown => {
    let v: unknown;
    cmds.forEach((c, i) => {
      const args = c.args.map(arg);
      if (i > 0) args.push(v);
      if (c.name) v = call(c.name, args);
      else {
        if (i > 0) throw new TemplateError('a value cannot take a piped argument');
        v = args[0];
      }
    });
    return v;
  };
  const run = (ns: Node[]): string => ns.map((n) => {
    if (n.kind === 'text') return n.text;
    if (n.kind === 'action') return show(pipe(n.pipe));
    const b = n.branches.find((x) => truthy(pipe(x.cond)));
    return run(b ? b.body : n.otherwise);
  }).join('');
  return run(nodes);
}
