/**
 * JSON serialization that yields to the event loop: a large snapshot is written in slices so a
 * Raft node keeps replicating while it serializes (see `Applier.snapshotLater` in
 * @shoal/replication). The output is byte-for-byte what `JSON.stringify` gives for the same value.
 */

/** Work per slice before yielding, ms. */
const SLICE_MS = 4;

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Serializes `{ ...head, [key]: { name: items[], ... }, ...tail }` — an object whose `key` property
 * maps names to arrays — like `JSON.stringify`, yielding between items every {@link SLICE_MS} ms.
 * `head` and `tail` values and every item are serialized with `JSON.stringify`; they must not change
 * until the promise settles (pass immutable objects or copies).
 * @returns the UTF-8 bytes.
 */
export async function stringifyArraysSliced(
  head: Record<string, unknown>, key: string, arrays: [string, readonly unknown[]][], tail: Record<string, unknown> = {},
): Promise<Uint8Array> {
  const parts: string[] = [];
  const headJson = JSON.stringify(head);
  parts.push(headJson === '{}' ? '{' : headJson.slice(0, -1) + ',');
  parts.push(`${JSON.stringify(key)}:{`);
  let start = performance.now();
  for (let a = 0; a < arrays.length; a++) {
    const [name, items] = arrays[a]!;
    parts.push(`${a > 0 ? ',' : ''}${JSON.stringify(name)}:[`);
    for (let i = 0; i < items.length; i++) {
      parts.push((i > 0 ? ',' : '') + JSON.stringify(items[i]));
      if (performance.now() - start > SLICE_MS) {
        await tick();
        start = performance.now();
      }
    }
    parts.push(']');
  }
  parts.push('}');
  const tailJson = JSON.stringify(tail);
  if (tailJson !== '{}') parts.push(',' + tailJson.slice(1, -1));
  parts.push('}');
  return Buffer.from(parts.join(''), 'utf8');
}
