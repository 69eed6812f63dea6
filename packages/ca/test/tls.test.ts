/**
 * Real grpc-js servers and clients over TLS on 127.0.0.1 (random ports): mutual TLS with cluster
 * certificates, refusal of foreign/self-signed certificates, the join ("verify if given") port, and
 * peer identity / authorization in handlers.
 */
import 'reflect-metadata';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { ChannelCredentials, ServerCredentials, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  authorizePeer,
  bootstrapCredentials,
  clientCredentials,
  createKeyAndCsr,
  issueNodeCertificate,
  MANAGER_CHANNEL_OPTIONS,
  PeerAuthError,
  peerIdentity,
  RootCA,
  rootTrustCredentials,
  serverCredentials,
  TlsIdentity,
} from '../src/index.js';
import type { TlsMaterial } from '../src/index.js';
import type { NodeRole } from '@shoal/api';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};
const service: grpc.ServiceDefinition = {
  whoAmI: { path: '/test.Echo/WhoAmI', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
  managersOnly: { path: '/test.Echo/ManagersOnly', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
};
const Client = grpc.makeGenericClientConstructor(service, 'Echo');
type EchoClient = InstanceType<typeof Client> & Record<'whoAmI' | 'managersOnly', (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void>;

async function node(root: RootCA, nodeId: string, role: NodeRole, clusterId = 'c1'): Promise<TlsMaterial> {
  const { keyPem, csrPem } = await createKeyAndCsr(nodeId);
  const certPem = await issueNodeCertificate(root, { csrPem, nodeId, role, clusterId });
  return { rootPem: root.certPem, certPem, keyPem };
}

/** A certificate that claims to be a cluster manager but is self-signed. */
async function selfSigned(): Promise<TlsMaterial> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=intruder, OU=swarm-manager, O=c1',
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 3600_000),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    keys: keys as never,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth])],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const certPem = cert.toString('pem') + '\n';
  return { rootPem: certPem, certPem, keyPem: x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n' };
}

