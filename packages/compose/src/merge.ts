/**
 * Merging several compose files (`-c a.yml -c b.yml`) by the Compose Specification's rules
 * ("Merge and override"): mappings merge key by key, later files winning on conflicts; sequences
 * append — except `command`, `entrypoint` and `healthcheck.test`, which the later file replaces,
 * and the unique resources `ports` (by host IP, target, published port and protocol), `volumes`,
 * `secrets` and `configs` (by target), whose entries with the same key are merged. `!reset`
 * clears a value. Positions follow the values: a merged value keeps the position of the file it
 * came from.
 */
import { RESET, joinPath, type Origins } from './source.js';
import type { Dict, FileRef, PortConfig, VolumeMount } from './normalize.js';

type Path = (string | number)[];

const REPLACED = new Set(['command', 'entrypoint']);

function keyOf(field: string, v: unknown): string | undefined {
  switch (field) {
    case 'ports': {
      const p = v as PortConfig;
      return `${p.host_ip ?? ''}|${p.target}|${p.published ?? ''}|${p.protocol}`;
    }
    case 'volumes':
      return (v as VolumeMount).target;
    case 'secrets':
      return (v as FileRef).target ?? `/run/secrets/${(v as FileRef).source}`;
    case 'configs':
      return (v as FileRef).target ?? `/${(v as FileRef).source}`;
    default:
      return undefined;
  }
}

/** Copies the origins under `from` (in `src`) to `to` (in `dst`). */
function moveOrigins(src: Origins, from: string, dst: Origins, to: string): void {
  for (const [k, v] of src) {
    if (k === from || k.startsWith(`${from}.`) || k.startsWith(`${from}[`)) dst.set(to + k.slice(from.length), v);
  }
}

/**
 * Merges `over` (with its origins) into `base` (with its); returns the merged value. `path` is the
 * key path of both (for positions and for the per-field rules).
 */
export function mergeValue(base: unknown, over: unknown, path: Path, origins: Origins, overOrigins: Origins): unknown {
  const p = joinPath(path);
  const field = path[path.length - 1];
  const inService = path[0] === 'services' && path.length === 3;
  if (over === RESET) {
    for (const k of [...origins.keys()]) if (k === p || k.startsWith(`${p}.`) || k.startsWith(`${p}[`)) origins.delete(k);
    return undefined;
  }
  if (over === undefined) return base;
  if (base === undefined || base === null || over === null || typeof base !== 'object' || typeof over !== 'object'
    || (path.length === 4 && path[2] === 'healthcheck' && path[3] === 'test') || (inService && REPLACED.has(String(field)))) {
    // Scalars, replaced fields, and a type change: the later file wins.
    if (p) for (const k of [...origins.keys()]) if (k === p || k.startsWith(`${p}.`) || k.startsWith(`${p}[`)) origins.delete(k);
    moveOrigins(overOrigins, p, origins, p);
    return over;
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    const out = [...base];
    const unique = inService ? keyOf.bind(null, String(field)) : () => undefined;
    over.forEach((item, i) => {
      const k = unique(item);
      const j = k === undefined ? -1 : out.findIndex((x) => unique(x) === k);
      const to = j >= 0 ? j : out.length;
      if (j >= 0) out[j] = mergeValue(out[j], item, [...path, j], origins, new Map([...overOrigins].map(([kk, v]) => [kk.replace(`${p}[${i}]`, `${p}[${j}]`), v])));
      else {
        out.push(item);
        moveOrigins(overOrigins, `${p}[${i}]`, origins, `${p}[${to}]`);
      }
    });
    return out;
  }
  if (Array.isArray(base) !== Array.isArray(over)) {
    moveOrigins(overOrigins, p, origins, p);
    return over;
  }
  const out: Dict = { ...(base as Dict) };
  for (const [k, v] of Object.entries(over as Dict)) {
    const merged = mergeValue(out[k], v, [...path, k], origins, overOrigins);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
    const kp = joinPath([...path, k]);
    if (!origins.has(kp) && overOrigins.has(kp)) origins.set(kp, overOrigins.get(kp)!);
  }
  return out;
}

/** Merges files in order (later ones override). @returns the merged data and origins. */
export function mergeFiles(files: { data: Dict; origins: Origins }[]): { data: Dict; origins: Origins } {
  const origins: Origins = new Map(files[0]?.origins ?? []);
  let data: Dict = files[0]?.data ?? {};
  for (const f of files.slice(1)) data = mergeValue(data, f.data, [], origins, f.origins) as Dict;
  return { data, origins };
}
