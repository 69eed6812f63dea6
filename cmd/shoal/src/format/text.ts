/**
 * Small text helpers shared by the tables (Docker CLI `formatter` conventions).
 */

/** Capitalizes the first letter of an enum value: `running` → `Running` (docker/cli `PrettyPrint`). */
export function prettyEnum(s: string | undefined): string {
  if (!s) return '';
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** First 12 characters of an ID, as Docker tables show them (`TruncateID`). */
export function truncId(id: string): string {
  return id.slice(0, 12);
}

/**
 * Shortens `s` to at most `max` code points, ending with `…` when cut (docker/cli `Ellipsis`).
 */
export function ellipsis(s: string, max: number): string {
  const cps = [...s];
  if (cps.length <= max) return s;
  if (max <= 0) return '';
  if (max === 1) return cps[0]!;
  return cps.slice(0, max - 1).join('') + '…';
}

/** An image reference without its digest: `busybox:1@sha256:…` → `busybox:1`. */
export function stripDigest(image: string): string {
  const at = image.indexOf('@');
  return at < 0 ? image : image.slice(0, at);
}

/**
 * Compares strings in natural order: digit runs compare by value (`node2` < `node10`), the rest
 * byte-wise (fvbommel `sortorder.NaturalLess` semantics, which Docker uses to sort tables).
 */
export function naturalCompare(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    const da = ca >= 48 && ca <= 57;
    const db = cb >= 48 && cb <= 57;
    if (da && db) {
      let ei = i;
      while (ei < a.length && isDigit(a.charCodeAt(ei))) ei++;
      let ej = j;
      while (ej < b.length && isDigit(b.charCodeAt(ej))) ej++;
      const na = a.slice(i, ei).replace(/^0+/, '');
      const nb = b.slice(j, ej).replace(/^0+/, '');
      if (na.length !== nb.length) return na.length - nb.length;
      if (na !== nb) return na < nb ? -1 : 1;
      // Equal values: fewer leading zeros first.
      if (ei - i !== ej - j) return (ei - i) - (ej - j);
      i = ei;
      j = ej;
      continue;
    }
    if (ca !== cb) return ca - cb;
    i++;
    j++;
  }
  return (a.length - i) - (b.length - j);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** JSON as `docker inspect` prints it: 4-space indent, trailing newline. */
export function inspectJson(value: unknown): string {
  return JSON.stringify(value, null, 4) + '\n';
}
