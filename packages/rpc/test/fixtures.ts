/**
 * Test fixtures: a real cluster root CA, node certificates, and Cluster servers on 127.0.0.1
 * random ports. No fakes: every test talks gRPC over TLS sockets.
 */
import { createServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import type { NodeRole } from '@shoal/api';
import { createKeyAndCsr, generateJoinTokens, issueNodeCertificate, RootCA } from '@shoal/ca';
import type { JoinTokens, TlsMaterial } from '@shoal/ca';
import { createClusterServer, registerCluster } from '../src/index.js';
import type { ClusterHandler, ClusterServer, ClusterServerOptions } from '../src/index.js';

export const CLUSTER_ID = 'cluster1';

export interface TestCluster {
  root: RootCA;
  tokens: JoinTokens;
  /** A node certificate of this cluster (or of `clusterId`). */
  node(nodeId: string, role: NodeRole, clusterId?: string): Promise<TlsMaterial>;
}

export async function testCluster(clusterId = CLUSTER_ID): Promise<TestCluster> {
  const root = await RootCA.create({ clusterId });
  return {
    root,
    tokens: generateJoinTokens(root.certPem),
    async node(nodeId, role, cid = clusterId) {
      const { keyPem, csrPem } = await createKeyAndCsr(nodeId);
      const certPem = await issueNodeCertificate(root, { csrPem, nodeId, role, clusterId: cid });
      return { rootPem: root.certPem, certPem, keyPem };
    },
  };
}

export interface Running {
  server: ClusterServer;
  addr: string;
  port: number;
  close(): Promise<void>;
}

/** A manager's Cluster server serving `handler`, listening on 127.0.0.1:0. */
export async function startManager(
  c: TestCluster,
  handler: ClusterHandler,
  opts: Partial<ClusterServerOptions> & { nodeId?: string; setup?: (s: ClusterServer) => void } = {},
): Promise<Running> {
  const identity = opts.identity ?? (await c.node(opts.nodeId ?? 'manager1', 'manager'));
  const server = createClusterServer({ identity, clusterId: CLUSTER_ID, isRevoked: () => false, ...opts });
  registerCluster(server, handler);
  opts.setup?.(server);
  const port = await server.listen('127.0.0.1:0');
  return { server, port, addr: `127.0.0.1:${port}`, close: () => server.close(200) };
}

/** A TCP address nothing listens on (bound then released). */
export async function deadAddr(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** A TCP server that accepts connections and never answers (a hung manager). */
export async function silentServer(): Promise<{ addr: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const s: NetServer = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  return {
    addr: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy();
        s.close(() => r());
      }),
  };
}
