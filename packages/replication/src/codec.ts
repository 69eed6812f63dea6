/**
 * Binary codecs for Raft entries (LevelDB records and wire) and messages (wire).
 *
 * Entry layout (little-endian): term f64 · index f64 · type u8 · dataLength u32 · data.
 * Indexes and terms are integers below 2^53, so an f64 holds them exactly.
 *
 * Message layout: headerLength u32 · header (UTF-8 JSON of every field except `entries`,
 * `context` and `snapshot.data`) · contextLength u32 (0xFFFFFFFF = absent) · context ·
 * entryCount u32 · entries · snapshotDataLength u32 (0xFFFFFFFF = no snapshot) · snapshot data.
 * The JSON header keeps the wire robust to new scalar fields in the core's `Message`; entry
 * payloads are never JSON-encoded.
 */
import type { Entry, Message, Snapshot, SnapshotMetadata } from '@shoal/raft';

const ABSENT = 0xffffffff;
const ENTRY_HEADER = 8 + 8 + 1 + 4;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Encoded size of one entry in bytes. */
export function entrySize(e: Entry): number {
  return ENTRY_HEADER + e.data.byteLength;
}

/** Writes `e` at `off` in `buf`; returns the offset after it. */
export function writeEntry(buf: Buffer, off: number, e: Entry): number {
  buf.writeDoubleLE(e.term, off);
  buf.writeDoubleLE(e.index, off + 8);
  buf.writeUInt8(e.type, off + 16);
  buf.writeUInt32LE(e.data.byteLength, off + 17);
  buf.set(e.data, off + ENTRY_HEADER);
  return off + ENTRY_HEADER + e.data.byteLength;
}

/** Reads one entry at `off`; the entry's `data` is a view into `buf` (no copy). */
export function readEntry(buf: Buffer, off: number): { entry: Entry; next: number } {
  if (off + ENTRY_HEADER > buf.byteLength) throw new RangeError(`entry header truncated at byte ${off}`);
  const term = buf.readDoubleLE(off);
  const index = buf.readDoubleLE(off + 8);
  const type = buf.readUInt8(off + 16);
  const len = buf.readUInt32LE(off + 17);
  const start = off + ENTRY_HEADER;
  if (start + len > buf.byteLength) throw new RangeError(`entry data truncated at byte ${off} (length ${len})`);
  const data = buf.subarray(start, start + len);
  return { entry: { term, index, type, data }, next: start + len };
}

export function encodeEntry(e: Entry): Buffer {
  const buf = Buffer.allocUnsafe(entrySize(e));
  writeEntry(buf, 0, e);
  return buf;
}

export function decodeEntry(buf: Buffer): Entry {
  const { entry, next } = readEntry(buf, 0);
  if (next !== buf.byteLength) throw new RangeError(`entry has ${buf.byteLength - next} trailing bytes`);
  return entry;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/**
 * Encodes a message for the wire. With `omitSnapshotData` the snapshot metadata travels in the
 * header but its data does not (the transport streams it separately in chunks).
 */
export function encodeMessage(m: Message, omitSnapshotData = false): Buffer {
  const { entries, context, snapshot, ...rest } = m;
  const header: Record<string, unknown> = { ...rest };
  if (snapshot) header['snapshotMeta'] = snapshot.metadata;
  const headerBuf = Buffer.from(JSON.stringify(header), 'utf8');
  let size = 4 + headerBuf.byteLength + 4 + (context ? context.byteLength : 0) + 4 + 4;
  for (const e of entries) size += entrySize(e);
  const snapData = snapshot && !omitSnapshotData ? snapshot.data : undefined;
  if (snapData) size += snapData.byteLength;
  const buf = Buffer.allocUnsafe(size);
  let off = buf.writeUInt32LE(headerBuf.byteLength, 0);
  off += headerBuf.copy(buf, off);
  if (context) {
    off = buf.writeUInt32LE(context.byteLength, off);
    buf.set(context, off);
    off += context.byteLength;
  } else {
    off = buf.writeUInt32LE(ABSENT, off);
  }
  off = buf.writeUInt32LE(entries.length, off);
  for (const e of entries) off = writeEntry(buf, off, e);
  if (snapData) {
    off = buf.writeUInt32LE(snapData.byteLength, off);
    buf.set(snapData, off);
    off += snapData.byteLength;
  } else {
    off = buf.writeUInt32LE(ABSENT, off);
  }
  return buf;
}

/**
 * Decodes a message from the wire. When the header names a snapshot whose data was omitted, the
 * message's `snapshot.data` is `snapshotData` (or empty).
 * @throws RangeError on a truncated or malformed buffer.
 */
export function decodeMessage(buf: Buffer, snapshotData?: Uint8Array): Message {
  if (buf.byteLength < 4) throw new RangeError('message truncated');
  const hlen = buf.readUInt32LE(0);
  if (4 + hlen > buf.byteLength) throw new RangeError('message header truncated');
  const header = JSON.parse(buf.toString('utf8', 4, 4 + hlen)) as Record<string, unknown>;
  let off = 4 + hlen;
  const clen = buf.readUInt32LE(off);
  off += 4;
  let context: Uint8Array | undefined;
  if (clen !== ABSENT) {
    context = buf.subarray(off, off + clen);
    off += clen;
  }
  const n = buf.readUInt32LE(off);
  off += 4;
  const entries: Entry[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = readEntry(buf, off);
    entries[i] = r.entry;
    off = r.next;
  }
  const slen = buf.readUInt32LE(off);
  off += 4;
  const meta = header['snapshotMeta'] as SnapshotMetadata | undefined;
  delete header['snapshotMeta'];
  const m = header as unknown as Message;
  m.entries = entries;
  if (context) m.context = context;
  if (meta) {
    let data: Uint8Array;
    if (slen !== ABSENT) {
      data = buf.subarray(off, off + slen);
    } else {
      data = snapshotData ?? new Uint8Array(0);
    }
    const snap: Snapshot = { metadata: meta, data };
    m.snapshot = snap;
  }
  return m;
}

export function encodeJson(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

export function decodeJson<T>(b: Uint8Array): T {
  return JSON.parse(dec.decode(b)) as T;
}

export { u32 };
