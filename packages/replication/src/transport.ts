/**
 * gRPC transport between Raft peers (`proto/raft.proto`, service `shoal.raft.Raft`).
 *
 * - One long-lived client stream (`Stream`) per peer carries every message except MsgSnap, in
 *   order. A failed stream is reopened with exponential backoff (50 ms doubling to 1 s); messages
 *   for a peer whose stream is down are dropped and reported unreachable (Raft retries them).
 * - MsgSnap goes over `InstallSnapshot`, its data in 1 MiB chunks; the outcome is reported as
 *   snapshot status (etcd `ReportSnapshot`).
 * - Message size: `maxMessageBytes` (default 64 MiB) caps every gRPC message both ways.
 * - TLS: pass `credentials` (mutual TLS from the cluster CA); the default is insecure, for tests.
 * - The host may pass its own `grpc.Server` (e.g. the manager's port 2377 server) to share one
 *   port with other services; otherwise the transport creates one and binds `listen`.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Message, NodeId } from '@shoal/raft';
import { decodeMessage, encodeMessage } from './codec.js';
import { SNAPSHOT_CHUNK_BYTES } from './level-storage.js';

const PROTO_PATH = fileURLToPath(new URL('../../proto/raft.proto', import.meta.url));

interface Envelope {
  from: string;
  fromAddr: string;
  message: Buffer;
  cluster: string;
}
interface SnapshotChunk {
  header?: Envelope | null;
  totalBytes: number;
  offset: number;
  data: Buffer;
}
interface SnapshotAck {
  ok: boolean;
  error: string;
}

type RaftClient = grpc.Client & {
  Stream(callback: (err: grpc.ServiceError | null, ack?: unknown) => void): grpc.ClientWritableStream<Envelope>;
  InstallSnapshot(
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, ack?: SnapshotAck) => void,
  ): grpc.ClientWritableStream<SnapshotChunk>;
};
type RaftClientCtor = new (addr: string, creds: grpc.ChannelCredentials, opts: grpc.ChannelOptions) => RaftClient;

let loaded: { service: grpc.ServiceDefinition; Client: RaftClientCtor } | undefined;

/** The `shoal.raft.Raft` service definition and client constructor (loaded once). */
export function raftService(): { service: grpc.ServiceDefinition; Client: RaftClientCtor } {
  if (!loaded) {
    const def = protoLoader.loadSync(PROTO_PATH, { keepCase: false, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      shoal: { raft: { Raft: RaftClientCtor & { service: grpc.ServiceDefinition } } };
    };
    loaded = { service: pkg.shoal.raft.Raft.service, Client: pkg.shoal.raft.Raft };
  }
  return loaded;
}

/** Default cap on one gRPC message, in bytes (both directions). */
export const RAFT_MAX_MESSAGE_BYTES = 64 << 20;

/**
 * Options a host-created `grpc.Server` must carry when it hosts the Raft service (`new
 * grpc.Server(RAFT_GRPC_SERVER_OPTIONS)`): grpc-js accepts only 4 MiB per message by default,
 * and a MsgApp carrying one large entry is bigger.
 */
export const RAFT_GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': RAFT_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': RAFT_MAX_MESSAGE_BYTES,
};

/** Callbacks from the transport into the Raft host. Called on the event loop, never re-entrantly from `send`. */
export interface TransportHandler {
  /**
   * A message arrived for this node. Returning `'removed'` refuses it because its sender was
   * removed from the group: the transport tells the sender so (its `onRemoved` fires) and stops
   * taking its messages on that stream.
   */
  onMessage(m: Message): void | 'removed';
  /** A message to `peer` could not be delivered (etcd `ReportUnreachable`). */
  onUnreachable(peer: NodeId): void;
  /** A snapshot to `peer` was delivered (`ok`) or failed (etcd `ReportSnapshot`). */
  onSnapshotStatus(peer: NodeId, ok: boolean): void;
  /** `peer` refused this node's messages: this node's member was removed from the group. */
  onRemoved?(peer: NodeId): void;
}

