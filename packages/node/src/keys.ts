/**
 * A manager's keys at rest (docs/SECURITY.md), under `<dataDir>/certs/`:
 *
 * - `swarm-keys.json` (mode 0600) — the key file: the Raft data encryption key (DEK) wrapped by
 *   the key-encryption key (KEK), whether the KEK is the swarm's unlock key (`locked`, autolock on)
 *   or the local KEK file, the cluster version that KEK came from, and — with autolock on — the
 *   node's TLS private key wrapped by the same KEK (`swarm-node.key` is then absent);
 * - `swarm-kek.key` (mode 0600) — the local KEK, only while autolock is off (Docker keeps its
 *   unlocked keys on disk as well).
 *
 * Every change of the key file is one atomic, fsynced rename, so a `kill -9` leaves either the old
 * or the new file: the DEK always opens with one of the two KEKs. When autolock is turned off the
 * new KEK file (and the plain node key) are written before the key file that needs them; when it is
 * turned on, they are deleted after it. Leftovers of a cut-short change are removed on the next start.
 * Workers hold no key file (their node key stays plain, as in Docker: only managers lock).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { kekFromUnlockKey, randomKey, unwrapKey, wrapKey } from '@shoal/ca';
import { certPaths } from './state.js';

const DEK_AAD = 'shoal raft dek';
const NODE_KEY_AAD = 'shoal node key';

/** The key file as stored. */
interface KeyFile {
  v: 1;
  /** true: the KEK is the unlock key (autolock on); false: the KEK is `swarm-kek.key`. */
  locked: boolean;
  /** `meta.version` of the cluster object the KEK was taken from (0: chosen locally). */
  kekVersion: number;
  dek: { id: string; wrapped: string };
  /** With `locked`: the node's TLS private key (PEM), wrapped by the KEK. */
  nodeKey?: string;
}

/** A data encryption key in the clear (in memory only). */
export interface DataKey {
  id: string;
  key: Buffer;
}

/** Where the key file and the local KEK live. */
export function keyPaths(dataDir: string) {
  const { dir } = certPaths(dataDir);
  return { file: path.join(dir, 'swarm-keys.json'), kek: path.join(dir, 'swarm-kek.key') };
}

/** What {@link NodeKeys.follow} did. */
export type KekChange = 'locked' | 'unlocked' | 'rotated' | undefined;

/** The manager's key file and, once opened, its KEK and DEK in memory. */
export class NodeKeys {
  private file: KeyFile | undefined;
  private kek: Buffer | undefined;
  private dataKey: DataKey | undefined;

  private constructor(private readonly dataDir: string) {}

  /**
   * Reads the key file of `dataDir` (if any) and removes what a cut-short change left: a KEK file
   * beside a locked key file, a plain node key beside a wrapped one.
   * @throws Error when the key file is unreadable.
   */
  static load(dataDir: string): NodeKeys {
    const k = new NodeKeys(dataDir);
    const p = keyPaths(dataDir);
    // Temporary files of a write cut short (writeSecretFile): never read, so never needed.
    for (const f of [p.file, p.kek, certPaths(dataDir).key]) fs.rmSync(`${f}.tmp`, { force: true });
    if (fs.existsSync(p.file)) {
      const f = JSON.parse(fs.readFileSync(p.file, 'utf8')) as KeyFile;
      if (f.v !== 1 || !f.dek?.wrapped) throw new Error(`unreadable key file ${p.file}; restore it from a backup or leave the swarm (\`swarm leave --force\`)`);
      k.file = f;
      if (f.locked) {
        fs.rmSync(p.kek, { force: true });
        if (f.nodeKey) fs.rmSync(certPaths(dataDir).key, { force: true });
      }
    }
    return k;
  }

  /** True when this node has a manager key file. */
  get exists(): boolean {
    return !!this.file;
  }

  /** True while autolock is on for this node (its KEK is the unlock key). */
  get autolocked(): boolean {
    return !!this.file?.locked;
  }

  /** True when the keys are wrapped by the unlock key and it has not been given yet (`swarm unlock`). */
  get locked(): boolean {
    return !!this.file?.locked && !this.kek;
  }

  /**
   * Opens the key file with the local KEK (autolock off). Nothing to do without a key file.
   * @throws Error when the KEK file is missing or does not open the DEK.
   */
  openWithLocalKek(): void {
    if (!this.file || this.file.locked || this.kek) return;
    const p = keyPaths(this.dataDir);
    let kek: Buffer;
    try {
      kek = Buffer.from(fs.readFileSync(p.kek, 'utf8').trim(), 'base64');
    } catch {
      throw new Error(`the key-encryption key ${p.kek} is missing; restore it from a backup or leave the swarm (\`swarm leave --force\`)`);
    }
    this.dataKey = { id: this.file.dek.id, key: unwrapKey(kek, this.file.dek.wrapped, DEK_AAD) };
    this.kek = kek;
  }

  /**
   * Opens the key file with the swarm's unlock key (`swarm unlock`).
   * @throws InvalidArgument for a malformed key; WrongKeyError when it is not the key the DEK is wrapped with.
   */
  unlock(unlockKey: string): void {
    if (!this.file?.locked) return;
    const kek = kekFromUnlockKey(unlockKey);
    const dek = unwrapKey(kek, this.file.dek.wrapped, DEK_AAD);
    this.dataKey = { id: this.file.dek.id, key: dek };
    this.kek = kek;
  }

