/**
 * Joining a cluster over the Cluster service (SwarmKit `ca/config.go` DownloadRootCA and
 * `ca/certificates.go` GetRemoteCA / GetRemoteSignedCertificate; the token format in packages/ca/README.md):
 *
 * 1. parse the join token (malformed → InvalidArgument, nothing sent);
 * 2. `ca.getRootCACertificate` over TLS that trusts any server (`bootstrapCredentials`);
 * 3. hash the returned bundle and compare with the token's CA digest BEFORE trusting it;
 * 4. create a key and CSR; `ca.issueNodeCertificate {csrPem, token}` over TLS verified against the
 *    fetched root (no client certificate yet);
 * 5. verify the certificate against the root and our key.
 *
 * Nothing is written to disk here: the caller saves the result only once `joinCluster` resolves,
 * so a failed join leaves no state behind.
 */
import * as grpc from '@grpc/grpc-js';
import { invalidArgument, ShoalError } from '@shoal/api';
import type { NodeRole } from '@shoal/api';
import {
  assertCaDigest,
  bootstrapCredentials,
  createKeyAndCsr,
  issueNodeCertificate,
  parseCertificate,
  parseJoinToken,
  roleForToken,
  rootTrustCredentials,
  verifyNodeCertificate,
} from '@shoal/ca';
import type { JoinTokens, RootCA, TlsMaterial } from '@shoal/ca';
import { errorFromStatus, isTransportStatus, RpcError, transportReason } from './codes.js';
import { clusterChannelOptions } from './client.js';
import type { ClusterClient } from './client.js';
import type { MethodTable } from './methods.js';
import { clusterService, decodeJson, encodeJson } from './service.js';
import type { CallResponse } from './service.js';

/** The manager port SwarmKit and Docker use when an address has none. */
export const DEFAULT_MANAGER_PORT = 2377;
/** Default deadline of each join step (fetch root, issue certificate), ms (SwarmKit: 5 s). */
export const DEFAULT_JOIN_STEP_TIMEOUT_MS = 5000;
/** The CA's answer to an unknown, rotated or mistyped secret (SwarmKit's wording). */
export const INVALID_TOKEN_MESSAGE = 'A valid join token is necessary to join this cluster';

/** `ca.getRootCACertificate` answer. */
export interface RootCAResponse {
  /** The root CA PEM bundle, byte for byte as hashed into the join tokens. */
  rootPem: string;
}

/** `ca.issueNodeCertificate` request. Extra fields (e.g. advertiseAddr, availability) reach `admit`. */
export interface IssueRequest {
  csrPem: string;
  token: string;
  [extra: string]: unknown;
}

/** `ca.issueNodeCertificate` answer. */
export interface IssueResponse {
  nodeId: string;
  role: NodeRole;
  certPem: string;
  /** Manager addresses (`host:port`) the node should talk to. */
  managers: string[];
  clusterId: string;
}

export interface JoinOptions {
  /** A manager's address, `host:port` (port default 2377). */
  remoteAddr: string;
  /** `SWMTKN-1-…` from `shoal swarm join-token worker|manager`. */
  token: string;
  /** Deadline of each step, ms. Default 5000. */
  timeoutMs?: number;
  /** Extra fields for `ca.issueNodeCertificate` (passed to the manager's `admit`), e.g. `{advertiseAddr}`. */
  request?: Record<string, unknown>;
}

/** What a joined node must save: its TLS material and identity. */
export interface JoinResult extends IssueResponse {
  rootPem: string;
  keyPem: string;
}

/**
 * `host:port` from a user-given manager address; a bare host gets port 2377.
 * @throws InvalidArgument naming the address.
 */
export function normalizeManagerAddr(addr: string): string {
  const a = typeof addr === 'string' ? addr.trim() : '';
  if (/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/.test(a)) {
    const port = Number(a.slice(a.lastIndexOf(':') + 1));
    if (port >= 1 && port <= 65535) return a;
  }
  if (/^[^\s:/[\]]+$/.test(a)) return `${a}:${DEFAULT_MANAGER_PORT}`;
  if (/^\[[0-9a-fA-F:.]+\]$/.test(a)) return `${a}:${DEFAULT_MANAGER_PORT}`;
  throw invalidArgument(`invalid manager address ${JSON.stringify(addr)}: expected HOST[:PORT], e.g. 10.0.0.1:2377`);
}

