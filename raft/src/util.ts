/** Small helpers shared by the core: message construction, sizes, seeded randomness. */
import type { Entry, HardState, Message, MessageType, Snapshot } from './types.js';
import { NONE } from './types.js';

/** Per-entry overhead (bytes) added to the payload when sizing messages: term, index, type. */
export const ENTRY_OVERHEAD_BYTES = 16;

/** Bytes an entry occupies in a message (payload plus fixed overhead). */
export function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Payload bytes of entries (etcd `PayloadSize`): what the uncommitted-size budget counts. */
export function payloadSize(ents: readonly Entry[]): number {
  let n = 0;
  for (const e of ents) n += e.data.byteLength;
  return n;
}

/** Total message size of entries, see {@link entrySize}. */
export function entriesSize(ents: readonly Entry[]): number {
  let n = 0;
  for (const e of ents) n += entrySize(e);
  return n;
}

/**
 * Prefix of `ents` whose total size stays within `maxSize` bytes, always keeping at least one
 * entry (so a single oversized entry still makes progress).
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let i = 1;
  for (; i < ents.length; i++) {
    size += entrySize(ents[i]!);
    if (size > maxSize) break;
  }
  return i === ents.length ? ents : ents.slice(0, i);
}

/** A message with every optional field at its zero value. */
export function newMessage(type: MessageType, fields: Partial<Message> = {}): Message {
  return {
    type,
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

export const EMPTY_HARD_STATE: Readonly<HardState> = Object.freeze({ term: 0, vote: NONE, commit: 0 });

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

/**
 * Seeded PRNG (mulberry32): returns a function yielding floats in [0, 1). Deterministic for a
 * given 32-bit seed, which is what makes simulated clusters reproducible.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a hash of a string, as a 32-bit unsigned integer (used to seed per-node PRNGs). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Hex key of a byte string (ReadIndex request contexts are compared by value). */
export function bytesKey(b: Uint8Array | undefined): string {
  if (b === undefined) return '';
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