/** gRPC status details with which a member refuses a removed member's messages. */
export const MEMBER_REMOVED = 'raft: the sender was removed from the Raft group';

/**
 * What a Raft host needs of a transport: {@link GrpcTransport} between processes, or an in-memory
 * one in tests (`@shoal/testkit`).
 */
export interface Transport {
  readonly id: NodeId;
  /** The `host:port` peers reach this node at. */
  address(): string;
  setHandler(h: TransportHandler): void;
  addPeer(id: NodeId, addr: string): void;
  removePeer(id: NodeId): void;
  peerAddr(id: NodeId): string | undefined;
  /** Sends messages (fire and forget); failures come back through the handler. */
  send(msgs: readonly Message[]): void;
  /** Releases connections (and a server the transport owns). */
  close(): Promise<void>;
}

export interface TransportCredentials {
  server: grpc.ServerCredentials;
  client: grpc.ChannelCredentials;
}

export interface GrpcTransportOptions {
  /** This node's Raft id. */
  id: NodeId;
  /** `host:port` to bind (port 0 picks a free port). Omit when `server` is given and bound by the host. */
  listen?: string;
  /** `host:port` peers use to reach this node; default: the bound `listen` address. */
  advertise?: string;
  /**
   * A server to register the Raft service on instead of creating one. The host binds and shuts it
   * down, and must create it with {@link RAFT_GRPC_SERVER_OPTIONS} (or larger limits).
   */
  server?: grpc.Server;
  /** Default: insecure (tests). Pass mutual-TLS credentials from the cluster CA in production. */
  credentials?: TransportCredentials;
  /** Largest gRPC message sent or received, in bytes. Default 64 MiB. */
  maxMessageBytes?: number;
  /** First reconnect delay after a stream fails, ms. Default 50. */
  backoffInitialMs?: number;
  /** Largest reconnect delay, ms. Default 1000. */
  backoffMaxMs?: number;
  /** Extra client channel options (e.g. `grpc.ssl_target_name_override` for the cluster CA's certificates). */
  channelOptions?: grpc.ChannelOptions;
  /** When set, envelopes carrying another cluster id are dropped. */
  clusterId?: string;
  logger?: { warn(obj: unknown, msg?: string): void; debug?(obj: unknown, msg?: string): void };
}

interface Peer {
  id: NodeId;
  addr: string;
  client?: RaftClient;
  stream?: grpc.ClientWritableStream<Envelope>;
  /** Earliest time (ms, Date.now) to open a new stream after a failure. */
  retryAt: number;
  backoffMs: number;
}

/** Raft message transport over gRPC. */
export class GrpcTransport implements Transport {
  readonly id: NodeId;
  /** The gRPC server carrying the Raft service (the host may register more services on it). */
  readonly server: grpc.Server;
  private readonly ownsServer: boolean;
  private readonly creds: TransportCredentials;
  private readonly maxBytes: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly peers = new Map<NodeId, Peer>();
  private handler: TransportHandler | undefined;
  private advertised: string;
  private closed = false;
  private readonly inbound = new Set<grpc.ServerReadableStream<Envelope, unknown> | grpc.ServerReadableStream<SnapshotChunk, SnapshotAck>>();

