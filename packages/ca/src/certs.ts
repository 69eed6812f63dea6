/**
 * Cluster root CA and node certificates (ECDSA P-256, SHA-256 signatures).
 *
 * Identity is carried in the node certificate's subject, as in SwarmKit (`ca/certificates.go`,
 * `ca/config.go`): CN = node ID, OU = role (`swarm-manager` / `swarm-worker`), O = cluster ID.
 * The CA decides the subject; whatever the CSR asks for is ignored except its public key.
 * Validity defaults follow SwarmKit: root 20 years, node certificates 90 days, both backdated 1 h
 * against clock skew; renewal at a random point in 50–80 % of the lifetime.
 *
 * Generation uses `@peculiar/x509` on Node's WebCrypto; parsing and verification use Node's
 * synchronous `crypto.X509Certificate`.
 */
// @peculiar/x509 2.x resolves its services through tsyringe, which needs a Reflect metadata polyfill
// loaded before it (ESM evaluates imports in order).
import 'reflect-metadata';
import { createHash, createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { invalidArgument, newId } from '@shoal/api';
import type { NodeRole } from '@shoal/api';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const subtle = webcrypto.subtle;
const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;

const HOUR_MS = 3600_000;
/** SwarmKit `RootCAExpiration`: 20 years (`ca/certificates.go`). */
export const ROOT_CA_EXPIRY_MS = 630_720_000_000;
/** SwarmKit `DefaultNodeCertExpiration`: 90 days (2160 h). */
export const DEFAULT_NODE_CERT_EXPIRY_MS = 90 * 24 * HOUR_MS;
/** SwarmKit `MinNodeCertExpiration`: 1 h. */
export const MIN_NODE_CERT_EXPIRY_MS = HOUR_MS;
/** SwarmKit `CertBackdate`: certificates start 1 h in the past to tolerate clock skew. */
export const CERT_BACKDATE_MS = HOUR_MS;
/** Subject CN of the root CA and the DNS name managers carry for CA calls (SwarmKit `CARole`). */
export const CA_CN = 'swarm-ca';
/** Subject OU per role (SwarmKit `ManagerRole` / `WorkerRole`). */
export const ROLE_OU: Readonly<Record<NodeRole, string>> = { manager: 'swarm-manager', worker: 'swarm-worker' };
/** Extra DNS SAN every manager certificate carries, usable as a TLS server name. */
export const SHOAL_MANAGER_DNS = 'shoal-manager';

/** What a node certificate says about its holder. */
export interface CertificateInfo {
  /** Subject CN. */
  nodeId: string;
  /** From the subject OU. */
  role: NodeRole;
  /** Subject O. */
  clusterId: string;
  notBefore: Date;
  notAfter: Date;
  /** Uppercase hex, as Node prints it. */
  serialNumber: string;
}

/** A key pair in PEM: `keyPem` is PKCS#8 ("PRIVATE KEY"), `csrPem` a PKCS#10 request. */
export interface KeyAndCsr {
  keyPem: string;
  csrPem: string;
}

export interface RootCAOptions {
  /** Written as the root's subject O; also the default O of node certificates. */
  clusterId?: string;
  /** Root validity, ms. Default 20 years (SwarmKit). */
  expiryMs?: number;
  /** Issuance time (for tests). Default now. */
  now?: Date;
}

export interface IssueOptions {
  /** PKCS#10 request in PEM; its signature is checked, its subject ignored. */
  csrPem: string;
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  /** Validity, ms; at least 1 h. Default 90 days. */
  expiryMs?: number;
  /** Issuance time (for tests). Default now. */
  now?: Date;
}

function pemEncode(der: ArrayBuffer, label: string): string {
  return x509.PemConverter.encode(der, label) + '\n';
}

function pemBody(pem: string, label: string, what: string): ArrayBuffer {
  try {
    const parts = x509.PemConverter.decode(pem);
    const first = parts[0];
    if (!first) throw new Error('no PEM block');
    return first;
  } catch {
    throw invalidArgument(`${what} is not a PEM "${label}" block (got ${JSON.stringify(pem.slice(0, 30))}…); pass the PEM text itself`);
  }
}

/** Random positive 128-bit serial, hex. */
function serialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f | 0x01;
  return b.toString('hex');
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return pemEncode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKeyPem(keyPem: string): Promise<CryptoKey> {
  const der = pemBody(keyPem, 'PRIVATE KEY', 'private key');
  try {
    return await subtle.importKey('pkcs8', der, KEY_ALG, true, ['sign']);
  } catch (e) {
    throw invalidArgument(`private key is not a PKCS#8 ECDSA P-256 key (${(e as Error).message}); generate it with createKeyAndCsr()`);
  }
}

function checkName(value: string, what: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(value)) {
    throw invalidArgument(`invalid ${what} ${JSON.stringify(value)}: use 1-128 characters [A-Za-z0-9._-]`);
  }
}

