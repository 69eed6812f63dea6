/**
 * Secrets and configs (SwarmKit `manager/controlapi/secret.go`, `config.go`): validation of what
 * `secret create` / `config create` send, the views `ls` / `inspect` return, resolution of the
 * references a service spec makes to them, and the rules that keep them consistent — names unique,
 * data immutable, nothing removed while a service uses it.
 */
import {
  type Config, type ConfigReference, type FileRefInput, type FileTarget, type Secret, type SecretCreate, type SecretFilters, type SecretInfo,
  type SecretReference, type SecretSpec, type ServiceSpec,
  DEFAULT_FILE_MODE, MAX_CONFIG_BYTES, MAX_SECRET_BYTES, SECRETS_DIR, invalidArgument, notFound, secretNameProblem,
} from '@shoal/api';
import type { ReadTx } from '@shoal/store';

/** The two tables of file-like objects. */
export type FileTable = 'secrets' | 'configs';

/** `secret` or `config`, for messages. */
export const kindOf = (t: FileTable): 'secret' | 'config' => (t === 'secrets' ? 'secret' : 'config');

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Template drivers a secret or config may name (`--template-driver`); Docker knows only `golang`. */
export const TEMPLATE_DRIVERS = ['golang'] as const;

/**
 * Validates `secret create` / `config create` input into a spec: the name (SwarmKit's rule), the
 * labels, the data (base64; decoded, more than 0 and less than 500 KiB for a secret, 1000 KiB for a
 * config — Docker's limits) and the template driver.
 * @throws InvalidArgument with one line naming the value and the rule.
 */
export function normalizeSecretSpec(table: FileTable, input: SecretCreate): SecretSpec {
  const what = kindOf(table);
  const problem = secretNameProblem(input?.name, what);
  if (problem) throw invalidArgument(problem);
  checkLabels(input.labels ?? {}, what);
  if (typeof input.data !== 'string' || !BASE64_RE.test(input.data)) {
    throw invalidArgument(`invalid ${what} data for ${input.name}: it must be base64-encoded`);
  }
  const max = table === 'secrets' ? MAX_SECRET_BYTES : MAX_CONFIG_BYTES;
  const size = Buffer.byteLength(input.data, 'base64');
  if (size < 1 || size >= max) {
    throw invalidArgument(`${what} data must be larger than 0 and less than ${max} bytes; ${input.name} has ${size} bytes`);
  }
  const spec: SecretSpec = { name: input.name, labels: { ...(input.labels ?? {}) }, data: input.data };
  if (input.templateDriver !== undefined && input.templateDriver !== '') {
    if (!(TEMPLATE_DRIVERS as readonly string[]).includes(input.templateDriver)) {
      throw invalidArgument(`invalid template driver ${JSON.stringify(input.templateDriver)}: only golang is supported`);
    }
    spec.templating = { name: input.templateDriver };
  }
  return spec;
}

/** Label keys must be non-empty. @throws InvalidArgument. */
export function checkLabels(labels: Record<string, string>, what: string): void {
  for (const k of Object.keys(labels)) {
    if (k.trim() === '') throw invalidArgument(`invalid ${what} label ${JSON.stringify(`${k}=${labels[k]}`)}: the key is empty; use KEY=VALUE`);
  }
}

/** A secret without its data (what `secret ls` and `secret inspect` show). */
export function redact(s: Secret | Config): SecretInfo {
  const { data: _data, ...spec } = s.spec;
  return { id: s.id, meta: s.meta, spec };
}

/** Docker's `secret ls` filters: ID prefixes, name prefixes, `KEY` / `KEY=VALUE` labels (each filter: any value matches). */
export function matchesFilters(o: Secret | Config, f: SecretFilters | undefined): boolean {
  if (!f) return true;
  if (f.id?.length && !f.id.some((p) => o.id.startsWith(p))) return false;
  if (f.name?.length && !f.name.some((p) => o.spec.name.startsWith(p))) return false;
  if (f.label?.length) {
    const ok = f.label.some((l) => {
      const i = l.indexOf('=');
      if (i < 0) return l in o.spec.labels;
      return o.spec.labels[l.slice(0, i)] === l.slice(i + 1);
    });
    if (!ok) return false;
  }
  return true;
}

/**
 * A secret or config by full ID, then exact name (case-insensitive, as names are unique that
 * way), then unique ID prefix. @throws NotFound (`secret x not found`); InvalidArgument when a
 * prefix is ambiguous.
 */
export function resolveFileObject(tx: ReadTx, table: FileTable, ref: string): Secret {
  const what = kindOf(table);
  let o: Secret | Config | undefined = tx.get(table, ref) ?? tx.byName(table, ref);
  if (!o && ref.length > 0) {
    const hits = tx.list(table).filter((x) => x.id.startsWith(ref));
    if (hits.length > 1) throw invalidArgument(`${what} ${ref} is ambiguous (${hits.length} matches); give more of the ID`);
    o = hits[0];
  }
  if (!o) throw notFound(`${what} ${ref} not found`);
  return o;
}

/** Names of the services whose spec uses secret or config `id`, sorted. */
export function usersOf(tx: ReadTx, table: FileTable, id: string): string[] {
  return tx.list('services')
    .filter((s) => (table === 'secrets'
      ? (s.spec.task.container.secrets ?? []).some((r) => r.secretId === id)
      : (s.spec.task.container.configs ?? []).some((r) => r.configId === id)))
    .map((s) => s.spec.name)
    .sort();
}

