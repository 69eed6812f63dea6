/**
 * Mutual TLS for `@grpc/grpc-js` from the cluster's PEM material, plus peer identity and
 * authorization helpers for handlers.
 *
 * Model (SwarmKit `ca/auth.go`, `ca/config.go`): every node holds a certificate signed by the
 * cluster root; its subject says who it is (CN node ID, OU role, O cluster). Servers trust only
 * the cluster root; clients accept any server certificate signed by the cluster root whose OU is
 * the expected role — node IDs are not host names, so the host-name check is replaced.
 *
 * The manager port serves joiners that have no certificate yet (CA.GetRootCACertificate,
 * NodeCA.IssueNodeCertificate/NodeCertificateStatus), so shoald binds it with
 * `requireClientCert: false` ("verify if given", SwarmKit's `tls.VerifyClientCertIfGiven`) and every
 * other handler calls `authorizePeer`. grpc-js 1.14 exposes the verified peer certificate as
 * `call.getAuthContext().sslPeerCertificate`; it is only set when the TLS socket is `authorized`
 * (chain verified against our root), so an unverified certificate never yields an identity.
 */
import { credentials as grpcCredentials, experimental, ServerCredentials, status } from '@grpc/grpc-js';
import type { ChannelCredentials } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { isRevoked, parseCertificateDer, ROLE_OU } from './certs.js';
import type { CertificateInfo } from './certs.js';
import type { NodeRole } from '@shoal/api';

/**
 * Channel options for clients of a manager: TLS server name (SNI) `swarm-manager` instead of the
 * target IP (grpc-js otherwise sets an IP as ServerName, which Node deprecates, DEP0123). Our
 * `checkServerIdentity` ignores the name either way.
 */
export const MANAGER_CHANNEL_OPTIONS: Readonly<Record<string, string>> = { 'grpc.ssl_target_name_override': 'swarm-manager' };

/** A node's TLS material, all PEM: the cluster root bundle, its certificate, its PKCS#8 key. */
export interface TlsMaterial {
  rootPem: string;
  certPem: string;
  keyPem: string;
}

type CaListener = experimental.CaCertificateUpdateListener;
type IdListener = experimental.IdentityCertificateUpdateListener;

/**
 * Swappable TLS material for a gRPC server: `update()` after a certificate renewal or root rotation
 * and new connections use the new material (existing connections are kept). Implements grpc-js's
 * experimental `CertificateProvider` for both the CA and the identity role.
 */
export class TlsIdentity implements experimental.CertificateProvider {
  private caListeners = new Set<CaListener>();
  private idListeners = new Set<IdListener>();
  private current: TlsMaterial;

  constructor(material: TlsMaterial) {
    this.current = { ...material };
  }

  get material(): TlsMaterial {
    return { ...this.current };
  }

  /** Replaces some or all of the material and notifies servers using it. */
  update(material: Partial<TlsMaterial>): void {
    this.current = { ...this.current, ...material };
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.idListeners) l(this.idUpdate());
  }

  private caUpdate(): experimental.CaCertificateUpdate {
    return { caCertificate: Buffer.from(this.current.rootPem) };
  }

  private idUpdate(): experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(this.current.certPem), privateKey: Buffer.from(this.current.keyPem) };
  }

  // The first update is delivered on a microtask: grpc-js registers its server watcher only after
  // adding the provider listeners, so a synchronous first update would be lost.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => this.caListeners.has(listener) && listener(this.caUpdate()));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdListener): void {
    this.idListeners.add(listener);
    queueMicrotask(() => this.idListeners.has(listener) && listener(this.idUpdate()));
  }

  removeIdentityCertificateListener(listener: IdListener): void {
    this.idListeners.delete(listener);
  }
}

export interface ServerTlsOptions {
  /**
   * true (default): the handshake fails for a client without a certificate signed by the cluster
   * root. false: a certificate is requested and verified if given, clients without one connect
   * (for the join RPCs) and get no identity from `peerIdentity`.
   */
  requireClientCert?: boolean;
}

/**
 * gRPC server credentials for mutual TLS. Pass a `TlsIdentity` to be able to swap certificates on a
 * running server; plain material is wrapped in one.
 */
export function serverCredentials(source: TlsMaterial | TlsIdentity, opts: ServerTlsOptions = {}): ServerCredentials {
  const identity = source instanceof TlsIdentity ? source : new TlsIdentity(source);
  // grpc-js names the first two parameters the other way round from its constructor; one object
  // serving both roles makes the order irrelevant.
  return experimental.createCertificateProviderServerCredentials(identity, identity, opts.requireClientCert ?? true);
}

function subjectField(subject: PeerCertificate['subject'] | undefined, key: 'CN' | 'OU' | 'O'): string | undefined {
  const v = (subject as unknown as Record<string, string | string[] | undefined> | undefined)?.[key];
  return Array.isArray(v) ? v[0] : v;
}

export interface ClientTlsOptions {
  /** Role the server's certificate must carry (OU). Default 'manager': only managers serve gRPC. */
  serverRole?: NodeRole | 'any';
  /** If set, the server's certificate O must equal it. */
  clusterId?: string;
}

/**
 * Server-identity check replacing the host-name check: the chain was already verified against the
 * cluster root by TLS; this checks the certificate's OU (and O). Returns an Error to refuse.
 */