function parseNodeX509(pem: string, what = 'certificate'): NodeX509 {
  try {
    return new NodeX509(pem);
  } catch (e) {
    throw invalidArgument(`${what} is not a PEM X.509 certificate (${(e as Error).message}); pass the PEM text itself`);
  }
}

/** Subject fields of a Node `X509Certificate` ("CN=a\nOU=b\nO=c"). */
function subjectFields(cert: NodeX509): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of cert.subject.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0 && !m.has(line.slice(0, i))) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

function spkiOf(keyOrCert: string | NodeX509): Buffer {
  const pub = typeof keyOrCert === 'string' ? createPublicKey(createPrivateKey(keyOrCert)) : keyOrCert.publicKey;
  return pub.export({ type: 'spki', format: 'der' });
}

/**
 * The cluster's root certificate authority: a self-signed CA certificate (CN `swarm-ca`) and its
 * private key. Holds the signing key in memory; only managers load it.
 */
export class RootCA {
  private constructor(
    /** Root certificate, PEM. This exact text is the trust bundle hashed into join tokens. */
    readonly certPem: string,
    /** PKCS#8 private key, PEM. */
    readonly keyPem: string,
    private readonly key: CryptoKey,
    private readonly cert: x509.X509Certificate,
  ) {}

  /** Creates a new root: fresh P-256 key, self-signed CA certificate valid `expiryMs` (default 20 years). */
  static async create(opts: RootCAOptions = {}): Promise<RootCA> {
    const expiryMs = opts.expiryMs ?? ROOT_CA_EXPIRY_MS;
    if (!(expiryMs >= HOUR_MS)) throw invalidArgument(`root CA expiry ${expiryMs} ms is too short; use at least ${HOUR_MS} ms (1 h)`);
    if (opts.clusterId !== undefined) checkName(opts.clusterId, 'cluster ID');
    const now = opts.now ?? new Date();
    const keys = (await subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const name = opts.clusterId ? `CN=${CA_CN}, O=${opts.clusterId}` : `CN=${CA_CN}`;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialHex(),
      name,
      notBefore: new Date(now.getTime() - CERT_BACKDATE_MS),
      notAfter: new Date(now.getTime() + expiryMs),
      signingAlgorithm: SIGN_ALG,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const certPem = cert.toString('pem') + '\n';
    return new RootCA(certPem, await exportKeyPem(keys.privateKey), keys.privateKey, cert);
  }

  /**
   * Loads a root from PEM. Throws InvalidArgument if either PEM is malformed, the certificate is not
   * a CA, or the key does not belong to the certificate.
   */
  static async load(certPem: string, keyPem: string): Promise<RootCA> {
    const ncert = parseNodeX509(certPem, 'root CA certificate');
    if (!ncert.ca) throw invalidArgument(`root CA certificate (subject ${ncert.subject.replace(/\n/g, ', ')}) is not a CA certificate; pass the cluster's root certificate`);
    const key = await importKeyPem(keyPem);
    if (!spkiOf(keyPem).equals(spkiOf(ncert))) {
      throw invalidArgument('root CA key does not match the root CA certificate; pass the key that was created with it');
    }
    return new RootCA(certPem, keyPem, key, new x509.X509Certificate(certPem));
  }

  /** SHA-256 hex digest of `certPem` (the join-token CA digest). */
  get digest(): string {
    return createHash('sha256').update(this.certPem).digest('hex');
  }

  /** Signs a certificate with this root (used by `issueNodeCertificate`). */
  async sign(params: { subject: string; publicKey: CryptoKey; notBefore: Date; notAfter: Date; extensions: x509.Extension[] }): Promise<string> {
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialHex(),
      subject: params.subject,
      issuer: this.cert.subject,
      notBefore: params.notBefore,
      notAfter: params.notAfter,
      signingAlgorithm: SIGN_ALG,
      publicKey: params.publicKey,
      signingKey: this.key,
      extensions: [
        ...params.extensions,
        await x509.AuthorityKeyIdentifierExtension.create(this.cert),
      ],
    });
    return cert.toString('pem') + '\n';
  }
}

