/**
 * The manager's cluster port (2377): one grpc-js server with mutual TLS "verify if given" (SwarmKit
 * `tls.VerifyClientCertIfGiven`, `ca/config.go`) and a server interceptor that authenticates every
 * call before any service sees it — the Cluster service below and services others register on the
 * same server (the Raft transport `shoal.raft.Raft`).
 *
 * Rules (SwarmKit `ca/auth.go` AuthorizeOrgAndRole, applied per gRPC service):
 * - A call whose TLS client certificate is missing, not a node certificate of this cluster,
 *   expired, or of a removed node (`isRevoked`) is refused with UNAUTHENTICATED
 *   "a valid cluster certificate is required…". The one exception: `Cluster/Call` without a
 *   certificate, whose `method` is a join method (`ca.getRootCACertificate`,
 *   `ca.issueNodeCertificate`) — a joiner has no certificate yet.
 * - A valid peer of the wrong role is refused with PERMISSION_DENIED. `shoal.cluster.Cluster` admits
 *   managers and workers (the handler checks roles per method); every other service admits the roles
 *   in `serviceRoles[service]`, default managers only.
 */
import * as grpc from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import type { NodeRole } from '@shoal/api';
import { parseCertificateDer, PeerAuthError, serverCredentials, TlsIdentity } from '@shoal/ca';
import type { CallWithAuthContext, CertificateInfo, TlsMaterial } from '@shoal/ca';
import { ERROR_CODE_KEY, grpcStatusOf } from './codes.js';
import { CALL_PATH, CLUSTER_SERVICE, clusterService, decodeJson, encodeJson } from './service.js';
import type { CallRequest, CallResponse } from './service.js';

/** Who is calling, from its verified node certificate (CN node ID, OU role). */
export interface Peer {
  nodeId: string;
  role: NodeRole;
}

/** The methods a caller without a certificate may use (the join flow). */
export const JOIN_METHODS = ['ca.getRootCACertificate', 'ca.issueNodeCertificate'] as const;
export type JoinMethod = (typeof JOIN_METHODS)[number];

/** True for `ca.getRootCACertificate` and `ca.issueNodeCertificate`. */
export function isJoinMethod(method: unknown): method is JoinMethod {
  return (JOIN_METHODS as readonly unknown[]).includes(method);
}

/** Refusal text for a caller without a valid certificate. */
export const CERT_REQUIRED = 'a valid cluster certificate is required';

/** Default largest gRPC message in either direction, bytes (same as the Raft transport). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 << 20;

export interface ClusterAuthOptions {
  /** The cluster ID; a certificate whose O differs is refused. */
  clusterId: string;
  /** True for node IDs removed from the cluster (`node rm`); their certificates are refused. Called per call. */
  isRevoked(nodeId: string): boolean;
  /**
   * Roles admitted per gRPC service other than `shoal.cluster.Cluster`, keyed by full service
   * name (e.g. `'shoal.raft.Raft'`). Services not listed admit managers only.
   */
  serviceRoles?: Readonly<Record<string, readonly NodeRole[]>>;
}

export interface ClusterServerOptions extends ClusterAuthOptions {
  /** The manager's TLS material; pass a `TlsIdentity` to swap certificates after renewal. */
  identity: TlsIdentity | TlsMaterial;
  /** Largest gRPC message sent or received, bytes. Default 64 MiB. */
  maxMessageBytes?: number;
}

/** Outcome of authenticating one call. */
export type AuthDecision = { ok: true; peer: Peer | null } | { ok: false; code: grpc.status; details: string };

const CACHE_MAX = 4096;
const parsed = new Map<string, CertificateInfo>();

/**
 * The caller's verified certificate identity, like `peerIdentity` from @shoal/ca, with parsed
 * certificates cached by DER (parsing costs ~0.15 ms; every call is authenticated). Null without
 * a verified certificate.
 * @throws InvalidArgument when the verified certificate is not a node certificate.
 */
export function callerCertificate(call: CallWithAuthContext): CertificateInfo | null {
  const raw = call.getAuthContext?.()?.sslPeerCertificate?.raw;
  if (!raw) return null;
  const key = raw.toString('base64');
  let info = parsed.get(key);
  if (!info) {
    info = parseCertificateDer(raw);
    if (parsed.size >= CACHE_MAX) parsed.delete(parsed.keys().next().value!);
    parsed.set(key, info);
  }
  return info;
}

function serviceOf(path: string): string {
  return path.slice(1, path.lastIndexOf('/'));
}

/**
 * Decides whether the call to gRPC method `path` may proceed, from the caller's verified TLS
 * certificate (`call.getAuthContext()`). `peer: null` only for `Cluster/Call` (the join methods are
 * checked on the message). Pure apart from `isRevoked`.
 */
