/**
 * Driver-level framing inside Raft entries and snapshots.
 *
 * - Normal entry data: `instance u32 LE · seq u32 LE · payload`. `instance` is random per
 *   process start of the proposing node, `seq` counts its proposals; together they let the
 *   proposer match the applied entry to its pending promise. The applier sees only `payload`.
 *   Empty entries are the leader's no-op (Raft §8) and are not passed to the applier.
 * - Snapshot data: `peersJsonLength u32 LE · peers JSON {id: "host:port"} · state-machine data`,
 *   so a member restarted or installed from a snapshot knows every peer's address.
 * - ConfChange `context`: JSON `{addr, req?}` (the peer's address; `req` = `instance:seq` of the
 *   proposer).
 */
import type { NodeId } from '@shoal/raft';

export const PROPOSAL_HEADER_BYTES = 8;

export function frameProposal(instance: number, seq: number, payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(PROPOSAL_HEADER_BYTES + payload.byteLength);
  b.writeUInt32LE(instance, 0);
  b.writeUInt32LE(seq, 4);
  b.set(payload, PROPOSAL_HEADER_BYTES);
  return b;
}

export function parseProposal(data: Uint8Array): { instance: number; seq: number; payload: Uint8Array } | undefined {
  if (data.byteLength < PROPOSAL_HEADER_BYTES) return undefined;
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { instance: b.readUInt32LE(0), seq: b.readUInt32LE(4), payload: b.subarray(PROPOSAL_HEADER_BYTES) };
}

export type PeerMap = Record<NodeId, string>;

export function wrapSnapshot(peers: PeerMap, state: Uint8Array): Buffer {
  const pj = Buffer.from(JSON.stringify(peers), 'utf8');
  const b = Buffer.allocUnsafe(4 + pj.byteLength + state.byteLength);
  b.writeUInt32LE(pj.byteLength, 0);
  pj.copy(b, 4);
  b.set(state, 4 + pj.byteLength);
  return b;
}

/** @throws RangeError on data that is not a driver snapshot. */
export function unwrapSnapshot(data: Uint8Array): { peers: PeerMap; state: Uint8Array } {
  if (data.byteLength === 0) return { peers: {}, state: data };
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.byteLength < 4) throw new RangeError(`snapshot data is ${b.byteLength} bytes, too short for its peer header`);
  const n = b.readUInt32LE(0);
  if (4 + n > b.byteLength) throw new RangeError(`snapshot peer header says ${n} bytes but only ${b.byteLength - 4} follow`);
  const peers = JSON.parse(b.toString('utf8', 4, 4 + n)) as PeerMap;
  return { peers, state: b.subarray(4 + n) };
}

export interface ConfContext {
  addr?: string;
  req?: string;
}

export function parseConfContext(ctx: string | undefined): ConfContext {
  if (!ctx) return {};
  try {
    const v = JSON.parse(ctx) as unknown;
    return typeof v === 'object' && v !== null ? (v as ConfContext) : {};
  } catch {
    return { addr: ctx };
  }
}
