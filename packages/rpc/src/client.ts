/**
 * Client of the managers' Cluster service with mutual TLS and fail-over across manager addresses
 * (SwarmKit `connectionbroker` + `remotes`: pick a manager, move on when it is unreachable).
 *
 * Fail-over: a call goes to the last manager that answered, then to the others in list order. It
 * moves to the next address only when the current one cannot be reached: no connection within
 * `connectTimeoutMs`, a failed connection (refused, TLS handshake failed), or an UNAVAILABLE status
 * from the transport (not one a handler threw). A connection lost after the request was sent also
 * counts, so a call may run twice on different managers: methods called through this client must
 * tolerate that (openSession, heartbeat and status updates do). Errors from handlers are re-thrown
 * as the same ShoalError without trying another manager; after an Unavailable one (e.g. "not the
 * leader", session lost) the next call starts at the following manager, so a retrying agent walks
 * the list.
 */
import * as grpc from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import type { Assignments, DispatcherClient, SessionInfo, SessionRequest, TaskStatusUpdate } from '@shoal/api';
import { clientCredentials, MANAGER_CHANNEL_OPTIONS } from '@shoal/ca';
import type { TlsMaterial } from '@shoal/ca';
import { errorFromStatus, isTransportStatus, RpcError, transportReason } from './codes.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './server.js';
import { clusterService, decodeJson, encodeJson } from './service.js';
import type { CallResponse, ClusterGrpcClient } from './service.js';

/** Default wait for a connection to one manager before trying the next, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3000;
/** Default deadline of a whole call (all attempts), ms. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

export interface ClusterClientOptions extends TlsMaterial {
  /** Manager addresses, `host:port`. */
  managers: string[];
  /** If set, a manager whose certificate names another cluster (O) is refused. */
  clusterId?: string;
  /** Wait for a connection to one manager before trying the next, ms. Default 3000. */
  connectTimeoutMs?: number;
  /** Default deadline of `call` (all attempts), ms. Default 10000. */
  callTimeoutMs?: number;
  /** Largest gRPC message sent or received, bytes. Default 64 MiB. */
  maxMessageBytes?: number;
}

export interface CallOptions {
  /** Deadline of the call including fail-over attempts, ms. Default `callTimeoutMs`. */
  timeoutMs?: number;
}

type Reach = 'ready' | 'failed' | 'timeout';

/** Channel options shared by cluster clients: SNI, message size, fast reconnect, keepalive (dead peers on long streams). */
export function clusterChannelOptions(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): grpc.ChannelOptions {
  return {
    ...MANAGER_CHANNEL_OPTIONS,
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.use_local_subchannel_pool': 1,
  };
}

/**
 * Waits until the channel of `client` is READY (→ 'ready'), fails to connect (→ 'failed', the
 * next call fails fast with the reason) or `deadline` (ms since epoch) passes (→ 'timeout').
 */
function reach(client: grpc.Client, deadline: number): Promise<Reach> {
  const ch = client.getChannel();
  return new Promise((resolve) => {
    const check = (): void => {
      let s: grpc.connectivityState;
      try {
        s = ch.getConnectivityState(true);
      } catch {
        return resolve('failed');
      }
      if (s === grpc.connectivityState.READY) return resolve('ready');
      if (s === grpc.connectivityState.TRANSIENT_FAILURE || s === grpc.connectivityState.SHUTDOWN) return resolve('failed');
      if (Date.now() >= deadline) return resolve('timeout');
      ch.watchConnectivityState(s, deadline, (err) => (err ? resolve('timeout') : check()));
    };
    check();
  });
}

function validAddr(a: unknown): a is string {
  return typeof a === 'string' && /^(\[[0-9a-fA-F:.]+\]|[^\s:/]+):\d{1,5}$/.test(a);
}

/**
 * Calls the managers' Cluster service. Holds one channel per manager address; `close()` when done.
 * Credentials are fixed at construction: after a certificate renewal create a new client.
 */
export class ClusterClient {
  private managers: string[] = [];
  private preferred: string | undefined;
  private readonly clients = new Map<string, ClusterGrpcClient>();
  private readonly creds: grpc.ChannelCredentials;
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly connectTimeoutMs: number;
  private readonly callTimeoutMs: number;
  private readonly watches = new Set<() => void>();
  private closed = false;

  /** @throws InvalidArgument for a malformed manager address. */
  constructor(opts: ClusterClientOptions) {
    this.creds = clientCredentials(opts, { serverRole: 'manager', ...(opts.clusterId ? { clusterId: opts.clusterId } : {}) });
    this.channelOptions = clusterChannelOptions(opts.maxMessageBytes);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.setManagers(opts.managers);
  }

  /** The manager that answered last (tried first), if any. */
  get current(): string | undefined {
    return this.preferred;
  }

  /** The manager addresses in use. */
  get addresses(): readonly string[] {
    return this.managers;
  }