export function authenticateCall(call: CallWithAuthContext, path: string, opts: ClusterAuthOptions, now = new Date()): AuthDecision {
  let id: CertificateInfo | null;
  try {
    id = callerCertificate(call);
  } catch (e) {
    return { ok: false, code: grpc.status.UNAUTHENTICATED, details: `${CERT_REQUIRED}: ${(e as Error).message}` };
  }
  if (!id) {
    if (path === CALL_PATH) return { ok: true, peer: null };
    return { ok: false, code: grpc.status.UNAUTHENTICATED, details: `${CERT_REQUIRED} (none presented); join the cluster first with 'shoal swarm join --token …'` };
  }
  const refuse = (why: string): AuthDecision => ({ ok: false, code: grpc.status.UNAUTHENTICATED, details: `${CERT_REQUIRED}: ${why}` });
  if (id.clusterId !== opts.clusterId) return refuse(`node ${id.nodeId} belongs to cluster ${id.clusterId || '(none)'}, not ${opts.clusterId}`);
  if (opts.isRevoked(id.nodeId)) return refuse(`node ${id.nodeId} was removed from the cluster; it must leave and join again with a new identity`);
  if (now > id.notAfter) return refuse(`the certificate of node ${id.nodeId} expired at ${id.notAfter.toISOString()}; renew it`);
  const service = serviceOf(path);
  const roles: readonly NodeRole[] = service === CLUSTER_SERVICE ? ['manager', 'worker'] : opts.serviceRoles?.[service] ?? ['manager'];
  if (!roles.includes(id.role)) {
    return { ok: false, code: grpc.status.PERMISSION_DENIED, details: `node ${id.nodeId} is a ${id.role}; ${service} needs role ${roles.join(' or ')}` };
  }
  return { ok: true, peer: { nodeId: id.nodeId, role: id.role } };
}

/**
 * A grpc-js server interceptor enforcing the rules in this module's header on every service of the
 * server. Refused calls end with the status before any handler runs.
 */
export function clusterAuthInterceptor(opts: ClusterAuthOptions): grpc.ServerInterceptor {
  return (desc, call) => {
    let refused = false;
    let anonymous = false;
    const refuse = (code: grpc.status, details: string): void => {
      refused = true;
      call.sendStatus({ code, details, metadata: new grpc.Metadata() });
    };
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((md, next) => {
        const d = authenticateCall(call, desc.path, opts);
        if (!d.ok) return refuse(d.code, d.details);
        anonymous = d.peer === null;
        next(md);
      })
      .withOnReceiveMessage((msg: Partial<CallRequest> | undefined, next) => {
        if (refused) return;
        if (anonymous && !isJoinMethod(msg?.method)) {
          return refuse(grpc.status.UNAUTHENTICATED, `${CERT_REQUIRED} for ${JSON.stringify(msg?.method ?? '')}; without one only ${JOIN_METHODS.join(' and ')} may be called`);
        }
        next(msg);
      })
      .withOnReceiveHalfClose((next) => {
        if (!refused) next();
      })
      .build();
    const responder = new grpc.ResponderBuilder().withStart((next) => next(listener)).build();
    return new grpc.ServerInterceptingCall(call, responder);
  };
}

/**
 * The manager's cluster gRPC server: a `grpc.Server` with the authentication interceptor installed.
 * Register services (`registerCluster`, the Raft transport), then `listen(addr)`.
 */
export class ClusterServer extends grpc.Server {
  readonly identity: TlsIdentity;
  readonly auth: ClusterAuthOptions;

  constructor(opts: ClusterServerOptions) {
    const max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!opts.clusterId) throw new ShoalError('InvalidArgument', 'createClusterServer: clusterId is empty; pass the cluster ID from the cluster object');
    const auth: ClusterAuthOptions = { clusterId: opts.clusterId, isRevoked: opts.isRevoked, ...(opts.serviceRoles ? { serviceRoles: opts.serviceRoles } : {}) };
    super({
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
      interceptors: [clusterAuthInterceptor(auth)],
    });
    this.auth = auth;
    this.identity = opts.identity instanceof TlsIdentity ? opts.identity : new TlsIdentity(opts.identity);
  }

  /**
   * Binds `addr` (`host:port`, port 0 = any free port) with TLS from `identity`, client certificates
   * requested but not required. Resolves to the bound port.
   * @throws Unavailable when the address cannot be bound.
   */
  listen(addr: string): Promise<number> {
    const creds = serverCredentials(this.identity, { requireClientCert: false });
    return new Promise((resolve, reject) =>
      this.bindAsync(addr, creds, (err, port) =>
        err ? reject(new ShoalError('Unavailable', `cannot listen on ${addr}: ${err.message}; choose a free address with --listen-addr`)) : resolve(port),
      ),
    );
  }

  /**
   * Stops accepting calls and waits up to `graceMs` (default 1000) for running ones, then cancels the
   * rest (open Watch streams end with UNAVAILABLE/CANCELLED on the client).
   */
  close(graceMs = 1000): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.forceShutdown();
        resolve();
      }, graceMs);
      t.unref();
      this.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** Creates the cluster server (see `ClusterServer`). */