export function clusterServerIdentityCheck(opts: ClientTlsOptions = {}): (hostname: string, cert: PeerCertificate) => Error | undefined {
  const role = opts.serverRole ?? 'manager';
  return (hostname, cert) => {
    const ou = subjectField(cert.subject, 'OU');
    const cn = subjectField(cert.subject, 'CN') ?? '?';
    if (role !== 'any' && ou !== ROLE_OU[role]) {
      return new Error(`server ${hostname} presented the certificate of node ${cn} with OU ${ou ?? '(none)'}; expected ${ROLE_OU[role]}`);
    }
    if (role === 'any' && ou !== ROLE_OU.manager && ou !== ROLE_OU.worker) {
      return new Error(`server ${hostname} presented a certificate (CN ${cn}) that is not a cluster node certificate`);
    }
    if (opts.clusterId !== undefined && subjectField(cert.subject, 'O') !== opts.clusterId) {
      return new Error(`server ${hostname} belongs to cluster ${subjectField(cert.subject, 'O') ?? '(none)'}, not ${opts.clusterId}`);
    }
    return undefined;
  };
}

/** gRPC channel credentials for mutual TLS: trusts only the cluster root, presents the node's certificate. */
export function clientCredentials(material: TlsMaterial, opts: ClientTlsOptions = {}): ChannelCredentials {
  return grpcCredentials.createSsl(Buffer.from(material.rootPem), Buffer.from(material.keyPem), Buffer.from(material.certPem), {
    checkServerIdentity: clusterServerIdentityCheck(opts),
  });
}

/**
 * Channel credentials for a node that has the root but no certificate yet (calling
 * NodeCA.IssueNodeCertificate / NodeCertificateStatus): TLS verified against `rootPem`, no client
 * certificate. The server must be bound with `requireClientCert: false`.
 */
export function rootTrustCredentials(rootPem: string, opts: ClientTlsOptions = {}): ChannelCredentials {
  return grpcCredentials.createSsl(Buffer.from(rootPem), null, null, { checkServerIdentity: clusterServerIdentityCheck(opts) });
}

/**
 * Channel credentials that accept ANY server certificate (SwarmKit `InsecureSkipVerify` in
 * `GetRemoteCA`). Only for CA.GetRootCACertificate during join; the fetched bundle must then pass
 * `assertCaDigest(bundle, token)` before anything else is trusted.
 */
export function bootstrapCredentials(): ChannelCredentials {
  return grpcCredentials.createSsl(null, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined });
}

/** Who is calling: the verified client certificate's identity, plus the DER for pinning/logging. */
export interface PeerIdentity extends CertificateInfo {
  der: Buffer;
}

/** The minimal part of a grpc-js server call this module reads. */
export interface CallWithAuthContext {
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * The caller's identity from its verified TLS client certificate, or null when the connection has
 * none (no TLS, no client certificate, or one not signed by the server's root). Throws
 * InvalidArgument if the verified certificate is not a node certificate (bad OU).
 */
export function peerIdentity(call: CallWithAuthContext): PeerIdentity | null {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (!cert?.raw) return null;
  return { ...parseCertificateDer(cert.raw), der: cert.raw };
}

/** A refused caller; `grpcCode` is UNAUTHENTICATED (16) or PERMISSION_DENIED (7). */
export class PeerAuthError extends Error {
  constructor(readonly grpcCode: status, message: string) {
    super(message);
    this.name = 'PeerAuthError';
  }
  /** `{code, details}` ready for a grpc-js callback / `call.emit('error', …)`. */
  toGrpc(): { code: status; details: string } {
    return { code: this.grpcCode, details: this.message };
  }
}

export interface AuthorizeOptions {
  /** Roles allowed to call (SwarmKit `AuthorizeOrgAndRole`). */
  roles: readonly NodeRole[];
  /** The caller's O must equal it. */
  clusterId?: string;
  /** Node IDs removed from the cluster (denylist); their certificates are refused. */
  removedNodes?: Iterable<string> | ReadonlySet<string>;
  /** Refuse a certificate past notAfter at this time. TLS already checks validity at handshake; default now. */
  now?: Date;
}

/**
 * Authorizes a call: the caller must present a verified node certificate of an allowed role, of
 * this cluster, not denylisted. Returns its identity; throws `PeerAuthError` (one line, names the
 * node and the fix).
 */
export function authorizePeer(call: CallWithAuthContext, opts: AuthorizeOptions): PeerIdentity {
  let id: PeerIdentity | null;
  try {
    id = peerIdentity(call);
  } catch (e) {
    throw new PeerAuthError(status.PERMISSION_DENIED, (e as Error).message);
  }
  if (!id) {
    throw new PeerAuthError(status.UNAUTHENTICATED, 'no valid cluster certificate presented; join the cluster first (shoal swarm join --token …)');
  }
  if (opts.clusterId !== undefined && id.clusterId !== opts.clusterId) {
    throw new PeerAuthError(status.PERMISSION_DENIED, `node ${id.nodeId} belongs to cluster ${id.clusterId || '(none)'}, not ${opts.clusterId}`);
  }
  if (opts.removedNodes && isRevoked(id.nodeId, opts.removedNodes)) {
    throw new PeerAuthError(status.PERMISSION_DENIED, `node ${id.nodeId} was removed from the cluster; it must leave and join again with a new identity`);
  }
  if (!opts.roles.includes(id.role)) {
    throw new PeerAuthError(status.PERMISSION_DENIED, `node ${id.nodeId} is a ${id.role}; this call needs role ${opts.roles.join(' or ')}`);
  }
  const now = opts.now ?? new Date();
  if (now > id.notAfter) {
    throw new PeerAuthError(status.PERMISSION_DENIED, `certificate of node ${id.nodeId} expired at ${id.notAfter.toISOString()}; renew it`);
  }
  return id;
}
