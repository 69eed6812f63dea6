/**
 * Key wrapping for encryption at rest (docs/SECURITY.md): the managers' unlock key and the
 * key-encryption keys (KEKs) that wrap a node's data encryption key and private key.
 *
 * - Unlock key: `SWMKEY-1-` + base64 (standard alphabet, no padding) of 32 random bytes — the
 *   format of SwarmKit's `encryption.HumanReadableKey` (`manager/encryption/encryption.go`).
 * - KEK from an unlock key: HKDF-SHA256 of its 32 bytes (info `shoal kek v1`), so the key the user
 *   holds is never used directly as a cipher key.
 * - Wrapped key: AES-256-GCM, a fresh 96-bit nonce per wrap, additional data naming what is wrapped
 *   (so a wrapped DEK cannot be passed off as a wrapped node key); stored as
 *   base64(`0x01` · nonce · ciphertext · tag). A wrong KEK fails the GCM tag check: {@link WrongKeyError}.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { invalidArgument } from '@shoal/api';

export const UNLOCK_KEY_PREFIX = 'SWMKEY-1-';
/** Bytes of an unlock key, a KEK and a DEK. */
export const KEY_BYTES = 32;
const WRAP_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** The key given does not open what it was asked to (wrong unlock key, or another node's KEK). */
export class WrongKeyError extends Error {
  constructor(what: string) {
    super(`the key does not decrypt ${what}`);
    this.name = 'WrongKeyError';
  }
}

/** A fresh unlock key `SWMKEY-1-…` (`random` is for tests: 32 bytes). */
export function generateUnlockKey(random: Buffer = randomBytes(KEY_BYTES)): string {
  if (random.length !== KEY_BYTES) throw invalidArgument(`an unlock key has ${KEY_BYTES} bytes, got ${random.length}`);
  return UNLOCK_KEY_PREFIX + random.toString('base64').replace(/=+$/, '');
}

/**
 * The 32 bytes of an unlock key (surrounding blanks ignored).
 * @throws InvalidArgument (one line) when it is not `SWMKEY-1-` + 43 base64 characters.
 */
export function parseUnlockKey(text: string): Buffer {
  const s = (text ?? '').trim();
  const body = s.startsWith(UNLOCK_KEY_PREFIX) ? s.slice(UNLOCK_KEY_PREFIX.length) : '';
  const bytes = /^[A-Za-z0-9+/]{43}$/.test(body) ? Buffer.from(body, 'base64') : Buffer.alloc(0);
  if (bytes.length !== KEY_BYTES) {
    throw invalidArgument('invalid unlock key: expected SWMKEY-1-<43 base64 characters>, as `shoal swarm unlock-key` prints it');
  }
  return bytes;
}

/** The KEK an unlock key stands for (HKDF-SHA256). @throws InvalidArgument for a malformed key. */
export function kekFromUnlockKey(key: string): Buffer {
  return Buffer.from(hkdfSync('sha256', parseUnlockKey(key), Buffer.alloc(0), 'shoal kek v1', KEY_BYTES));
}

/** A fresh random key (a DEK, or a KEK kept on disk when autolock is off). */
export function randomKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** Encrypts `plain` under `kek` (AES-256-GCM) for storage; `what` is bound as additional data. */
export function wrapKey(kek: Buffer, plain: Buffer, what: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', kek, nonce);
  c.setAAD(Buffer.from(what));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([Buffer.from([WRAP_VERSION]), nonce, body, c.getAuthTag()]).toString('base64');
}

/**
 * Opens what {@link wrapKey} made with the same `kek` and `what`.
 * @throws WrongKeyError when the KEK (or `what`) is not the one it was wrapped with, or the data was altered.
 */
export function unwrapKey(kek: Buffer, wrapped: string, what: string): Buffer {
  const raw = Buffer.from(wrapped, 'base64');
  if (raw.length < 1 + NONCE_BYTES + TAG_BYTES || raw[0] !== WRAP_VERSION) throw new WrongKeyError(what);
  const nonce = raw.subarray(1, 1 + NONCE_BYTES);
  const tag = raw.subarray(raw.length - TAG_BYTES);
  const d = createDecipheriv('aes-256-gcm', kek, nonce);
  d.setAAD(Buffer.from(what));
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(raw.subarray(1 + NONCE_BYTES, raw.length - TAG_BYTES)), d.final()]);
  } catch {
    throw new WrongKeyError(what);
  }
}