export function createClusterServer(opts: ClusterServerOptions): ClusterServer {
  return new ClusterServer(opts);
}

/** Application callbacks behind the Cluster service (the manager's method table). */
export interface ClusterHandler {
  /**
   * Answers one call. `peer` is null only for the join methods called without a certificate.
   * Throw ShoalError (or PeerAuthError for per-method role checks); the client re-throws it.
   */
  call(method: string, params: unknown, peer: Peer | null): Promise<unknown>;
  /**
   * Starts a stream: `push` sends a value, `end()` finishes it, `end(err)` fails it. Returns a
   * cancel function, called when the client goes away (not after `end`). `peer` is never null.
   */
  watch(method: string, params: unknown, peer: Peer, push: (v: unknown) => void, end: (err?: Error) => void): () => void;
}

/** gRPC status for an error thrown by a handler: ShoalError code (+ trailer), PeerAuthError as is, anything else INTERNAL. */
export function statusOfError(e: unknown): grpc.ServerErrorResponse {
  const metadata = new grpc.Metadata();
  if (e instanceof PeerAuthError) return { ...e.toGrpc(), metadata, name: 'PeerAuthError', message: e.message };
  const err = e instanceof ShoalError ? e : new ShoalError('Internal', e instanceof Error ? e.message : String(e));
  metadata.set(ERROR_CODE_KEY, err.code);
  return { code: grpcStatusOf(err.code), details: err.message, metadata, name: err.name, message: err.message };
}

function peerOf(call: CallWithAuthContext): Peer | null {
  const id = callerCertificate(call);
  return id ? { nodeId: id.nodeId, role: id.role } : null;
}

/**
 * Registers `shoal.cluster.Cluster` on `server`, dispatching to `handler`. The server's
 * interceptor has authenticated the caller; this layer checks again that anonymous callers reach
 * only the join methods.
 */
export function registerCluster(server: ClusterServer, handler: ClusterHandler): void {
  server.addService(clusterService().service, {
    Call: (call: grpc.ServerUnaryCall<CallRequest, CallResponse>, cb: grpc.sendUnaryData<CallResponse>) => {
      const method = call.request.method;
      void (async () => {
        const peer = peerOf(call);
        if (!peer && !isJoinMethod(method)) {
          throw new PeerAuthError(grpc.status.UNAUTHENTICATED, `${CERT_REQUIRED} for ${JSON.stringify(method)}`);
        }
        const params = decodeJson(call.request.json, method);
        return encodeJson(await handler.call(method, params, peer));
      })().then(
        (json) => cb(null, { json }),
        (e: unknown) => cb(statusOfError(e)),
      );
    },
    Watch: (call: grpc.ServerWritableStream<CallRequest, CallResponse>) => {
      const method = call.request.method;
      let done = false;
      let cancel: (() => void) | undefined;
      // Set when the stream stops for a reason other than the handler's `end` before `watch` returned.
      let cancelPending = false;
      const stopHandler = (): void => {
        if (cancel) cancel();
        else cancelPending = true;
      };
      const end = (err?: Error): void => {
        if (done) return;
        done = true;
        if (err) call.emit('error', statusOfError(err));
        else call.end();
      };
      const push = (v: unknown): void => {
        if (done) return;
        try {
          call.write({ json: encodeJson(v) });
        } catch (e) {
          end(e as Error);
          stopHandler();
        }
      };
      call.on('cancelled', () => {
        if (done) return;
        done = true;
        stopHandler();
      });
      if (call.cancelled) return;
      try {
        const peer = peerOf(call);
        if (!peer) throw new PeerAuthError(grpc.status.UNAUTHENTICATED, `${CERT_REQUIRED} for ${JSON.stringify(method)}`);
        const params = decodeJson(call.request.json, method);
        const c = handler.watch(method, params, peer, push, end);
        if (cancelPending) c();
        else if (!done) cancel = c;
        // else: ended by the handler itself, nothing to cancel.
      } catch (e) {
        end(e as Error);
      }
    },
  });
}