  constructor(private readonly opts: GrpcTransportOptions) {
    if (!opts.id) throw new Error('GrpcTransport: id is empty; pass the raft node id');
    if (!opts.server && !opts.listen) throw new Error('GrpcTransport: pass `listen` (host:port) or an existing `server`');
    if (opts.server && !opts.advertise) throw new Error('GrpcTransport: with a host-provided `server`, pass `advertise` (the host:port peers dial)');
    const host = (opts.advertise ?? opts.listen ?? '').replace(/:\d+$/, '');
    if (!opts.advertise && (host === '0.0.0.0' || host === '[::]' || host === '::')) {
      throw new Error(`GrpcTransport: listening on ${opts.listen} needs \`advertise\` (a host:port peers can dial)`);
    }
    this.id = opts.id;
    this.creds = opts.credentials ?? { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() };
    this.maxBytes = opts.maxMessageBytes ?? RAFT_MAX_MESSAGE_BYTES;
    this.backoffInitialMs = opts.backoffInitialMs ?? 50;
    this.backoffMaxMs = opts.backoffMaxMs ?? 1000;
    this.ownsServer = !opts.server;
    this.server =
      opts.server ??
      new grpc.Server({ 'grpc.max_receive_message_length': this.maxBytes, 'grpc.max_send_message_length': this.maxBytes });
    this.advertised = opts.advertise ?? opts.listen ?? '';
    this.server.addService(raftService().service, {
      Stream: (call: grpc.ServerReadableStream<Envelope, unknown>, cb: grpc.sendUnaryData<unknown>) => this.serveStream(call, cb),
      InstallSnapshot: (call: grpc.ServerReadableStream<SnapshotChunk, SnapshotAck>, cb: grpc.sendUnaryData<SnapshotAck>) =>
        this.serveSnapshot(call, cb),
    });
  }

