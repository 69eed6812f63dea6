/**
 * Join tokens, byte-compatible with SwarmKit v1 (`ca/config.go` `GenerateJoinToken` /
 * `ParseJoinToken`):
 *
 *   SWMTKN-1-<D>-<S>
 *   D = base36(SHA-256 hex digest of the whole root CA PEM bundle), left-padded with '0' to 50 chars
 *   S = base36(16 random bytes), left-padded with '0' to 25 chars
 *
 * 9 + 50 + 1 + 25 = 85 characters. The token does not encode the role: the CA compares the
 * presented token in constant time with the cluster's manager token, then its worker token.
 * Both tokens share D; rotation replaces S only.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { invalidArgument, ShoalError } from '@shoal/api';
import type { NodeRole } from '@shoal/api';

export const JOIN_TOKEN_PREFIX = 'SWMTKN';
/** SwarmKit `base36DigestLen`. */
export const DIGEST_CHARS = 50;
/** SwarmKit `maxGeneratedSecretLength`. */
export const SECRET_CHARS = 25;
/** Length of a v1 token. */
export const JOIN_TOKEN_LENGTH = JOIN_TOKEN_PREFIX.length + 3 + DIGEST_CHARS + 1 + SECRET_CHARS;

const MALFORMED = `invalid join token: expected ${JOIN_TOKEN_PREFIX}-1-<${DIGEST_CHARS} chars>-<${SECRET_CHARS} chars>`;
const BASE36 = /^[0-9a-z]+$/;

export interface ParsedJoinToken {
  /** Token format version (always 1). */
  version: 1;
  /** SHA-256 of the root CA PEM bundle, 64 lowercase hex chars (no `sha256:` prefix). */
  caDigest: string;
  /** The 25-char base36 secret. */
  secret: string;
}

/** A pair of cluster join tokens (SwarmKit `JoinTokens`). */
export interface JoinTokens {
  worker: string;
  manager: string;
}

/** SHA-256 hex of the root CA PEM bundle exactly as given (the token's D, before base36). */
export function caDigest(rootPem: string | Buffer): string {
  return createHash('sha256').update(rootPem).digest('hex');
}

function toBase36(hex: string, width: number): string {
  return BigInt('0x' + hex).toString(36).padStart(width, '0');
}

/**
 * A fresh join token for the root CA bundle `rootPem` (the exact PEM text the CA serves). `secret`
 * (16 bytes) is for tests; default random.
 */
export function generateJoinToken(rootPem: string | Buffer, secret: Buffer = randomBytes(16)): string {
  if (secret.length !== 16) throw invalidArgument(`join token secret must be 16 bytes, got ${secret.length}`);
  return `${JOIN_TOKEN_PREFIX}-1-${toBase36(caDigest(rootPem), DIGEST_CHARS)}-${toBase36(secret.toString('hex'), SECRET_CHARS)}`;
}

/** Fresh worker and manager tokens for `rootPem` (cluster bootstrap). */
export function generateJoinTokens(rootPem: string | Buffer): JoinTokens {
  return { worker: generateJoinToken(rootPem), manager: generateJoinToken(rootPem) };
}

/**
 * Splits a token into version, CA digest (hex) and secret. Throws InvalidArgument
 * "invalid join token: expected SWMTKN-1-<50 chars>-<25 chars> (…)" naming what is wrong, without
 * echoing the secret.
 */
export function parseJoinToken(token: string): ParsedJoinToken {
  const bad = (why: string): ShoalError => invalidArgument(`${MALFORMED} (${why}); copy it again from 'shoal swarm join-token worker|manager' on a manager`);
  if (typeof token !== 'string') throw bad(`got ${typeof token}`);
  const parts = token.trim().split('-');
  if (parts[0] !== JOIN_TOKEN_PREFIX) throw bad(`does not start with ${JOIN_TOKEN_PREFIX}-`);
  if (parts[1] === '2') throw bad('version 2 (FIPS) tokens are not supported');
  if (parts[1] !== '1') throw bad(`unknown version ${JSON.stringify(parts[1] ?? '')}`);
  if (parts.length !== 4) throw bad(`${parts.length} dash-separated parts, expected 4`);
  const d = parts[2] ?? '';
  const s = parts[3] ?? '';
  if (d.length !== DIGEST_CHARS || !BASE36.test(d)) throw bad(`CA digest part has ${d.length} chars${BASE36.test(d) || !d ? '' : ' outside [0-9a-z]'}`);
  if (s.length !== SECRET_CHARS || !BASE36.test(s)) throw bad(`secret part has ${s.length} chars${BASE36.test(s) || !s ? '' : ' outside [0-9a-z]'}`);
  let n = 0n;
  for (const c of d) n = n * 36n + BigInt(parseInt(c, 36));
  if (n >= 1n << 256n) throw bad('CA digest part is larger than a SHA-256 digest');
  return { version: 1, caDigest: n.toString(16).padStart(64, '0'), secret: s };
}

/**
 * True when the root CA bundle `rootPem` (exact bytes as fetched) hashes to the digest in `token`.
 * A joiner calls this before trusting a CA it fetched over unauthenticated TLS. Throws on a malformed
 * token.
 */
export function verifyCaDigest(rootPem: string | Buffer, token: string): boolean {
  const want = Buffer.from(parseJoinToken(token).caDigest, 'hex');
  return timingSafeEqual(want, Buffer.from(caDigest(rootPem), 'hex'));
}

/**
 * Like `verifyCaDigest` but throws InvalidArgument
 * "remote CA does not match fingerprint. Expected: sha256:<hex>" (SwarmKit's wording) on mismatch.
 */
export function assertCaDigest(rootPem: string | Buffer, token: string): void {
  if (!verifyCaDigest(rootPem, token)) {
    throw invalidArgument(
      `remote CA does not match fingerprint. Expected: sha256:${parseJoinToken(token).caDigest}; check that the token and manager address belong to the same cluster`,
    );
  }
}

function ctEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/**
 * The role a presented join token grants: compares it in constant time with the manager token, then
 * the worker token (SwarmKit `ca/server.go` IssueNodeCertificate). Returns null when it matches
 * neither (rotated, other cluster, typo) — the caller answers "A valid join token is necessary to
 * join this cluster". Never throws.
 */
export function roleForToken(token: string, tokens: JoinTokens): NodeRole | null {
  if (typeof token !== 'string') return null;
  const t = token.trim();
  const isManager = ctEqual(t, tokens.manager);
  const isWorker = ctEqual(t, tokens.worker);
  if (isManager) return 'manager';
  if (isWorker) return 'worker';
  return null;
}

/** Replaces one role's token with a fresh secret (same CA digest); the old one stops matching at once. */
export function rotateJoinToken(tokens: JoinTokens, role: NodeRole, rootPem: string | Buffer): JoinTokens {
  return { ...tokens, [role]: generateJoinToken(rootPem) };
}