  /**
   * Makes sure this node has a manager key file: a fresh DEK wrapped by a fresh local KEK (the
   * swarm's autolock setting is followed once the cluster object is known, {@link follow}).
   */
  ensureManager(): void {
    if (this.file) {
      this.openWithLocalKek();
      return;
    }
    const kek = randomKey();
    const dek: DataKey = { id: randomBytes(8).toString('hex'), key: randomKey() };
    writeSecretFile(keyPaths(this.dataDir).kek, `${kek.toString('base64')}\n`);
    this.write({ v: 1, locked: false, kekVersion: 0, dek: { id: dek.id, wrapped: wrapKey(kek, dek.key, DEK_AAD) } });
    this.kek = kek;
    this.dataKey = dek;
  }

  /** The DEK, in the clear. @throws Error when the key file is not open. */
  dek(): DataKey {
    if (!this.dataKey) throw new Error('the manager keys are not open (locked?)');
    return this.dataKey;
  }

  /** The node's TLS private key when autolock keeps it in the key file; undefined otherwise. */
  nodeKeyPem(): string | undefined {
    if (!this.file?.nodeKey) return undefined;
    if (!this.kek) throw new Error('the manager keys are locked');
    return unwrapKey(this.kek, this.file.nodeKey, NODE_KEY_AAD).toString('utf8');
  }

  /**
   * Stores a new node private key (certificate renewal) when autolock keeps it in the key file.
   * @returns false when the key belongs in the plain `swarm-node.key` (autolock off): the caller writes it.
   */
  setNodeKey(pem: string): boolean {
    if (!this.file?.locked || !this.kek) return false;
    this.write({ ...this.file, nodeKey: wrapKey(this.kek, Buffer.from(pem), NODE_KEY_AAD) });
    return true;
  }

  /**
   * Follows the swarm's autolock setting (called whenever the cluster object may have changed):
   * `unlockKey` is the cluster's key while autolock is on (undefined when off), `version` the
   * cluster object's `meta.version`. The DEK and node key are re-wrapped when the wanted KEK
   * differs from the current one and `version` is newer than the one the current KEK came from — so
   * replaying older cluster states (log replay after a restart) never goes back to an older key.
   * `nodeKeyPem` is the node's current private key (moved into the key file when locking, written
   * back to `swarm-node.key` when unlocking).
   */
  follow(unlockKey: string | undefined, version: number, nodeKeyPem: string): KekChange {
    const f = this.file;
    if (!f || !this.kek || !this.dataKey || version <= f.kekVersion) return undefined;
    const p = keyPaths(this.dataDir);
    if (unlockKey) {
      const kek = kekFromUnlockKey(unlockKey);
      if (f.locked && kek.equals(this.kek)) return undefined;
      this.write({
        v: 1, locked: true, kekVersion: version,
        dek: { id: this.dataKey.id, wrapped: wrapKey(kek, this.dataKey.key, DEK_AAD) },
        nodeKey: wrapKey(kek, Buffer.from(nodeKeyPem), NODE_KEY_AAD),
      });
      const was = f.locked;
      this.kek = kek;
      fs.rmSync(p.kek, { force: true });
      fs.rmSync(certPaths(this.dataDir).key, { force: true });
      return was ? 'rotated' : 'locked';
    }
    if (!f.locked) return undefined;
    const kek = randomKey();
    writeSecretFile(p.kek, `${kek.toString('base64')}\n`);
    writeSecretFile(certPaths(this.dataDir).key, nodeKeyPem);
    this.write({ v: 1, locked: false, kekVersion: version, dek: { id: this.dataKey.id, wrapped: wrapKey(kek, this.dataKey.key, DEK_AAD) } });
    this.kek = kek;
    return 'unlocked';
  }

  /**
   * Forgets the manager keys (the node stops being a manager): writes `nodeKeyPem` as the plain
   * node key (workers are never locked), then removes the key file and the local KEK.
   */
  drop(nodeKeyPem: string | undefined): void {
    const p = keyPaths(this.dataDir);
    if (nodeKeyPem && this.file?.nodeKey) writeSecretFile(certPaths(this.dataDir).key, nodeKeyPem);
    fs.rmSync(p.file, { force: true });
    fs.rmSync(p.kek, { force: true });
    this.file = undefined;
    this.kek = undefined;
    this.dataKey = undefined;
  }

  private write(f: KeyFile): void {
    writeSecretFile(keyPaths(this.dataDir).file, JSON.stringify(f, null, 2));
    this.file = f;
  }
}

/** Writes `text` to `file` atomically and durably (temp file, fsync, rename, fsync of the directory), mode 0600. */
export function writeSecretFile(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  let dfd: number | undefined;
  try {
    dfd = fs.openSync(path.dirname(file), 'r');
    fs.fsyncSync(dfd);
  } catch {
    // a file system that cannot fsync a directory: the rename is still atomic
  } finally {
    if (dfd !== undefined) fs.closeSync(dfd);
  }
}
