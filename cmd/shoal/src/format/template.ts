import { UsageError } from '../errors.js';

/**
 * A small subset of Go's text/template for `--format` (what scripts use with `docker info` and
 * `inspect`): `{{.Field.Sub}}` prints a value (objects and arrays as JSON), `{{json .X}}` prints JSON,
 * `{{.}}` the whole value; everything else is literal text, and `\n`, `\t` escapes are expanded.
 * @throws UsageError for any other action (`{{range}}`, `{{if}}`, functions).
 */
export function renderTemplate(template: string, data: unknown): string {
  const text = template.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
  return text.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_all, action: string) => {
    const m = /^(json\s+)?(\.[A-Za-z0-9_.]*)$/.exec(action);
    if (!m) throw new UsageError(`unsupported --format action {{${action}}}: use {{.Field}} or {{json .Field}}`);
    const value = lookup(data, m[2]!);
    if (m[1]) return JSON.stringify(value ?? null);
    if (value === undefined || value === null) return '<no value>';
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  });
}

function lookup(data: unknown, path: string): unknown {
  if (path === '.') return data;
  let cur: unknown = data;
  for (const key of path.slice(1).split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
