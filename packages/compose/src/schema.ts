/**
 * Checking a compose file against the Compose Specification: first the values that interpolation
 * left as strings are cast to their type (`replicas: ${N}` → 3; Docker compose-go's
 * `interpolation` casts, done for the same fields), then the file is validated against the
 * Compose Specification's JSON schema (schema/compose-spec.json, ajv). Every error names the file,
 * line and column, the key path and what was expected — never a bare "invalid type".
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import schemaJson from '../schema/compose-spec.json' with { type: 'json' };
import { ComposeError, joinPath, posOf, type Origins } from './source.js';

type Cast = 'int' | 'float' | 'bool' | 'mode';

/**
 * Fields a file may write as strings (so that they can be interpolated) whose value must end up
 * with another type; `*` matches any key or index. From compose-go's interpolation casts.
 */
const CASTS: [string, Cast][] = [
  ['services.*.deploy.replicas', 'int'],
  ['services.*.deploy.resources.limits.pids', 'int'],
  ['services.*.deploy.restart_policy.max_attempts', 'int'],
  ['services.*.deploy.update_config.parallelism', 'int'],
  ['services.*.deploy.update_config.max_failure_ratio', 'float'],
  ['services.*.deploy.rollback_config.parallelism', 'int'],
  ['services.*.deploy.rollback_config.max_failure_ratio', 'float'],
  ['services.*.deploy.placement.max_replicas_per_node', 'int'],
  ['services.*.healthcheck.retries', 'int'],
  ['services.*.healthcheck.disable', 'bool'],
  ['services.*.init', 'bool'],
  ['services.*.read_only', 'bool'],
  ['services.*.tty', 'bool'],
  ['services.*.stdin_open', 'bool'],
  ['services.*.privileged', 'bool'],
  ['services.*.oom_score_adj', 'int'],
  ['services.*.pids_limit', 'int'],
  ['services.*.scale', 'int'],
  ['services.*.ulimits.*', 'int'],
  ['services.*.ulimits.*.soft', 'int'],
  ['services.*.ulimits.*.hard', 'int'],
  ['services.*.ports.*.target', 'int'],
  ['services.*.secrets.*.mode', 'mode'],
  ['services.*.configs.*.mode', 'mode'],
  ['services.*.secrets.*.uid', 'int'],
  ['services.*.configs.*.uid', 'int'],
  ['services.*.secrets.*.gid', 'int'],
  ['services.*.configs.*.gid', 'int'],
  ['networks.*.external', 'bool'],
  ['networks.*.internal', 'bool'],
  ['networks.*.attachable', 'bool'],
  ['networks.*.enable_ipv6', 'bool'],
  ['volumes.*.external', 'bool'],
  ['secrets.*.external', 'bool'],
  ['configs.*.external', 'bool'],
];

const TRUE = new Set(['y', 'yes', 'true', 'on']);
const FALSE = new Set(['n', 'no', 'false', 'off']);

function castOne(kind: Cast, v: string): { ok: true; value: unknown } | { ok: false; expected: string } {
  const s = v.trim();
  switch (kind) {
    case 'int':
      return /^[-+]?\d+$/.test(s) ? { ok: true, value: Number(s) } : { ok: false, expected: 'an integer' };
    case 'float':
      return s !== '' && Number.isFinite(Number(s)) ? { ok: true, value: Number(s) } : { ok: false, expected: 'a number' };
    case 'bool':
      if (TRUE.has(s.toLowerCase())) return { ok: true, value: true };
      if (FALSE.has(s.toLowerCase())) return { ok: true, value: false };
      return { ok: false, expected: 'a boolean (true or false)' };
    case 'mode':
      // A file mode written as a string is octal, as Docker reads it ("0400", "440").
      return /^0?[0-7]{1,4}$/.test(s) ? { ok: true, value: parseInt(s, 8) } : { ok: false, expected: 'an octal file mode such as 0440' };
  }
}

/**
 * Casts the {@link CASTS} fields of `data` (in place). @throws ComposeError naming the field, the
 * value and the type expected, at its position.
 */