async function serve(creds: ServerCredentials, removed = new Set<string>()): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(service, {
    whoAmI: (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => {
      const id = peerIdentity(call);
      cb(null, id ? { nodeId: id.nodeId, role: id.role, clusterId: id.clusterId } : { anonymous: true });
    },
    managersOnly: (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => {
      try {
        const id = authorizePeer(call, { roles: ['manager'], clusterId: 'c1', removedNodes: removed });
        cb(null, { ok: id.nodeId });
      } catch (e) {
        if (e instanceof PeerAuthError) cb(e.toGrpc());
        else cb(e as Error);
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, server };
}

function call(port: number, creds: ChannelCredentials, method: 'whoAmI' | 'managersOnly' = 'whoAmI'): Promise<unknown> {
  const client = new Client(`127.0.0.1:${port}`, creds, MANAGER_CHANNEL_OPTIONS) as EchoClient;
  return new Promise<unknown>((resolve, reject) => {
    client[method]({}, { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    });
  });
}

test('mutual TLS: cluster nodes talk, the peer identity comes from the client certificate', async (t) => {
  const root = await RootCA.create({ clusterId: 'c1' });
  const [mgr, wrk] = await Promise.all([node(root, 'mgr1', 'manager'), node(root, 'wrk1', 'worker')]);
  const { port, server } = await serve(serverCredentials(mgr));
  t.teardown(() => server.forceShutdown());

  t.deepEqual(await call(port, clientCredentials(wrk)), { nodeId: 'wrk1', role: 'worker', clusterId: 'c1' });
  t.deepEqual(await call(port, clientCredentials(mgr, { clusterId: 'c1' })), { nodeId: 'mgr1', role: 'manager', clusterId: 'c1' });
  t.deepEqual(await call(port, clientCredentials(mgr), 'managersOnly'), { ok: 'mgr1' });
  const denied = await t.throwsAsync<grpc.ServiceError>(call(port, clientCredentials(wrk), 'managersOnly'));
  t.is(denied!.code, grpc.status.PERMISSION_DENIED);
  t.regex(denied!.details, /node wrk1 is a worker; this call needs role manager/);

  // The client refuses a server whose certificate is not the expected role or cluster.
  const byRole = await t.throwsAsync<grpc.ServiceError>(call(port, clientCredentials(wrk, { serverRole: 'worker' })));
  t.is(byRole!.code, grpc.status.UNAVAILABLE);
  const byCluster = await t.throwsAsync<grpc.ServiceError>(call(port, clientCredentials(wrk, { clusterId: 'other' })));
  t.is(byCluster!.code, grpc.status.UNAVAILABLE);
});

test('mutual TLS: self-signed and foreign-cluster client certificates are refused', async (t) => {
  const root = await RootCA.create({ clusterId: 'c1' });
  const foreignRoot = await RootCA.create({ clusterId: 'c1' });
  const mgr = await node(root, 'mgr1', 'manager');
  const { port, server } = await serve(serverCredentials(mgr));
  t.teardown(() => server.forceShutdown());

  // Trusts our root (so the server is fine) but presents a self-signed "manager" certificate.
  const intruder = await selfSigned();
  const e1 = await t.throwsAsync<grpc.ServiceError>(call(port, clientCredentials({ ...intruder, rootPem: root.certPem })));
  t.is(e1!.code, grpc.status.UNAVAILABLE);
  // A certificate from another cluster's root.
  const foreign = await node(foreignRoot, 'mgr9', 'manager');
  const e2 = await t.throwsAsync<grpc.ServiceError>(call(port, clientCredentials({ ...foreign, rootPem: root.certPem })));
  t.is(e2!.code, grpc.status.UNAVAILABLE);
  // No client certificate at all.
  const e3 = await t.throwsAsync<grpc.ServiceError>(call(port, rootTrustCredentials(root.certPem)));
  t.is(e3!.code, grpc.status.UNAVAILABLE);
  // And a client of our cluster refuses a server from another root.
  const { port: p2, server: s2 } = await serve(serverCredentials(foreign));
  t.teardown(() => s2.forceShutdown());
  const e4 = await t.throwsAsync<grpc.ServiceError>(call(p2, clientCredentials(mgr)));
  t.is(e4!.code, grpc.status.UNAVAILABLE);
});

test('join port (client certificate optional): bootstrap and CSR calls work, identity only from verified certs', async (t) => {
  const root = await RootCA.create({ clusterId: 'c1' });
  const [mgr, wrk] = await Promise.all([node(root, 'mgr1', 'manager'), node(root, 'wrk1', 'worker')]);
  const removed = new Set<string>();
  const identity = new TlsIdentity(mgr);
  const { port, server } = await serve(serverCredentials(identity, { requireClientCert: false }), removed);
  t.teardown(() => server.forceShutdown());

  t.deepEqual(await call(port, bootstrapCredentials()), { anonymous: true });
  t.deepEqual(await call(port, rootTrustCredentials(root.certPem)), { anonymous: true });
  t.deepEqual(await call(port, clientCredentials(wrk)), { nodeId: 'wrk1', role: 'worker', clusterId: 'c1' });
  // A self-signed certificate connects but gets no identity, so authorization refuses it.
  const intruder = await selfSigned();
  t.deepEqual(await call(port, clientCredentials({ ...intruder, rootPem: root.certPem })), { anonymous: true });
  const e1 = await t.throwsAsync<grpc.ServiceError>(call(port, clientCredentials({ ...intruder, rootPem: root.certPem }), 'managersOnly'));
  t.is(e1!.code, grpc.status.UNAUTHENTICATED);
  const e2 = await t.throwsAsync<grpc.ServiceError>(call(port, bootstrapCredentials(), 'managersOnly'));
  t.is(e2!.code, grpc.status.UNAUTHENTICATED);

  // Denylisted node: its still-valid certificate is refused.
  t.deepEqual(await call(port, clientCredentials(mgr), 'managersOnly'), { ok: 'mgr1' });
  removed.add('mgr1');
  const e3 = await t.throwsAsync<grpc.ServiceError>(call(port, clientCredentials(mgr), 'managersOnly'));
  t.is(e3!.code, grpc.status.PERMISSION_DENIED);
  t.regex(e3!.details, /node mgr1 was removed from the cluster/);

  // Hot swap: after a root rotation on the server, old-root clients are refused, new ones accepted.
  const root2 = await RootCA.create({ clusterId: 'c1' });
  const mgr2 = await node(root2, 'mgr1', 'manager');
  identity.update(mgr2);
  const wrk2 = await node(root2, 'wrk2', 'worker');
  t.deepEqual(await call(port, clientCredentials(wrk2)), { nodeId: 'wrk2', role: 'worker', clusterId: 'c1' });
  await t.throwsAsync(call(port, clientCredentials(wrk)));
});
