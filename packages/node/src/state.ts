/**
 * What a node keeps on disk under its data directory (mode 0600 files, 0700 directories):
 * `node.json` (identity), `certs/` (TLS material; a manager's key file and KEK, keys.ts), `raft/`
 * (a manager's Raft log, LevelDB, encrypted with its data key).
 * Files are replaced atomically (write to `.tmp`, rename).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { NodeRole } from '@shoal/api';
import type { TlsMaterial } from '@shoal/ca';
import type { NodeKeys } from './keys.js';

/** Who this node is; written once init/join succeeded (`<dataDir>/node.json`). */
export interface NodeState {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  advertiseAddr: string;
  listenAddr: string;
  /** Manager addresses (`host:port`) last known; workers dial these. */
  managers: string[];
  /**
   * A manager's Raft ID for its current membership: fresh at every init, join and promotion, so a
   * node that comes back is never confused with its earlier member. Absent on workers; state
   * written by versions before it used the node ID.
   */
  raftId?: string;
  /**
   * The Raft ID of this node's manager when it was removed from the Raft group and it turned into a
   * worker, until the leader has recorded it (`node.managerRemoved`); while set, a manager
   * certificate is not mistaken for a promotion.
   */
  removedRaftId?: string;
  /** Why this node stopped being a manager (shown by `swarm info`), until it is promoted again. */
  notice?: string;
}

export function statePath(dataDir: string): string {
  return path.join(dataDir, 'node.json');
}

export function loadState(dataDir: string): NodeState | undefined {
  const p = statePath(dataDir);
  if (!fs.existsSync(p)) return undefined;
  return JSON.parse(fs.readFileSync(p, 'utf8')) as NodeState;
}

export function saveState(dataDir: string, st: NodeState): void {
  writeAtomic(statePath(dataDir), JSON.stringify(st, null, 2));
}

/** This node's TLS material under `<dataDir>/certs` (root CA, node certificate, node key; mode 0600). */
export function certPaths(dataDir: string) {
  const dir = path.join(dataDir, 'certs');
  return { dir, root: path.join(dir, 'swarm-root-ca.pem'), cert: path.join(dir, 'swarm-node.crt'), key: path.join(dir, 'swarm-node.key') };
}

/**
 * Writes the TLS material. With `keys` of an autolocked manager the private key goes into its key
 * file, wrapped by the unlock key (docs/SECURITY.md); otherwise into `swarm-node.key`.
 */
export function saveMaterial(dataDir: string, m: TlsMaterial, keys?: NodeKeys): void {
  const p = certPaths(dataDir);
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  for (const [file, text] of [[p.root, m.rootPem], [p.cert, m.certPem]] as const) writeAtomic(file, text);
  if (!keys?.setNodeKey(m.keyPem)) writeAtomic(p.key, m.keyPem);
}

/** Reads the TLS material; the private key from `keys` when autolock keeps it there. */
export function loadMaterial(dataDir: string, keys?: NodeKeys): TlsMaterial {
  const p = certPaths(dataDir);
  const keyPem = keys?.nodeKeyPem() ?? fs.readFileSync(p.key, 'utf8');
  return { rootPem: fs.readFileSync(p.root, 'utf8'), certPem: fs.readFileSync(p.cert, 'utf8'), keyPem };
}

/** Removes the Raft data (a manager that stops being one; the next membership starts empty). */
export function wipeRaft(dataDir: string): void {
  fs.rmSync(path.join(dataDir, 'raft'), { recursive: true, force: true });
}

/** Removes everything of the swarm (failed init/join, leave). */
export function wipeAll(dataDir: string): void {
  fs.rmSync(statePath(dataDir), { force: true });
  wipeRaft(dataDir);
  fs.rmSync(certPaths(dataDir).dir, { recursive: true, force: true });
}

function writeAtomic(file: string, text: string): void {
  fs.writeFileSync(file + '.tmp', text, { mode: 0o600 });
  fs.renameSync(file + '.tmp', file);
}