  /**
   * Binds `listen` (when the transport owns its server). Resolves to the bound port.
   * @throws Error when the address cannot be bound.
   */
  async start(): Promise<number> {
    if (!this.ownsServer) return 0;
    const listen = this.opts.listen!;
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(listen, this.creds.server, (err, p) => (err ? reject(new Error(`raft transport cannot bind ${listen}: ${err.message}`)) : resolve(p))),
    );
    if (!this.opts.advertise) this.advertised = listen.replace(/:0$/, `:${port}`);
    return port;
  }

  /** The `host:port` peers reach this node at. */
  address(): string {
    return this.advertised;
  }

  setHandler(h: TransportHandler): void {
    this.handler = h;
  }

  /** Records (or updates) the address of a peer. */
  addPeer(id: NodeId, addr: string): void {
    if (id === this.id || !addr) return;
    const p = this.peers.get(id);
    if (p && p.addr === addr) return;
    if (p) this.dropPeerConn(p);
    this.peers.set(id, { id, addr, retryAt: 0, backoffMs: this.backoffInitialMs });
  }

  removePeer(id: NodeId): void {
    const p = this.peers.get(id);
    if (!p) return;
    this.dropPeerConn(p);
    this.peers.delete(id);
  }

  peerAddr(id: NodeId): string | undefined {
    return id === this.id ? this.advertised : this.peers.get(id)?.addr;
  }

  /** Known peers and their addresses (not including this node). */
  peerAddrs(): Map<NodeId, string> {
    return new Map([...this.peers].map(([id, p]) => [id, p.addr]));
  }

  /**
   * Sends messages (fire and forget). Undeliverable ones are reported through
   * `onUnreachable`/`onSnapshotStatus` asynchronously.
   */
  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      const p = this.peers.get(m.to);
      if (!p) {
        this.opts.logger?.debug?.({ to: m.to, type: m.type }, 'raft transport: no address for peer, dropping');
        this.later(() => this.handler?.onUnreachable(m.to));
        continue;
      }
      if (m.snapshot && m.type === 'MsgSnap') {
        void this.sendSnapshot(p, m);
        continue;
      }
      const stream = this.streamFor(p);
      if (!stream) {
        this.later(() => this.handler?.onUnreachable(m.to));
        continue;
      }
      stream.write({ from: this.id, fromAddr: this.advertised, message: encodeMessage(m), cluster: this.opts.clusterId ?? '' });
    }
  }

  private later(fn: () => void): void {
    setImmediate(() => {
      if (!this.closed) fn();
    });
  }

  private clientFor(p: Peer): RaftClient {
    if (!p.client) {
      const { Client } = raftService();
      p.client = new Client(p.addr, this.creds.client, {
        'grpc.max_send_message_length': this.maxBytes,
        'grpc.max_receive_message_length': this.maxBytes,
        'grpc.initial_reconnect_backoff_ms': this.backoffInitialMs,
        'grpc.max_reconnect_backoff_ms': this.backoffMaxMs,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 1,
        ...this.opts.channelOptions,
      });
    }
    return p.client;
  }

  private streamFor(p: Peer): grpc.ClientWritableStream<Envelope> | undefined {
    if (p.stream) return p.stream;
    if (Date.now() < p.retryAt) return undefined;
    const client = this.clientFor(p);
    let failed = false;
    const stream = client.Stream((err) => {
      if (failed) return;
      failed = true;
      if (p.stream === stream) p.stream = undefined;
      if (this.closed) return;
      p.retryAt = Date.now() + p.backoffMs;
      p.backoffMs = Math.min(p.backoffMs * 2, this.backoffMaxMs);
      if (err?.details === MEMBER_REMOVED) {
        this.opts.logger?.warn({ peer: p.id }, 'raft transport: the peer refused our messages: this member was removed from the Raft group');
        this.handler?.onRemoved?.(p.id);
        return;
      }
      if (err) this.opts.logger?.debug?.({ peer: p.id, addr: p.addr, err: err.message }, 'raft transport: stream to peer failed');
      this.handler?.onUnreachable(p.id);
    });
    stream.on('metadata', () => {
      // The server answers with headers as soon as it accepts the stream: the peer is reachable.
      p.backoffMs = this.backoffInitialMs;
    });
    stream.on('error', () => {});
    p.stream = stream;
    return stream;
  }

  private async sendSnapshot(p: Peer, m: Message): Promise<void> {
    const data = m.snapshot!.data;
    const header: Envelope = { from: this.id, fromAddr: this.advertised, message: encodeMessage(m, true), cluster: this.opts.clusterId ?? '' };
    let ok = false;
    try {
      const client = this.clientFor(p);
      // Allow 10 s plus 1 s per 10 MiB.
      const deadline = Date.now() + 10_000 + Math.ceil(data.byteLength / (10 << 20)) * 1000;
      ok = await new Promise<boolean>((resolve) => {
        const call = client.InstallSnapshot({ deadline }, (err, ack) => {
          if (err) this.opts.logger?.warn({ peer: p.id, err: err.message }, 'raft transport: snapshot send failed');
          else if (ack?.error === MEMBER_REMOVED) this.handler?.onRemoved?.(p.id);
          else if (!ack?.ok) this.opts.logger?.warn({ peer: p.id, err: ack?.error }, 'raft transport: peer rejected snapshot');
          resolve(!err && !!ack?.ok);
        });
        call.on('error', () => {});
        const total = data.byteLength;
        let offset = 0;
        const pump = (): void => {
          while (offset < total || offset === 0) {
            const end = Math.min(offset + SNAPSHOT_CHUNK_BYTES, total);
            const chunk: SnapshotChunk = {
              header: offset === 0 ? header : null,
              totalBytes: total,
              offset,
              data: Buffer.from(data.buffer, data.byteOffset + offset, end - offset),
            };
            const more = call.write(chunk);
            offset = end;
            if (offset >= total) break;
            if (!more) {
              call.once('drain', pump);
              return;
            }
          }
          call.end();
        };
        pump();
      });
    } catch (err) {
      this.opts.logger?.warn({ peer: p.id, err: (err as Error).message }, 'raft transport: snapshot send failed');
    }
    if (!this.closed) this.handler?.onSnapshotStatus(p.id, ok);
  }

  private accept(env: Envelope | null | undefined): boolean {
    if (!env || this.closed) return false;
    if (this.opts.clusterId && env.cluster && env.cluster !== this.opts.clusterId) return false;
    // Learn (or update, after a restart on a new address) the sender's address. With mutual TLS
    // the sender is authenticated by the cluster CA.
    if (env.from && env.fromAddr && env.from !== this.id && this.peers.get(env.from)?.addr !== env.fromAddr) this.addPeer(env.from, env.fromAddr);
    return true;
  }

  private serveStream(call: grpc.ServerReadableStream<Envelope, unknown>, cb: grpc.sendUnaryData<unknown>): void {
    this.inbound.add(call);
    call.sendMetadata(new grpc.Metadata());
    let refused = false;
    call.on('data', (env: Envelope) => {
      if (refused || !this.accept(env)) return;
      let m: Message;
      try {
        m = decodeMessage(env.message);
      } catch (err) {
        this.opts.logger?.warn({ from: env.from, err: (err as Error).message }, 'raft transport: undecodable message dropped');
        return;
      }
      if (this.handler?.onMessage(m) === 'removed') {
        // Tell the sender (its stream ends with this status) instead of silently dropping.
        refused = true;
        if (this.inbound.delete(call)) cb({ code: grpc.status.FAILED_PRECONDITION, details: MEMBER_REMOVED });
      }
    });
    const done = (): void => {
      if (!this.inbound.delete(call)) return;
      cb(null, {});
    };
    call.on('end', done);
    call.on('error', () => this.inbound.delete(call));
    call.on('cancelled', () => this.inbound.delete(call));
  }

  private serveSnapshot(call: grpc.ServerReadableStream<SnapshotChunk, SnapshotAck>, cb: grpc.sendUnaryData<SnapshotAck>): void {
    this.inbound.add(call);
    let header: Envelope | undefined;
    let buf: Buffer | undefined;
    let received = 0;
    let failed = '';
    call.on('data', (c: SnapshotChunk) => {
      if (failed) return;
      if (!buf) {
        if (!c.header || c.offset !== 0) {
          failed = 'first snapshot chunk has no header';
          return;
        }
        header = c.header;
        buf = Buffer.allocUnsafe(c.totalBytes);
      }
      if (c.offset !== received || received + c.data.byteLength > buf.byteLength) {
        failed = `snapshot chunk at offset ${c.offset} does not follow byte ${received} of ${buf.byteLength}`;
        return;
      }
      c.data.copy(buf, received);
      received += c.data.byteLength;
    });
    call.on('end', () => {
      if (!this.inbound.delete(call)) return;
      if (!failed && (!buf || received !== buf.byteLength)) failed = `snapshot truncated at byte ${received}`;
      if (!failed && !this.accept(header)) failed = 'snapshot from another cluster or transport closed';
      if (failed) {
        cb(null, { ok: false, error: failed });
        return;
      }
      try {
        const m = decodeMessage(header!.message, buf);
        if (this.handler?.onMessage(m) === 'removed') cb(null, { ok: false, error: MEMBER_REMOVED });
        else cb(null, { ok: true, error: '' });
      } catch (err) {
        cb(null, { ok: false, error: `undecodable snapshot message: ${(err as Error).message}` });
      }
    });
    call.on('error', () => this.inbound.delete(call));
    call.on('cancelled', () => this.inbound.delete(call));
  }

  private dropPeerConn(p: Peer): void {
    const s = p.stream;
    p.stream = undefined;
    if (s) {
      s.end();
      s.cancel();
    }
    p.client?.close();
    p.client = undefined;
  }

  /** Closes peer connections and, if the transport owns it, the server. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.peers.values()) this.dropPeerConn(p);
    if (this.ownsServer) {
      // Peers hold long-lived streams to us: a graceful shutdown would wait for them. They
      // see the streams fail and reconnect with backoff.
      this.server.forceShutdown();
    } else {
      for (const c of this.inbound) {
        try {
          (c as unknown as { cancelled?: boolean; destroy?: () => void }).destroy?.();
        } catch {
          /* ignore */
        }
      }
    }
    this.inbound.clear();
  }
}
