/** Seeded randomness and IDs, so a harness run repeats exactly. */
import { fnv1a, mulberry32 } from '@shoal/raft';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** A generator of floats in [0, 1) for `what` (a name) under `seed`. */
export function seededRandom(seed: number, what: string): () => number {
  return mulberry32((fnv1a(`${seed}/${what}`) ^ seed) >>> 0);
}

/** A generator of object IDs (25 base36 characters, like `newId()`), repeatable under `seed`. */
export function seededIds(seed: number): () => string {
  const r = seededRandom(seed, 'ids');
  return () => {
    let s = '';
    for (let i = 0; i < 25; i++) s += ALPHABET[Math.floor(r() * 36)];
    return s;
  };
}