/** One unary call on a short-lived channel; transport failures become Unavailable "could not reach manager at …". */
async function callOnce(addr: string, creds: grpc.ChannelCredentials, method: string, params: unknown, timeoutMs: number): Promise<unknown> {
  const { Client } = clusterService();
  const client = new Client(addr, creds, clusterChannelOptions());
  try {
    const res = await new Promise<CallResponse>((resolve, reject) =>
      client.Call({ method, json: encodeJson(params) }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, out) =>
        err ? reject(err) : resolve(out!),
      ),
    );
    return decodeJson(res.json, `${method} answer from ${addr}`);
  } catch (e) {
    if (e instanceof ShoalError) throw e;
    const err = e as grpc.ServiceError;
    if (isTransportStatus(err) && err.code === grpc.status.DEADLINE_EXCEEDED) {
      throw new RpcError('Unavailable', `could not reach manager at ${addr}: no answer within ${timeoutMs} ms; check the address and that port ${addr.slice(addr.lastIndexOf(':') + 1)} is open`, err.code);
    }
    if (isTransportStatus(err) && err.code === grpc.status.UNAVAILABLE) {
      throw new RpcError('Unavailable', `could not reach manager at ${addr}: ${transportReason(err.details)}; check the address and that the manager is running`, err.code);
    }
    throw errorFromStatus(err);
  } finally {
    client.close();
  }
}

function field<T>(v: unknown, key: string, check: (x: unknown) => x is T, addr: string): T {
  const x = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  if (!check(x)) throw new ShoalError('Internal', `manager at ${addr} sent an invalid answer: ${key} is ${JSON.stringify(x)}`);
  return x;
}
const isString = (x: unknown): x is string => typeof x === 'string' && x.length > 0;
const isStrings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
const isRole = (x: unknown): x is NodeRole => x === 'manager' || x === 'worker';

/**
 * Joins the cluster a manager at `remoteAddr` belongs to with a join token (steps in the module
 * header). Resolves to the material the node must save; writes nothing.
 * @throws InvalidArgument: malformed token or address (before any network traffic); "remote CA
 *   does not match fingerprint…" (before any CSR is sent); "A valid join token is necessary to
 *   join this cluster" (rotated/unknown secret). Unavailable: "could not reach manager at X: …",
 *   within about `timeoutMs` per step. Internal: the manager's answer is unusable.
 */
export async function joinCluster(opts: JoinOptions): Promise<JoinResult> {
  parseJoinToken(opts.token);
  const addr = normalizeManagerAddr(opts.remoteAddr);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_JOIN_STEP_TIMEOUT_MS;
  const token = opts.token.trim();

  const rootRes = await callOnce(addr, bootstrapCredentials(), 'ca.getRootCACertificate', {}, timeoutMs);
  const rootPem = field(rootRes, 'rootPem', isString, addr);
  assertCaDigest(rootPem, token);

  const { keyPem, csrPem } = await createKeyAndCsr();
  const issued = await callOnce(addr, rootTrustCredentials(rootPem), 'ca.issueNodeCertificate', { ...opts.request, csrPem, token }, timeoutMs);
  const res: IssueResponse = {
    nodeId: field(issued, 'nodeId', isString, addr),
    role: field(issued, 'role', isRole, addr),
    certPem: field(issued, 'certPem', isString, addr),
    managers: field(issued, 'managers', isStrings, addr),
    clusterId: field(issued, 'clusterId', isString, addr),
  };
  let info;
  try {
    info = verifyNodeCertificate(rootPem, res.certPem, { keyPem });
  } catch (e) {
    throw new ShoalError('Internal', `manager at ${addr} issued an unusable certificate: ${(e as Error).message}`);
  }
  if (info.nodeId !== res.nodeId || info.role !== res.role || info.clusterId !== res.clusterId) {
    throw new ShoalError(
      'Internal',
      `manager at ${addr} issued a certificate for node ${info.nodeId} (${info.role}, cluster ${info.clusterId}) but answered node ${res.nodeId} (${res.role}, cluster ${res.clusterId})`,
    );
  }
  return { ...res, rootPem, keyPem };
}

export interface JoinMethodsOptions {
  /** The cluster root CA (with its key); a function for one that may rotate. */
  root: RootCA | (() => RootCA);
  /** The current join tokens (read per call, so rotation takes effect at once). */
  tokens: () => JoinTokens;
  clusterId: string;
  /**
   * Admits a node of `role` (from the token): creates its Node object and answers its node ID and
   * the manager addresses. Called only after the token and CSR are valid. Throw ShoalError to refuse.
   */
  admit(role: NodeRole, csrPem: string, request: IssueRequest): Promise<{ nodeId: string; managers: string[] }>;
  /** Validity of issued certificates, ms (read per call). Default 90 days. */
  certExpiryMs?: () => number | undefined;
  /**
   * Enables `ca.renewNodeCertificate`: the role a node's renewed certificate gets (its desired role,
   * so promotion/demotion takes effect at renewal), or null for an unknown node (refused). May be
   * async (a manager answers after a read barrier) and throw (e.g. Unavailable without a leader).
   */
  roleOf?: (nodeId: string) => NodeRole | null | Promise<NodeRole | null>;
}

/** `ca.renewNodeCertificate` answer. */
export interface RenewResponse {
  certPem: string;
  role: NodeRole;
}

