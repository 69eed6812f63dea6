/**
 * Encryption of the Raft records a manager persists (log entries, hard state, snapshot metadata and
 * chunks) with its data encryption key (DEK): AES-256-GCM, a fresh random 96-bit nonce per record,
 * the record's LevelDB key as additional data (a record moved to another key does not decrypt).
 * Record payload: `0x01` · nonce (12 bytes) · ciphertext · tag (16 bytes). See docs/SECURITY.md.
 *
 * Random nonces: the chance of a repeat stays below 2⁻³² for the first 2³² records under one DEK
 * (NIST SP 800-38D §8.3) — billions of writes, far beyond a manager's log.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Encrypts and decrypts record payloads; `keyId` names the DEK (stored in the clear with the data). */
export interface RecordCipher {
  /** A name for the key, never derived from it (random, as the node's key file records it). */
  readonly keyId: string;
  /** The sealed form of `plain` stored under LevelDB key `key`. */
  seal(key: string, plain: Uint8Array): Buffer;
  /** The plaintext of a payload {@link seal} made for `key`. @throws DecryptError when it does not open. */
  open(key: string, sealed: Uint8Array): Buffer;
}

/** A record did not decrypt with the key given: another DEK, or altered data. */
export class DecryptError extends Error {
  constructor(readonly key: string, keyId: string) {
    super(`raft record ${key} does not decrypt with data key ${keyId}`);
    this.name = 'DecryptError';
  }
}

const VERSION = 1;
const NONCE = 12;
const TAG = 16;

/** {@link RecordCipher} on AES-256-GCM (node:crypto). */
export class AesGcmCipher implements RecordCipher {
  constructor(
    private readonly dek: Buffer,
    readonly keyId: string,
  ) {
    if (dek.length !== 32) throw new RangeError(`a data encryption key has 32 bytes, got ${dek.length}`);
    if (!keyId) throw new RangeError('a data encryption key needs a key id');
  }

  seal(key: string, plain: Uint8Array): Buffer {
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', this.dek, nonce);
    c.setAAD(Buffer.from(key));
    const out = Buffer.allocUnsafe(1 + NONCE + plain.byteLength + TAG);
    out[0] = VERSION;
    nonce.copy(out, 1);
    let n = c.update(plain).copy(out, 1 + NONCE);
    n += c.final().copy(out, 1 + NONCE + n);
    c.getAuthTag().copy(out, 1 + NONCE + n);
    return out;
  }

  open(key: string, sealed: Uint8Array): Buffer {
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (buf.byteLength < 1 + NONCE + TAG || buf[0] !== VERSION) throw new DecryptError(key, this.keyId);
    const d = createDecipheriv('aes-256-gcm', this.dek, buf.subarray(1, 1 + NONCE));
    d.setAAD(Buffer.from(key));
    d.setAuthTag(buf.subarray(buf.byteLength - TAG));
    try {
      return Buffer.concat([d.update(buf.subarray(1 + NONCE, buf.byteLength - TAG)), d.final()]);
    } catch {
      throw new DecryptError(key, this.keyId);
    }
  }
}
