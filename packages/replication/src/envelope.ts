/**
 * Driver-level framing inside Raft entries and snapshots.
 *
 * - Normal entry data: `instance u32 LE · seq u32 LE · payload`. `instance` is random per
 *   process start of the proposing node, `seq` counts its proposals; together they let the
 *   proposer match the applied entry to its pending promise. The applier sees only `payload`.
 *   Empty entries are the leader's no-op (Raft §8) and are not passed to the applier.
 * - Snapshot data: a membership header, then the state machine's bytes (see {@link wrapSnapshot}),
 *   so a member restarted or installed from a snapshot knows every peer's address and node, and
 *   the removed members.
 * - ConfChange `context`: JSON `{addr, nodeId, req?}` (membership.ts `ConfContext`).
 */
import type { NodeId } from '@shoal/raft';
import type { MembershipHeader } from './membership.js';

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

/**
 * Snapshot data: `headerJsonLength u32 LE · header JSON · state-machine data`. The header is the
 * membership at the snapshot's index (see membership.ts); versions before it wrote a bare
 * `{id: "host:port"}` map, still read.
 */
export function wrapSnapshot(header: MembershipHeader, state: Uint8Array): Buffer {
  const pj = Buffer.from(JSON.stringify({ v: 2, ...header }), 'utf8');
  const b = Buffer.allocUnsafe(4 + pj.byteLength + state.byteLength);
  b.writeUInt32LE(pj.byteLength, 0);
  pj.copy(b, 4);
  b.set(state, 4 + pj.byteLength);
  return b;
}

/** @throws RangeError on data that is not a driver snapshot. */
export function unwrapSnapshot(data: Uint8Array): { header: MembershipHeader; state: Uint8Array } {
  if (data.byteLength === 0) return { header: { peers: {}, nodes: {}, removed: [] }, state: data };
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.byteLength < 4) throw new RangeError(`snapshot data is ${b.byteLength} bytes, too short for its peer header`);
  const n = b.readUInt32LE(0);
  if (4 + n > b.byteLength) throw new RangeError(`snapshot peer header says ${n} bytes but only ${b.byteLength - 4} follow`);
  const h = JSON.parse(b.toString('utf8', 4, 4 + n)) as Partial<MembershipHeader> & { v?: number };
  const header: MembershipHeader = h.v === 2
    ? { peers: h.peers ?? {}, nodes: h.nodes ?? {}, removed: h.removed ?? [] }
    : { peers: h as unknown as PeerMap, nodes: {}, removed: [] };
  return { header, state: b.subarray(4 + n) };
}