/**
 * The server side of the join flow, as a method table for `tableHandler`:
 * - `ca.getRootCACertificate` `{}` → `{rootPem}` (the root bundle exactly as stored);
 * - `ca.issueNodeCertificate` `{csrPem, token, …}` → `IssueResponse`; the role comes from the token
 *   (`roleForToken`, constant time), the node ID from `admit`.
 * Both may be called without a certificate. With `roleOf`, also
 * - `ca.renewNodeCertificate` `{csrPem}` → `RenewResponse` for the calling node (certificate
 *   required; same node ID, role from `roleOf`; FailedPrecondition for an unknown node).
 * @throws (answered to the caller) InvalidArgument "A valid join token is necessary to join this
 *   cluster" for an unknown/rotated token; InvalidArgument for a bad CSR (checked before `admit`).
 */
export function joinMethods(opts: JoinMethodsOptions): MethodTable {
  const rootOf = (): RootCA => (typeof opts.root === 'function' ? opts.root() : opts.root);
  return {
    calls: {
      'ca.getRootCACertificate': async (): Promise<RootCAResponse> => ({ rootPem: rootOf().certPem }),
      'ca.issueNodeCertificate': async (params): Promise<IssueResponse> => {
        const req = (params !== null && typeof params === 'object' ? params : {}) as Partial<IssueRequest>;
        const role = typeof req.token === 'string' ? roleForToken(req.token, opts.tokens()) : null;
        if (!role) throw invalidArgument(INVALID_TOKEN_MESSAGE);
        if (typeof req.csrPem !== 'string') throw invalidArgument(`ca.issueNodeCertificate: csrPem must be a PEM certificate request, got ${typeof req.csrPem}`);
        const root = rootOf();
        const expiryMs = opts.certExpiryMs?.();
        const issue = (nodeId: string): Promise<string> =>
          issueNodeCertificate(root, { csrPem: req.csrPem!, nodeId, role, clusterId: opts.clusterId, ...(expiryMs !== undefined ? { expiryMs } : {}) });
        // Validate the CSR (and expiry) before admitting, so a bad request creates no Node.
        await issue('pending');
        const { nodeId, managers } = await opts.admit(role, req.csrPem, req as IssueRequest);
        const certPem = await issue(nodeId);
        return { nodeId, role, certPem, managers, clusterId: opts.clusterId };
      },
      ...(opts.roleOf
        ? {
            'ca.renewNodeCertificate': async (params, peer): Promise<RenewResponse> => {
              if (!peer) throw new ShoalError('FailedPrecondition', 'ca.renewNodeCertificate needs the node certificate being renewed; join the cluster first');
              const role = await opts.roleOf!(peer.nodeId);
              if (!role) throw new ShoalError('FailedPrecondition', `node ${peer.nodeId} is not a member of this cluster; it must join again`);
              const csrPem = params !== null && typeof params === 'object' ? (params as { csrPem?: unknown }).csrPem : undefined;
              if (typeof csrPem !== 'string') throw invalidArgument(`ca.renewNodeCertificate: csrPem must be a PEM certificate request, got ${typeof csrPem}`);
              const expiryMs = opts.certExpiryMs?.();
              const certPem = await issueNodeCertificate(rootOf(), {
                csrPem,
                nodeId: peer.nodeId,
                role,
                clusterId: opts.clusterId,
                ...(expiryMs !== undefined ? { expiryMs } : {}),
              });
              return { certPem, role };
            },
          }
        : {}),
    },
  };
}

/**
 * Renews this node's certificate over an mTLS `client` (SwarmKit `RenewTLSConfigNow`): a fresh key
 * and CSR, `ca.renewNodeCertificate`, and a check of the answer against the root and the new key.
 * Resolves to the new material; the caller saves it, calls `identity.update()` on its servers and
 * creates new clients (client credentials are fixed).
 * @throws the manager's ShoalError (FailedPrecondition for a removed node); Unavailable when no
 *   manager answers; Internal when the certificate does not check out.
 */
export async function renewNodeCertificate(client: ClusterClient, material: TlsMaterial, opts: { timeoutMs?: number } = {}): Promise<TlsMaterial & { role: NodeRole }> {
  const current = parseCertificate(material.certPem);
  const { keyPem, csrPem } = await createKeyAndCsr(current.nodeId);
  const res = await client.call('ca.renewNodeCertificate', { csrPem }, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
  const certPem = field(res, 'certPem', isString, client.current ?? 'manager');
  let info;
  try {
    info = verifyNodeCertificate(material.rootPem, certPem, { keyPem });
  } catch (e) {
    throw new ShoalError('Internal', `the renewed certificate is unusable: ${(e as Error).message}`);
  }
  if (info.nodeId !== current.nodeId || info.clusterId !== current.clusterId) {
    throw new ShoalError('Internal', `the renewed certificate is for node ${info.nodeId} of cluster ${info.clusterId}, not ${current.nodeId} of ${current.clusterId}`);
  }
  return { rootPem: material.rootPem, certPem, keyPem, role: info.role };
}