  /**
   * Replaces the manager list (e.g. from `SessionInfo.managers`). Channels to addresses no longer
   * listed are closed; the last good manager stays first if still listed.
   * @throws InvalidArgument for a malformed address (expected host:port).
   */
  setManagers(list: readonly string[]): void {
    for (const a of list) {
      if (!validAddr(a)) throw new ShoalError('InvalidArgument', `invalid manager address ${JSON.stringify(a)}: expected host:port, e.g. 10.0.0.1:2377`);
    }
    this.managers = [...new Set(list)];
    for (const [addr, c] of this.clients) {
      if (!this.managers.includes(addr)) {
        c.close();
        this.clients.delete(addr);
      }
    }
    if (this.preferred !== undefined && !this.managers.includes(this.preferred)) this.preferred = undefined;
  }

  /** Closes every channel and cancels open watches (their `onEnd` is not called). Later calls fail with Unavailable. */
  close(): void {
    this.closed = true;
    for (const cancel of [...this.watches]) cancel();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private order(): string[] {
    const i = this.preferred === undefined ? -1 : this.managers.indexOf(this.preferred);
    return i <= 0 ? [...this.managers] : [...this.managers.slice(i), ...this.managers.slice(0, i)];
  }

  /**
   * After `addr` answered Unavailable (not the leader, session lost, hung): the next call starts at
   * the manager after it (SwarmKit's agent down-weights such a manager the same way).
   */
  private demote(addr: string): void {
    const i = this.managers.indexOf(addr);
    if (i < 0 || this.managers.length < 2) return;
    // Start after it, even when it was not the preferred one (the preferred one may be the dead
    // manager the call skipped over on its way here).
    this.preferred = this.managers[(i + 1) % this.managers.length];
  }

  private clientFor(addr: string): ClusterGrpcClient {
    let c = this.clients.get(addr);
    if (!c) {
      const { Client } = clusterService();
      c = new Client(addr, this.creds, this.channelOptions);
      this.clients.set(addr, c);
    }
    return c;
  }

  private unusable(method: string): ShoalError | undefined {
    if (this.closed) return new ShoalError('Unavailable', `${method}: the cluster client is closed`);
    if (this.managers.length === 0) return new ShoalError('Unavailable', `${method}: no manager address known; join the cluster or pass a manager address`);
    return undefined;
  }

  /**
   * Calls `method` with `params` (JSON) on a manager; resolves to the handler's result.
   * @throws the handler's ShoalError as is; RpcError Unavailable when no manager could be reached
   * (names each address and why) or the deadline passed — its `sent` is true when a connection
   * failed after the request went out, so a write may have been applied; RpcError FailedPrecondition when the
   * manager refused this node's certificate.
   */
  async call<T = unknown>(method: string, params?: unknown, opts: CallOptions = {}): Promise<T> {
    const bad = this.unusable(method);
    if (bad) throw bad;
    const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const req = { method, json: encodeJson(params) };
    const reasons: string[] = [];
    let sent = false;
    for (const addr of this.order()) {
      if (this.closed) break;
      if (Date.now() >= deadline) break;
      const client = this.clientFor(addr);
      const r = await reach(client, Math.min(deadline, Date.now() + this.connectTimeoutMs));
      if (r === 'timeout') {
        reasons.push(`${addr}: no connection within ${this.connectTimeoutMs} ms`);
        continue;
      }
      try {
        const res = await new Promise<CallResponse>((resolve, reject) =>
          client.Call(req, new grpc.Metadata(), { deadline }, (err, out) => (err ? reject(err) : resolve(out!))),
        );
        this.preferred = addr;
        return decodeJson(res.json, `${method} answer from ${addr}`) as T;
      } catch (e) {
        const err = e as grpc.ServiceError;
        if (err instanceof ShoalError) throw err;
        if (this.closed) throw this.unusable(method)!;
        // The channel was READY and the transport (not a handler) ended the call: the request may
        // have gone out before the connection failed.
        const maybeSent = r === 'ready' && isTransportStatus(err) && !/^No connection established/.test(err.details ?? '');
        if (err.code === grpc.status.UNAVAILABLE && isTransportStatus(err)) {
          sent ||= maybeSent;
          reasons.push(`${addr}: ${transportReason(err.details)}`);
          continue;
        }
        if (err.code === grpc.status.DEADLINE_EXCEEDED && isTransportStatus(err)) {
          this.demote(addr);
          throw new RpcError('Unavailable', `${method} on manager ${addr}: no answer within ${timeoutMs} ms`, err.code, maybeSent);
        }
        if (maybeSent && err.code === grpc.status.CANCELLED) {
          this.demote(addr);
          throw new RpcError('Unavailable', `${method} on manager ${addr}: the call was cancelled by the manager (it may be shutting down)`, err.code, true);
        }
        const out = errorFromStatus(err);
        if (out.code === 'Unavailable') this.demote(addr);
        else this.preferred = addr;
        throw out;
      }
    }
    if (this.closed) throw this.unusable(method)!;
    if (reasons.length === 0) reasons.push(`deadline of ${timeoutMs} ms passed`);
    throw new RpcError('Unavailable', `${method}: could not reach any manager (${reasons.join('; ')})`, grpc.status.UNAVAILABLE, sent);
  }

  /**
   * Opens a stream of values from `method`. `onData` gets each value; `onEnd` is called once when
   * the stream ends (no argument: the server finished it; an error: the handler's ShoalError, or
   * RpcError Unavailable when no manager could be reached or the connection was lost). Managers are
   * tried in fail-over order until one accepts the stream; once a value has arrived, a lost
   * connection ends the stream. The returned function cancels it without calling `onEnd`.
   */
  watch(method: string, params: unknown, onData: (v: unknown) => void, onEnd: (err?: Error) => void): () => void {
    let cancelled = false;
    let ended = false;
    let stream: grpc.ClientReadableStream<CallResponse> | undefined;
    const cancel = (): void => {
      if (cancelled) return;
      cancelled = true;
      this.watches.delete(cancel);
      stream?.cancel();
    };
    const finish = (err?: Error): void => {
      if (ended || cancelled) return;
      ended = true;
      this.watches.delete(cancel);
      onEnd(err);
    };
    const bad = this.unusable(method);
    if (bad) {
      queueMicrotask(() => finish(bad));
      return () => {};
    }
    this.watches.add(cancel);
    const req = { method, json: encodeJson(params) };
    const addrs = this.order();
    const reasons: string[] = [];
    const attempt = async (i: number): Promise<void> => {
      if (cancelled || ended) return;
      const addr = addrs[i];
      if (addr === undefined) {
        finish(new RpcError('Unavailable', `${method}: could not reach any manager (${reasons.join('; ')})`, grpc.status.UNAVAILABLE));
        return;
      }
      const client = this.clientFor(addr);
      const r = await reach(client, Date.now() + this.connectTimeoutMs);
      if (cancelled || ended) return;
      if (r === 'timeout') {
        reasons.push(`${addr}: no connection within ${this.connectTimeoutMs} ms`);
        return attempt(i + 1);
      }
      let received = false;
      let errored = false;
      const s = client.Watch(req, new grpc.Metadata(), {});
      stream = s;
      s.on('data', (res: CallResponse) => {
        if (cancelled || ended) return;
        if (!received) this.preferred = addr;
        received = true;
        let v: unknown;
        try {
          v = decodeJson(res.json, `${method} value from ${addr}`);
        } catch (e) {
          finish(e as Error);
          s.cancel();
          return;
        }
        onData(v);
      });
      s.on('error', (err: grpc.ServiceError) => {
        errored = true;
        if (cancelled || ended) return;
        if (!received && err.code === grpc.status.UNAVAILABLE && isTransportStatus(err)) {
          reasons.push(`${addr}: ${transportReason(err.details)}`);
          void attempt(i + 1);
          return;
        }
        if (isTransportStatus(err) && err.code === grpc.status.UNAVAILABLE) {
          this.demote(addr);
          finish(new RpcError('Unavailable', `${method} stream from manager ${addr} lost: ${transportReason(err.details)}`, err.code));
          return;
        }
        const out = errorFromStatus(err);
        if (out.code === 'Unavailable') this.demote(addr);
        finish(out);
      });
      s.on('end', () => {
        // grpc-js emits 'error' (synchronously) before 'end' for a non-OK status; 'end' alone = OK.
        if (!errored && stream === s) finish();
      });
    };
    void attempt(0);
    return cancel;
  }
}

/**
 * `DispatcherClient` over the Cluster service: `dispatcher.openSession`, `dispatcher.heartbeat`,
 * `dispatcher.updateTaskStatus` (Call) and `dispatcher.assignments` (Watch with `{sessionId}`).
 * Errors are the dispatcher's ShoalErrors (Unavailable for an unknown session) or RpcError
 * Unavailable when no manager can be reached — both mean "open a new session".
 */
export class RemoteDispatcherClient implements DispatcherClient {
  constructor(private readonly client: ClusterClient, private readonly opts: { timeoutMs?: number } = {}) {}

  private co(): CallOptions {
    return this.opts.timeoutMs === undefined ? {} : { timeoutMs: this.opts.timeoutMs };
  }

  openSession(req: SessionRequest): Promise<SessionInfo> {
    return this.client.call<SessionInfo>('dispatcher.openSession', req, this.co());
  }

  heartbeat(sessionId: string): Promise<{ heartbeatPeriodMs: number }> {
    return this.client.call<{ heartbeatPeriodMs: number }>('dispatcher.heartbeat', { sessionId }, this.co());
  }

  watchAssignments(sessionId: string, onAssignments: (a: Assignments) => void, onEnd: (err?: Error) => void): () => void {
    return this.client.watch('dispatcher.assignments', { sessionId }, (v) => onAssignments(v as Assignments), onEnd);
  }

  async updateTaskStatus(sessionId: string, updates: TaskStatusUpdate[]): Promise<void> {
    await this.client.call('dispatcher.updateTaskStatus', { sessionId, updates }, this.co());
  }
}