/** Docker's refusal to remove a secret or config a service uses, naming them. */
export function inUseMessage(table: FileTable, name: string, services: string[]): string {
  return `${kindOf(table)} '${name}' is in use by the following service${services.length === 1 ? '' : 's'}: ${services.join(', ')}`;
}

// ---- references from service specs ---------------------------------------------------------

const NUMERIC_ID = /^\d+$/;

/**
 * Checks a service's secret or config references as a client sent them (`--secret
 * source=S,target=T,uid=U,gid=G,mode=M`) and turns them into references whose ID is still to be
 * resolved ({@link resolveFileRefs}, inside the write transaction): the source is kept in the
 * name field, the target is kept as given (empty = the object's name, filled in on resolution).
 * @throws InvalidArgument naming the bad value: an empty source, a target with `..` or a NUL, a
 *   non-numeric uid/gid, a mode that is not a whole number from 0 to 0777.
 */
export function checkFileRefs(table: FileTable, inputs: readonly FileRefInput[]): { source: string; file: FileTarget }[] {
  const what = kindOf(table);
  return inputs.map((r) => {
    if (!r || typeof r.source !== 'string' || r.source.trim() === '') {
      throw invalidArgument(`invalid --${what} reference ${JSON.stringify(r)}: give source=NAME (and optionally target, uid, gid, mode)`);
    }
    const target = r.target ?? '';
    if (target.includes('\0') || target.split('/').includes('..')) {
      throw invalidArgument(`invalid ${what} target ${JSON.stringify(target)} for ${r.source}: it must not contain ".." or NUL`);
    }
    if (r.target !== undefined && target.trim() === '') {
      throw invalidArgument(`invalid ${what} target "" for ${r.source}: give a file name, or leave target out to use the ${what}'s name`);
    }
    for (const [k, v] of [['uid', r.uid], ['gid', r.gid]] as const) {
      if (v !== undefined && !NUMERIC_ID.test(v)) throw invalidArgument(`invalid ${what} ${k} ${JSON.stringify(v)} for ${r.source}: must be a numeric ID such as 0 or 1000`);
    }
    const mode = r.mode ?? DEFAULT_FILE_MODE;
    if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
      throw invalidArgument(`invalid ${what} mode ${JSON.stringify(mode)} for ${r.source}: must be permission bits from 0 to 0777 (e.g. 0400)`);
    }
    return { source: r.source, file: { name: target, uid: r.uid ?? '0', gid: r.gid ?? '0', mode } };
  });
}

/**
 * The path a secret or config reference appears at in the container: a relative secret target
 * under `/run/secrets/`, a relative config target under `/`, an absolute target as given
 * (moby `container_unix.go`, `container.go`).
 */
export function targetPath(kind: 'secret' | 'config', name: string): string {
  if (name.startsWith('/')) return name;
  return kind === 'secret' ? `${SECRETS_DIR}/${name}` : `/${name}`;
}

/**
 * Resolves a spec's secret and config references inside the write transaction: each source (an ID
 * or a name; a reference already resolved keeps its ID) must name an existing object, an empty
 * target becomes the object's name, and no two references may land on the same path.
 * @throws InvalidArgument `secret not found: a, b` (Docker's words) naming every missing one;
 *   `secret references 'a' and 'b' have a conflicting target: 'x'`.
 */
export function resolveFileRefs(tx: ReadTx, spec: ServiceSpec): void {
  const c = spec.task.container;
  const seen = new Map<string, { kind: 'secret' | 'config'; name: string }>();
  const check = (kind: 'secret' | 'config', name: string, target: string) => {
    const path = targetPath(kind, target);
    const prev = seen.get(path);
    if (prev?.kind === kind) throw invalidArgument(`${kind} references '${prev.name}' and '${name}' have a conflicting target: '${target}'`);
    if (prev) throw invalidArgument(`${prev.kind} '${prev.name}' and ${kind} '${name}' have a conflicting target: '${path}'`);
    seen.set(path, { kind, name });
  };
  if (c.secrets?.length) {
    const missing: string[] = [];
    c.secrets = c.secrets.map((r): SecretReference => {
      const o = lookup(tx, 'secrets', r.secretId, r.secretName);
      if (!o) {
        missing.push(r.secretName || r.secretId);
        return r;
      }
      return { secretId: o.id, secretName: o.spec.name, file: { ...r.file, name: r.file.name || o.spec.name } };
    });
    if (missing.length) throw invalidArgument(`secret${missing.length === 1 ? '' : 's'} not found: ${missing.join(', ')}; create ${missing.length === 1 ? 'it' : 'them'} first with \`shoal secret create\``);
    for (const r of c.secrets) check('secret', r.secretName, r.file.name);
  }
  if (c.configs?.length) {
    const missing: string[] = [];
    c.configs = c.configs.map((r): ConfigReference => {
      const o = lookup(tx, 'configs', r.configId, r.configName);
      if (!o) {
        missing.push(r.configName || r.configId);
        return r;
      }
      return { configId: o.id, configName: o.spec.name, file: { ...r.file, name: r.file.name || o.spec.name } };
    });
    if (missing.length) throw invalidArgument(`config${missing.length === 1 ? '' : 's'} not found: ${missing.join(', ')}; create ${missing.length === 1 ? 'it' : 'them'} first with \`shoal config create\``);
    for (const r of c.configs) check('config', r.configName, r.file.name);
  }
}

/** The object a reference means: its ID if set and present, else its source by full ID or name. */
function lookup(tx: ReadTx, table: FileTable, id: string, source: string): Secret | Config | undefined {
  if (id) return tx.get(table, id);
  return tx.get(table, source) ?? tx.byName(table, source);
}