/**
 * Issues a node certificate from a CSR: subject CN=nodeId, OU=`swarm-manager`|`swarm-worker`,
 * O=clusterId; DNS SANs [OU, nodeId] plus `swarm-ca` and `shoal-manager` for managers (SwarmKit
 * `PrepareCSR` adds `swarm-ca` to managers); key usage digitalSignature+keyEncipherment, extended key
 * usage serverAuth+clientAuth; validity `expiryMs` (default 90 days, minimum 1 h), backdated 1 h.
 * Returns the certificate PEM. Throws InvalidArgument for a malformed or badly signed CSR, a bad role,
 * node ID or cluster ID, or too short an expiry.
 */
export async function issueNodeCertificate(root: RootCA, opts: IssueOptions): Promise<string> {
  checkName(opts.nodeId, 'node ID');
  checkName(opts.clusterId, 'cluster ID');
  const ou = ROLE_OU[opts.role];
  if (!ou) throw invalidArgument(`invalid role ${JSON.stringify(opts.role)}: use "manager" or "worker"`);
  const expiryMs = opts.expiryMs ?? DEFAULT_NODE_CERT_EXPIRY_MS;
  if (!(expiryMs >= MIN_NODE_CERT_EXPIRY_MS)) {
    throw invalidArgument(`node certificate expiry ${expiryMs} ms is too short; use at least ${MIN_NODE_CERT_EXPIRY_MS} ms (1 h)`);
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(opts.csrPem);
  } catch (e) {
    throw invalidArgument(`CSR is not a PEM PKCS#10 request (${(e as Error).message}); create it with createKeyAndCsr()`);
  }
  if (!(await csr.verify())) throw invalidArgument('CSR signature does not verify; create it again with createKeyAndCsr()');
  const alg = csr.publicKey.algorithm as webcrypto.EcKeyAlgorithm;
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
    throw invalidArgument(`CSR key is ${alg.name}${alg.namedCurve ? ' ' + alg.namedCurve : ''}; use an ECDSA P-256 key (createKeyAndCsr())`);
  }
  const publicKey = await csr.publicKey.export(KEY_ALG, ['verify']);
  const now = opts.now ?? new Date();
  const dns = opts.role === 'manager' ? [ou, opts.nodeId, CA_CN, SHOAL_MANAGER_DNS] : [ou, opts.nodeId];
  return root.sign({
    subject: `CN=${opts.nodeId}, OU=${ou}, O=${opts.clusterId}`,
    publicKey,
    notBefore: new Date(now.getTime() - CERT_BACKDATE_MS),
    notAfter: new Date(now.getTime() + expiryMs),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(dns.map((value) => ({ type: 'dns' as const, value }))),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
}

/**
 * Generates a node key pair (ECDSA P-256) and a CSR signed by it. The CSR subject is CN=nodeId (or a
 * fresh 25-char ID) — informational only, the CA sets the real subject.
 */
export async function createKeyAndCsr(nodeId: string = newId()): Promise<KeyAndCsr> {
  checkName(nodeId, 'node ID');
  const keys = (await subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${nodeId}`, keys, signingAlgorithm: SIGN_ALG });
  return { keyPem: await exportKeyPem(keys.privateKey), csrPem: csr.toString('pem') + '\n' };
}

function roleOfOu(ou: string | undefined): NodeRole | undefined {
  if (ou === ROLE_OU.manager) return 'manager';
  if (ou === ROLE_OU.worker) return 'worker';
  return undefined;
}

function infoOf(cert: NodeX509): CertificateInfo {
  const f = subjectFields(cert);
  const nodeId = f.get('CN') ?? '';
  const role = roleOfOu(f.get('OU'));
  if (!role) {
    throw invalidArgument(`certificate ${JSON.stringify(nodeId)} has OU ${JSON.stringify(f.get('OU') ?? '')}, not a node role; expected ${ROLE_OU.manager} or ${ROLE_OU.worker}`);
  }
  return {
    nodeId,
    role,
    clusterId: f.get('O') ?? '',
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serialNumber: cert.serialNumber,
  };
}

/**
 * Reads the identity out of a node certificate (first certificate of a PEM). Does not verify it.
 * Throws InvalidArgument for malformed PEM or an OU that is not a node role.
 */
export function parseCertificate(pem: string): CertificateInfo {
  return infoOf(parseNodeX509(pem));
}

/** Same as `parseCertificate`, from DER (e.g. a TLS peer certificate's `raw`). */
export function parseCertificateDer(der: Buffer): CertificateInfo {
  let cert: NodeX509;
  try {
    cert = new NodeX509(der);
  } catch (e) {
    throw invalidArgument(`peer certificate is not DER X.509 (${(e as Error).message})`);
  }
  return infoOf(cert);
}

/**
 * Verifies that `certPem` was signed by the root `rootPem` and is valid at `now` (default now), and,
 * with `keyPem`, that it certifies that key (a joiner's check that the issued cert matches its CSR).
 * Returns its identity. Throws InvalidArgument naming the failed check.
 */
export function verifyNodeCertificate(rootPem: string, certPem: string, opts: { now?: Date; keyPem?: string } = {}): CertificateInfo {
  const root = parseNodeX509(rootPem, 'root CA certificate');
  const cert = parseNodeX509(certPem);
  const info = infoOf(cert);
  if (!cert.checkIssued(root) || !cert.verify(root.publicKey)) {
    throw invalidArgument(`certificate of node ${info.nodeId} is not signed by this cluster's root CA; request a new one from a manager`);
  }
  const now = opts.now ?? new Date();
  if (now < info.notBefore || now > info.notAfter) {
    throw invalidArgument(`certificate of node ${info.nodeId} is not valid at ${now.toISOString()} (valid ${info.notBefore.toISOString()} to ${info.notAfter.toISOString()}); renew it`);
  }
  if (opts.keyPem !== undefined && !spkiOf(opts.keyPem).equals(spkiOf(cert))) {
    throw invalidArgument(`certificate of node ${info.nodeId} does not match the local private key; request it again with this key's CSR`);
  }
  return info;
}

/** Deterministic uniform [0,1) from a seed string (SHA-256 → 48 bits). */
function unitFromSeed(seed: string): number {
  const h = createHash('sha256').update(seed).digest();
  return h.readUIntBE(0, 6) / 2 ** 48;
}

export interface RenewalOptions {
  /**
   * Seed of the random point in the window. Default: the certificate's serial number, so one
   * certificate always has the same renewal time (stable across calls and restarts).
   */
  seed?: string;
  /** Window as fractions of the lifetime. Default [0.5, 0.8] (SwarmKit `calculateRandomExpiry`). */
  window?: readonly [number, number];
}

/**
 * When a certificate should be renewed: notBefore + lifetime × (lo + (hi−lo) × u), u ∈ [0,1) drawn
 * from the seed. Lifetime is notAfter − notBefore. Source: SwarmKit `ca/config.go`
 * `calculateRandomExpiry` (50–80 %).
 */
export function renewalTime(certPem: string, opts: RenewalOptions = {}): Date {
  const cert = parseNodeX509(certPem);
  const [lo, hi] = opts.window ?? [0.5, 0.8];
  if (!(lo >= 0 && hi <= 1 && lo <= hi)) throw invalidArgument(`invalid renewal window [${lo}, ${hi}]; use fractions 0 ≤ lo ≤ hi ≤ 1`);
  const nb = new Date(cert.validFrom).getTime();
  const na = new Date(cert.validTo).getTime();
  const u = unitFromSeed(opts.seed ?? cert.serialNumber);
  return new Date(nb + (na - nb) * (lo + (hi - lo) * u));
}

/** True when `now` (ms or Date; default now) is at or past `renewalTime` — including expired certificates. */
export function needsRenewal(certPem: string, now: Date | number = Date.now(), opts: RenewalOptions = {}): boolean {
  const t = typeof now === 'number' ? now : now.getTime();
  return t >= renewalTime(certPem, opts).getTime();
}

/**
 * Denylist check: true when `nodeId` is among the removed nodes (SwarmKit `Cluster.RemovedNodes`).
 * A removed node's certificate stays cryptographically valid until expiry, so every authorizer
 * must consult this list.
 */
export function isRevoked(nodeId: string, removedNodes: Iterable<string> | ReadonlySet<string>): boolean {
  if (removedNodes instanceof Set) return removedNodes.has(nodeId);
  for (const id of removedNodes) if (id === nodeId) return true;
  return false;
}
