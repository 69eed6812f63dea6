import { type Node, invalidArgument } from '@shoal/api';

/**
 * Placement constraints in the SwarmKit constraint language (behaviour of `manager/constraint`):
 * `key==value` or `key!=value`; a service's constraints are all ANDed.
 *
 * Keys (case-insensitive): `node.id`, `node.hostname`, `node.role`, `node.platform.os`,
 * `node.platform.arch`, `node.ip` (an IPv4 address or CIDR), `node.labels.<name>`,
 * `engine.labels.<name>`. Node attributes compare case-insensitively; label values compare
 * exactly. A node lacking the label never equals it, so `!=` matches it.
 */
export interface Constraint {
  /** Lower-cased key, e.g. `node.labels.zone`. */
  key: string;
  op: '==' | '!=';
  value: string;
  /** The expression as the user wrote it. */
  expr: string;
}

const ATTRIBUTE_KEYS = new Set(['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch', 'node.ip']);
const LABEL_KEYS = ['node.labels.', 'engine.labels.'];

/**
 * Parses one constraint expression.
 * @throws ShoalError InvalidArgument (one line naming the expression and the fix), e.g.
 *   `invalid constraint 'zone==b': unknown key 'zone'; did you mean node.labels.zone?`
 */
export function parseConstraint(expr: string): Constraint {
  const m = /^([^=!]*)(==|!=)(.*)$/.exec(expr);
  if (!m) throw invalidArgument(`invalid constraint '${expr}': expected key==value or key!=value, e.g. node.labels.zone==a`);
  const rawKey = m[1]!.trim();
  const op = m[2] as '==' | '!=';
  const value = m[3]!.trim();
  if (rawKey === '') throw invalidArgument(`invalid constraint '${expr}': the key before ${op} is empty`);
  if (value === '') throw invalidArgument(`invalid constraint '${expr}': the value after ${op} is empty`);
  if (/[=!]/.test(value)) throw invalidArgument(`invalid constraint '${expr}': the value '${value}' contains '=' or '!'; use one operator`);
  const key = rawKey.toLowerCase();
  const isLabel = LABEL_KEYS.some((p) => key.startsWith(p) && key.length > p.length);
  if (!isLabel && !ATTRIBUTE_KEYS.has(key)) {
    const hint = key.startsWith('node.') || key.startsWith('engine.')
      ? 'use node.id, node.hostname, node.role, node.ip, node.platform.os, node.platform.arch, node.labels.<name> or engine.labels.<name>'
      : `did you mean node.labels.${rawKey}?`;
    throw invalidArgument(`invalid constraint '${expr}': unknown key '${rawKey}'; ${hint}`);
  }
  if (key === 'node.ip' && !parseIpv4Cidr(value)) {
    throw invalidArgument(`invalid constraint '${expr}': '${value}' is not an IPv4 address or CIDR`);
  }
  return { key, op, value, expr };
}

/** Parses every expression. @throws as {@link parseConstraint}, for the first bad one. */
export function parseConstraints(exprs: readonly string[]): Constraint[] {
  return exprs.map(parseConstraint);
}

/**
 * True when `node` satisfies every constraint. Accepts parsed constraints or raw expressions;
 * a raw expression that does not parse matches no node (validation belongs to controlapi).
 */
export function matches(node: Node, constraints: readonly (Constraint | string)[]): boolean {
  for (const c of constraints) {
    let parsed: Constraint;
    if (typeof c === 'string') {
      try {
        parsed = parseConstraint(c);
      } catch {
        return false;
      }
    } else {
      parsed = c;
    }
    if (!matchOne(parsed, node)) return false;
  }
  return true;
}

function matchOne(c: Constraint, node: Node): boolean {
  let equal: boolean;
  if (c.key.startsWith('node.labels.')) {
    equal = labelEquals(node.spec.labels, c.key.slice('node.labels.'.length), c.value);
  } else if (c.key.startsWith('engine.labels.')) {
    equal = labelEquals(node.description?.engine.labels ?? {}, c.key.slice('engine.labels.'.length), c.value);
  } else if (c.key === 'node.ip') {
    equal = ipInNet(node.status.addr, c.value);
  } else {
    const actual = attribute(c.key, node);
    equal = actual !== undefined && actual.toLowerCase() === c.value.toLowerCase();
  }
  return c.op === '==' ? equal : !equal;
}

function attribute(key: string, node: Node): string | undefined {
  switch (key) {
    case 'node.id': return node.id;
    case 'node.hostname': return node.description?.hostname;
    case 'node.role': return node.role;
    case 'node.platform.os': return node.description?.platform.os;
    case 'node.platform.arch': return node.description?.platform.architecture;
    default: return undefined;
  }
}

/** Label names are case-insensitive (like all keys); values are compared exactly. */
function labelEquals(labels: Record<string, string>, name: string, value: string): boolean {
  for (const [k, v] of Object.entries(labels)) if (k.toLowerCase() === name) return v === value;
  return false;
}

function ipInNet(addr: string, want: string): boolean {
  const host = parseIpv4Cidr(addr.replace(/:\d+$/, ''));
  const net = parseIpv4Cidr(want);
  if (!host || !net) return false;
  const mask = net.bits === 0 ? 0 : (0xffffffff << (32 - net.bits)) >>> 0;
  return ((host.addr & mask) >>> 0) === ((net.addr & mask) >>> 0);
}

function parseIpv4Cidr(s: string): { addr: number; bits: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s);
  if (!m) return undefined;
  const octets = [m[1], m[2], m[3], m[4]].map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  const bits = m[5] === undefined ? 32 : Number(m[5]);
  if (bits > 32) return undefined;
  return { addr: octets.reduce((a, o) => ((a << 8) | o) >>> 0, 0), bits };
}