export function castTypes(data: unknown, origins: Origins): void {
  for (const [pattern, kind] of CASTS) {
    const parts = pattern.split('.');
    visit(data, parts, [], (holder, key, path) => {
      const v = (holder as Record<string | number, unknown>)[key];
      if (typeof v !== 'string') return;
      const r = castOne(kind, v);
      const p = joinPath(path);
      if (!r.ok) throw new ComposeError(`must be ${r.expected}, got ${JSON.stringify(v)}`, p, posOf(origins, p));
      (holder as Record<string | number, unknown>)[key] = r.value;
    });
  }
}

function visit(node: unknown, parts: string[], path: (string | number)[], fn: (holder: object, key: string | number, path: (string | number)[]) => void): void {
  if (!node || typeof node !== 'object') return;
  const [head, ...rest] = parts;
  if (head === undefined) return;
  const keys: (string | number)[] = head === '*'
    ? (Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node))
    : Array.isArray(node) ? [] : [head];
  for (const k of keys) {
    if (!(k in (node as object))) continue;
    const child = [...path, k];
    if (rest.length === 0) fn(node, k, child);
    else visit((node as Record<string | number, unknown>)[k], rest, child, fn);
  }
}

let validator: ValidateFunction | undefined;

function compiled(): ValidateFunction {
  if (!validator) {
    const schema = { ...(schemaJson as Record<string, unknown>) };
    delete schema['$schema']; // ajv's draft-07 is the default; the file names it by an https URL ajv does not know
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    validator = ajv.compile(schema);
  }
  return validator;
}

/** `/services/web/ports/0` → `['services','web','ports',0]`. */
function pointerParts(ptr: string): (string | number)[] {
  return ptr.split('/').slice(1).map((p) => {
    const s = p.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(s) ? Number(s) : s;
  });
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function valueAt(root: unknown, parts: (string | number)[]): unknown {
  let v = root;
  for (const p of parts) v = (v as Record<string | number, unknown> | undefined)?.[p];
  return v;
}

/** The one error to report: the deepest, most specific one (a oneOf's branches explain less). */
function pick(errors: ErrorObject[]): ErrorObject {
  const rank = (e: ErrorObject) => (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if' ? 1 : 0);
  return [...errors].sort((a, b) => {
    const da = pointerParts(a.instancePath).length + (a.keyword === 'additionalProperties' || a.keyword === 'required' ? 1 : 0);
    const db = pointerParts(b.instancePath).length + (b.keyword === 'additionalProperties' || b.keyword === 'required' ? 1 : 0);
    return db - da || rank(a) - rank(b);
  })[0]!;
}

/**
 * Validates a (cast) compose file against the Compose Specification.
 * @throws ComposeError naming the position, the key path and what was expected.
 */
export function validateSchema(data: unknown, origins: Origins): void {
  const v = compiled();
  if (v(data)) return;
  const errs = (v.errors ?? []).filter((e) => e.keyword !== 'oneOf' || (v.errors ?? []).length === 1);
  const e = pick(errs.length ? errs : v.errors!);
  const parts = pointerParts(e.instancePath);
  if (e.keyword === 'additionalProperties') {
    const key = String((e.params as { additionalProperty: string }).additionalProperty);
    const p = joinPath([...parts, key]);
    const where = joinPath(parts) || 'the top level';
    throw new ComposeError(`unknown key ${JSON.stringify(key)} in ${where}; check its spelling (Compose Specification)`, p, posOf(origins, p));
  }
  const p = joinPath(parts);
  const got = typeName(valueAt(data, parts));
  switch (e.keyword) {
    case 'type':
      throw new ComposeError(`must be ${(e.params as { type: string }).type.replace(/,/g, ' or ')}, got ${got}`, p, posOf(origins, p));
    case 'required': {
      const miss = String((e.params as { missingProperty: string }).missingProperty);
      throw new ComposeError(`missing the required key ${JSON.stringify(miss)}`, p || undefined, posOf(origins, p));
    }
    case 'enum':
      throw new ComposeError(`must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues).map((x) => JSON.stringify(x)).join(', ')}, got ${got}`, p, posOf(origins, p));
    case 'pattern':
      throw new ComposeError(`${got} does not match the expected format ${(e.params as { pattern: string }).pattern}`, p, posOf(origins, p));
    default:
      throw new ComposeError(`${e.message ?? 'is invalid'} (got ${got})`, p || undefined, posOf(origins, p));
  }
}
