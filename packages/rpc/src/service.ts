/**
 * The `shoal.cluster.Cluster` service definition (`proto/cluster.proto`) and its JSON envelope.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { invalidArgument } from '@shoal/api';

const PROTO_PATH = fileURLToPath(new URL('../../proto/cluster.proto', import.meta.url));

/** Full gRPC service name. */
export const CLUSTER_SERVICE = 'shoal.cluster.Cluster';
/** gRPC method paths. */
export const CALL_PATH = `/${CLUSTER_SERVICE}/Call`;
export const WATCH_PATH = `/${CLUSTER_SERVICE}/Watch`;

/** Wire shape of `CallRequest`. */
export interface CallRequest {
  method: string;
  json: Buffer;
}
/** Wire shape of `CallResponse`. */
export interface CallResponse {
  json: Buffer;
}

export type ClusterGrpcClient = grpc.Client & {
  Call(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: CallResponse) => void): grpc.ClientUnaryCall;
  Watch(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientReadableStream<CallResponse>;
};
type ClusterClientCtor = new (addr: string, creds: grpc.ChannelCredentials, opts?: grpc.ChannelOptions) => ClusterGrpcClient;

let loaded: { service: grpc.ServiceDefinition; Client: ClusterClientCtor } | undefined;

/** The Cluster service definition and generated client constructor (loaded once). */
export function clusterService(): { service: grpc.ServiceDefinition; Client: ClusterClientCtor } {
  if (!loaded) {
    const def = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      shoal: { cluster: { Cluster: ClusterClientCtor & { service: grpc.ServiceDefinition } } };
    };
    loaded = { service: pkg.shoal.cluster.Cluster.service, Client: pkg.shoal.cluster.Cluster };
  }
  return loaded;
}

/** JSON-encodes a value for the envelope (`undefined` → empty bytes). */
export function encodeJson(v: unknown): Buffer {
  return v === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(v));
}

/**
 * Decodes an envelope's JSON (empty → undefined).
 * @throws InvalidArgument when the bytes are not JSON.
 */
export function decodeJson(b: Buffer | Uint8Array | undefined, what: string): unknown {
  if (!b || b.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(b).toString('utf8')) as unknown;
  } catch (e) {
    throw invalidArgument(`${what}: body is not JSON (${(e as Error).message})`);
  }
}
