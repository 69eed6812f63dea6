import type { Node } from './objects.js';
import { invalidArgument } from './errors.js';

/**
 * Placement constraints: the SwarmKit constraint language (`manager/constraint`), re-implemented.
 *
 * An expression is `key==value` or `key!=value`; a service's expressions are ANDed. Keys are
 * case-insensitive: `node.id`, `node.hostname`, `node.ip` (address or CIDR), `node.role`,
 * `node.platform.os`, `node.platform.arch`, `node.labels.<name>`, `engine.labels.<name>`.
 * Node attributes compare case-insensitively; label values compare exactly. A label the node
 * lacks never equals anything (so `!=` matches).
 */
export interface Constraint {
  /** Lower-cased key, e.g. `node.labels.zone`. */
  key: string;
  op: '==' | '!=';
  value: string;
  /** The expression as written. */
  text: string;
}

const PLAIN_KEYS = ['node.id', 'node.hostname', 'node.ip', 'node.role', 'node.platform.os', 'node.platform.arch'];
const LABEL_PREFIXES = ['node.labels.', 'engine.labels.'];

/**
 * Parses one expression.
 * @throws ShoalError InvalidArgument naming the bad expression and the fix (unknown key, missing
 *   operator, empty value).
 */
export function parseConstraint(expr: string): Constraint {
  const m = /^(.*?)(==|!=)(.*)$/.exec(expr);
  if (!m) throw invalidArgument(`invalid constraint '${expr}': expected key==value or key!=value`);
  const rawKey = m[1]!.trim();
  const op = m[2] as '==' | '!=';
  const value = m[3]!.trim();
  const key = rawKey.toLowerCase();
  if (!rawKey) throw invalidArgument(`invalid constraint '${expr}': missing key before ${op}`);
  if (!value) throw invalidArgument(`invalid constraint '${expr}': missing value after ${op}`);
  if (/[=!]/.test(value)) throw invalidArgument(`invalid constraint '${expr}': value '${value}' contains an operator character`);
  const isLabel = LABEL_PREFIXES.some((p) => key.startsWith(p) && key.length > p.length);
  if (!isLabel && !PLAIN_KEYS.includes(key)) {
    const hint = key.includes('.') ? '' : `; did you mean node.labels.${rawKey}?`;
    throw invalidArgument(`unknown constraint key '${rawKey}' in '${expr}'${hint}`);
  }
  if (key === 'node.ip' && parseCidr(value) === undefined) {
    throw invalidArgument(`invalid constraint '${expr}': '${value}' is not an IPv4 address or CIDR`);
  }
  return { key, op, value, text: expr };
}

/** Parses every expression. @throws as {@link parseConstraint}, for the first bad one. */
export function parseConstraints(exprs: readonly string[]): Constraint[] {
  return exprs.map(parseConstraint);
}

/** True when `node` satisfies every constraint. */
export function matchConstraints(constraints: readonly Constraint[], node: Node): boolean {
  for (const c of constraints) if (!matchOne(c, node)) return false;
  return true;
}

/**
 * True when `node` satisfies every constraint, given parsed constraints or raw expressions; a raw
 * expression that does not parse matches no node (validation belongs to the control API).
 */
export function matches(node: Node, constraints: readonly (Constraint | string)[]): boolean {
  for (const c of constraints) {
    let parsed: Constraint;
    try {
      parsed = typeof c === 'string' ? parseConstraint(c) : c;
    } catch {
      return false;
    }
    if (!matchOne(parsed, node)) return false;
  }
  return true;
}

function matchOne(c: Constraint, node: Node): boolean {
  let eq: boolean;
  if (c.key.startsWith('node.labels.')) {
    eq = labelEquals(node.spec.labels, c.key.slice('node.labels.'.length), c.value);
  } else if (c.key.startsWith('engine.labels.')) {
    eq = labelEquals(node.description?.engine.labels ?? {}, c.key.slice('engine.labels.'.length), c.value);
  } else if (c.key === 'node.ip') {
    eq = ipMatches(node.status.addr, c.value);
  } else {
    const actual = plainAttr(c.key, node);
    eq = actual !== undefined && actual.toLowerCase() === c.value.toLowerCase();
  }
  return c.op === '==' ? eq : !eq;
}

function plainAttr(key: string, node: Node): string | undefined {
  switch (key) {
    case 'node.id': return node.id;
    case 'node.hostname': return node.description?.hostname;
    case 'node.role': return node.role;
    case 'node.platform.os': return node.description?.platform.os;
    case 'node.platform.arch': return node.description?.platform.architecture;
    default: return undefined;
  }
}

/** Label names match case-insensitively (keys are case-insensitive); values exactly. */
function labelEquals(labels: Record<string, string>, name: string, value: string): boolean {
  if (Object.hasOwn(labels, name)) return labels[name] === value;
  for (const [k, v] of Object.entries(labels)) if (k.toLowerCase() === name) return v === value;
  return false;
}

function ipMatches(addr: string, want: string): boolean {
  const host = addr.replace(/:\d+$/, '');
  const ip = parseCidr(host);
  const net = parseCidr(want);
  if (!ip || !net) return false;
  const mask = net.bits === 0 ? 0 : (~0 << (32 - net.bits)) >>> 0;
  return ((ip.addr & mask) >>> 0) === ((net.addr & mask) >>> 0);
}

function parseCidr(s: string): { addr: number; bits: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s);
  if (!m) return undefined;
  const parts = [m[1], m[2], m[3], m[4]].map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  const bits = m[5] === undefined ? 32 : Number(m[5]);
  if (bits > 32) return undefined;
  return { addr: ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0, bits };
}
