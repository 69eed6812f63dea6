/**
 * Reading one compose file: YAML (the `yaml` package) into plain data, with the position of every
 * value kept by key path (`services.web.ports[0]`), so that every later error — schema,
 * interpolation, types, references — names `file:line:column` and the key path.
 *
 * YAML details, as Docker Compose reads files (Go yaml.v3): anchors, aliases and merge keys
 * (`<<: *base`); `0400`-style integers are octal (file modes); the `!reset` and `!override` tags
 * of the Compose Specification's merge rules are kept as markers for the merge.
 */
import { Document, LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Node as YamlNode, type ScalarTag } from 'yaml';

/** A position in a file: 1-based line and column. */
export interface Pos {
  file: string;
  line: number;
  col: number;
}

/** Key path → position of its value. */
export type Origins = Map<string, Pos>;

/** `services.web.ports[0]` from segments `['services','web','ports',0]`. */
export function joinPath(parts: readonly (string | number)[]): string {
  let out = '';
  for (const p of parts) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/**
 * A mistake in a compose file. `message` is one line: `file:line:col: path: what is wrong` (parts
 * left out when unknown).
 */
export class ComposeError extends Error {
  constructor(
    readonly reason: string,
    readonly path?: string,
    readonly pos?: Pos,
  ) {
    super(`${pos ? `${pos.file}:${pos.line}:${pos.col}: ` : ''}${path ? `${path}: ` : ''}${reason}`);
    this.name = 'ComposeError';
  }
}

/** The position of `path`, or of its nearest ancestor that has one. */
export function posOf(origins: Origins, path: string): Pos | undefined {
  let p = path;
  for (;;) {
    const hit = origins.get(p);
    if (hit) return hit;
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    if (cut <= 0) return origins.get('') ?? undefined;
    p = p.slice(0, cut);
  }
}

/** Marker left by the `!reset` tag: the merge clears the value. */
export const RESET = Symbol('compose !reset');
/** Marker wrapper left by the `!override` tag: the merge replaces instead of merging. */
export interface Override {
  [OVERRIDE]: unknown;
}
export const OVERRIDE = Symbol('compose !override');

/** YAML 1.1-style octal (`0400`), as Go's yaml.v3 reads it: file modes in compose files are octal. */
const octal: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  default: true,
  test: /^0[0-7]+$/,
  resolve: (s: string) => parseInt(s, 8),
};

/** The tags the Compose Specification defines for merging. */
const resetTags: ScalarTag[] = [
  { tag: '!reset', resolve: () => RESET as unknown as string } as ScalarTag,
];

export interface ParsedFile {
  data: unknown;
  origins: Origins;
}

/**
 * Parses a compose file.
 * @throws ComposeError naming the file, line and column of a YAML syntax error (or a duplicate key).
 */
export function parseYaml(file: string, text: string): ParsedFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter, merge: true, uniqueKeys: true, prettyErrors: false, strict: false,
    customTags: (tags) => [octal, ...resetTagsWithCollections(), ...tags],
  });
  const err = doc.errors[0];
  if (err) {
    const lp = err.linePos?.[0];
    throw new ComposeError(`invalid YAML: ${err.message.split('\n')[0]}`, undefined, lp ? { file, line: lp.line, col: lp.col } : { file, line: 1, col: 1 });
  }
  const origins: Origins = new Map();
  const posAt = (n: YamlNode | null | undefined): Pos | undefined => {
    const r = n?.range;
    if (!r) return undefined;
    const lp = lineCounter.linePos(r[0]);
    return { file, line: lp.line, col: lp.col };
  };
  const walk = (node: unknown, path: (string | number)[], depth: number): void => {
    if (depth > 64 || !node) return;
    let n = node as YamlNode;
    const here = posAt(n);
    if (here && !origins.has(joinPath(path))) origins.set(joinPath(path), here);
    if (isAlias(n)) {
      const target = n.resolve(doc as Document);
      if (target) walk(target, path, depth + 1);
      return;
    }
    if (isMap(n)) {
      for (const item of n.items) {
        if (!isPair(item)) continue;
        const k = isScalar(item.key) ? item.key.value : item.key;
        if (k === '<<') {
          // Merge keys: the merged-in keys take the positions of their definitions.
          const v = item.value as YamlNode;
          const sources = isSeq(v) ? v.items : [v];
          for (const s of sources) walk(isAlias(s as YamlNode) ? (s as unknown as { resolve(d: Document): YamlNode }).resolve(doc as Document) : s, path, depth + 1);
          continue;
        }
        const key = String(k);
        const keyPos = posAt(item.key as YamlNode);
        const child = [...path, key];
        if (keyPos) origins.set(joinPath(child), keyPos);
        walk(item.value, child, depth + 1);
      }
      return;
    }
    if (isSeq(n)) n.items.forEach((it, i) => walk(it, [...path, i], depth + 1));
    n = n as YamlNode;
  };
  walk(doc.contents, [], 0);
  if (!origins.has('')) origins.set('', { file, line: 1, col: 1 });
  const data = doc.toJS({ maxAliasCount: 1000 }) as unknown;
  return { data, origins };
}

/** `!reset` on scalars, sequences and mappings (`!reset []`, `!reset {}`, `!reset null`). */
function resetTagsWithCollections() {
  return [
    ...resetTags,
    { tag: '!reset', collection: 'seq', resolve: () => RESET } as never,
    { tag: '!reset', collection: 'map', resolve: () => RESET } as never,
  ];
}
