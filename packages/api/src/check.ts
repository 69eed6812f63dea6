/**
 * Runtime validation of payloads against the contract's JSON schemas (ajv), with one-line errors
 * that name the method, the field and what was expected. Servers only: kept out of the package's
 * main entry (`@shoal/api/check`) so the CLI does not load ajv.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { invalidArgument, ShoalError } from './errors.js';
import { METHODS, isMethod, type Method, type Params } from './contract.js';
import { CLUSTER_CALLS, type ClusterCall, type ClusterParams } from './cluster-contract.js';

const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false });
const compiled = new WeakMap<TSchema, ValidateFunction>();

function validator(schema: TSchema): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) compiled.set(schema, (v = ajv.compile(schema)));
  return v;
}

/** `/ports/0/targetPort` → `ports[0].targetPort`. */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return `${typeof v} ${s && s.length > 40 ? s.slice(0, 37) + '...' : s}`;
}

function valueAt(root: unknown, instancePath: string): unknown {
  let v = root;
  for (const p of instancePath.split('/').slice(1)) v = (v as Record<string, unknown> | undefined)?.[p.replace(/~1/g, '/').replace(/~0/g, '~')];
  return v;
}

/** One line for the first schema error of `data`. */
export function formatSchemaError(what: string, e: ErrorObject, data: unknown): string {
  switch (e.keyword) {
    case 'additionalProperties': {
      const f = fieldPath(e.instancePath, String((e.params as { additionalProperty: string }).additionalProperty));
      return `${what}: unknown field ${f}; remove it (the server does not support it)`;
    }
    case 'required': {
      const f = fieldPath(e.instancePath, String((e.params as { missingProperty: string }).missingProperty));
      return `${what}: missing field ${f}`;
    }
    case 'type': {
      const f = fieldPath(e.instancePath) || 'parameters';
      return `${what}: ${f} must be ${(e.params as { type: string }).type}, got ${describe(valueAt(data, e.instancePath))}`;
    }
    case 'const':
    case 'enum':
    case 'anyOf': {
      const f = fieldPath(e.instancePath) || 'parameters';
      return `${what}: invalid ${f} ${describe(valueAt(data, e.instancePath))}`;
    }
    default: {
      const f = fieldPath(e.instancePath) || 'parameters';
      return `${what}: ${f} ${e.message ?? 'is invalid'}`;
    }
  }
}

/**
 * Checks `data` against `schema`.
 * @returns `data`, typed. @throws ShoalError InvalidArgument with one line naming `what` and the field.
 */
export function checkSchema<S extends TSchema>(what: string, schema: S, data: unknown): unknown {
  const v = validator(schema);
  if (!v(data)) throw invalidArgument(formatSchemaError(what, v.errors![0]!, data));
  return data;
}

/**
 * Checks the method name and the parameters of a control call.
 * @throws ShoalError Unimplemented for an unknown method; InvalidArgument for bad parameters.
 */
export function checkParams<M extends Method>(method: M | string, params: unknown): Params<M> {
  if (!isMethod(method)) throw new ShoalError('Unimplemented', `unknown method ${JSON.stringify(method)}; this shoald may be older than the client`);
  return checkSchema(method, METHODS[method].params, params ?? {}) as Params<M>;
}

/**
 * Checks the parameters of a cluster-port call that has a schema in `CLUSTER_CALLS`.
 * @throws ShoalError InvalidArgument naming the call and the field.
 */
export function checkClusterParams<C extends ClusterCall>(call: C, params: unknown): ClusterParams<C> {
  return checkSchema(call, CLUSTER_CALLS[call].params, params ?? {}) as ClusterParams<C>;
}
