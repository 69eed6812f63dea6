/**
 * The Cluster server and client over real gRPC + TLS on 127.0.0.1: call round trips, error codes
 * both ways, watch streams, and the authentication interceptor (no certificate, self-signed,
 * foreign CA, other cluster, revoked node, worker vs manager, a second service on the same server).
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { SequenceConflictError, ShoalError } from '@shoal/api';
import type { ErrorCode } from '@shoal/api';
import { clientCredentials, MANAGER_CHANNEL_OPTIONS, RootCA, rootTrustCredentials } from '@shoal/ca';
import type { TlsMaterial } from '@shoal/ca';
import { ClusterClient, clusterService, requireRole, RpcError } from '../src/index.js';
import type { ClusterHandler, ClusterServer, Peer } from '../src/index.js';
import { CLUSTER_ID, startManager, testCluster } from './fixtures.js';
import type { Running, TestCluster } from './fixtures.js';

const ALL_CODES: ErrorCode[] = ['InvalidArgument', 'NotFound', 'AlreadyExists', 'FailedPrecondition', 'Unavailable', 'Aborted', 'Unimplemented', 'Internal'];

interface Ctx {
  c: TestCluster;
  mgr: Running;
  revoked: Set<string>;
  raftCalls: string[];
  watchCancelled: Promise<void>;
  manager: TlsMaterial;
  worker: TlsMaterial;
}

/** A stand-in for the Raft transport: another service on the same server, managers only by default. */
const fakeRaftService: grpc.ServiceDefinition = {
  Ping: {
    path: '/shoal.raft.Raft/Ping',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
    requestDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
    responseSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
    responseDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
  },
  // Client streaming, like the Raft transport's `Stream`.
  Stream: {
    path: '/shoal.raft.Raft/Stream',
    requestStream: true,
    responseStream: false,
    requestSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
    requestDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
    responseSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
    responseDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
  },
};
const FakeRaftClient = grpc.makeGenericClientConstructor(fakeRaftService, 'Raft');
let unserializableCancelled = 0;

function handler(onWatchCancel: () => void): ClusterHandler {
  return {
    async call(method, params, peer) {
      switch (method) {
        case 'echo':
          return { params, peer };
        case 'fail': {
          const p = params as { code: ErrorCode; message: string };
          throw new ShoalError(p.code, p.message);
        }
        case 'conflict':
          throw new SequenceConflictError('service web');
        case 'crash':
          throw new TypeError('cannot read properties of undefined');
        case 'managersOnly':
          requireRole(peer, ['manager'], 'managersOnly');
          return 'ok';
        case 'ca.getRootCACertificate':
          return { anonymous: peer === null };
        default:
          throw new ShoalError('Unimplemented', `no method ${method}`);
      }
    },
    watch(method, params, peer, push, end) {
      if (method === 'count') {
        const n = (params as { n: number }).n;
        for (let i = 1; i <= n; i++) push({ i, peer: peer.nodeId });
        end();
        return () => {};
      }
      if (method === 'failAfterOne') {
        push(1);
        setImmediate(() => end(new ShoalError('Unavailable', 'session ended: node is down')));
        return () => {};
      }
      if (method === 'unserializable') {
        push(10n);
        return () => unserializableCancelled++;
      }
      if (method === 'forever') {
        const t = setInterval(() => push('tick'), 5);
        return () => {
          clearInterval(t);
          onWatchCancel();
        };
      }
      throw new ShoalError('NotFound', `no stream ${method}`);
    },
  };
}

test.before(async (t) => {
  const c = await testCluster();
  const revoked = new Set<string>();
  const raftCalls: string[] = [];
  let cancelled!: () => void;
  const watchCancelled = new Promise<void>((r) => (cancelled = r));
  const setup = (s: ClusterServer): void => {
    s.addService(fakeRaftService, {
      Ping: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        raftCalls.push('ping');
        cb(null, { pong: true });
      },
      Stream: (call: grpc.ServerReadableStream<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        let n = 0;
        call.on('data', () => {
          n++;
          raftCalls.push('message');
        });
        call.on('end', () => cb(null, { n }));
      },
    });
  };
  const mgr = await startManager(c, handler(cancelled), { isRevoked: (id) => revoked.has(id), setup });
  const ctx: Ctx = { c, mgr, revoked, raftCalls, watchCancelled, manager: await c.node('manager2', 'manager'), worker: await c.node('worker1', 'worker') };
  t.context = ctx;
});

test.after.always(async (t) => {
  await (t.context as Ctx).mgr.close();
});

function client(ctx: Ctx, m: TlsMaterial): ClusterClient {
  return new ClusterClient({ managers: [ctx.mgr.addr], ...m, connectTimeoutMs: 2000, callTimeoutMs: 5000 });
}

/** A raw call without a client certificate (TLS trusting the root), like a joiner. */
function anonymousCall(addr: string, rootPem: string, method: string, watch = false): Promise<{ err?: grpc.ServiceError; json?: unknown }> {
  const { Client } = clusterService();
  const cl = new Client(addr, rootTrustCredentials(rootPem), { ...MANAGER_CHANNEL_OPTIONS });
  const req = { method, json: Buffer.from('{}') };
  return new Promise((resolve) => {
    const done = (v: { err?: grpc.ServiceError; json?: unknown }): void => {
      cl.close();
      resolve(v);
    };
    if (watch) {
      const s = cl.Watch(req, new grpc.Metadata(), {});
      s.on('data', (r: { json: Buffer }) => done({ json: JSON.parse(r.json.toString()) }));
      s.on('error', (err: grpc.ServiceError) => done({ err }));
      return;
    }
    cl.Call(req, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, res) => done(err ? { err } : { json: JSON.parse(res!.json.toString()) }));
  });
}

/** Sends three messages on the client-streaming stand-in; resolves to the error or the count acknowledged. */
function streamRaft(addr: string, creds: grpc.ChannelCredentials): Promise<grpc.ServiceError | { n: number }> {
  const cl = new FakeRaftClient(addr, creds, { ...MANAGER_CHANNEL_OPTIONS }) as grpc.Client & Record<string, (...a: unknown[]) => grpc.ClientWritableStream<unknown>>;
  return new Promise((resolve) => {
    const s = cl.Stream!(new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res?: { n: number }) => {
      cl.close();
      resolve(err ?? res!);
    });
    s.on('error', () => {});
    for (let i = 0; i < 3; i++) s.write({ i });
    s.end();
  });
}

function pingRaft(addr: string, creds: grpc.ChannelCredentials): Promise<grpc.ServiceError | null> {
  const cl = new FakeRaftClient(addr, creds, { ...MANAGER_CHANNEL_OPTIONS }) as grpc.Client & Record<string, (...a: unknown[]) => void>;
  return new Promise((resolve) =>
    cl.Ping!({}, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null) => {
      cl.close();
      resolve(err);
    }),
  );
}

test('call round trip: params and result as JSON, the peer is the caller certificate identity', async (t) => {
  const ctx = t.context as Ctx;
  const m = client(ctx, ctx.manager);
  const w = client(ctx, ctx.worker);
  try {
    const params = { a: [1, 'two', { three: null }], unicode: 'ünïcødé', big: 'x'.repeat(10_000) };
    t.deepEqual(await m.call('echo', params), { params, peer: { nodeId: 'manager2', role: 'manager' } satisfies Peer });
    t.deepEqual(await w.call('echo', { n: 1 }), { params: { n: 1 }, peer: { nodeId: 'worker1', role: 'worker' } });
    t.deepEqual(await w.call('echo'), { peer: { nodeId: 'worker1', role: 'worker' } }, 'undefined params arrive as undefined');
    t.is(m.current, ctx.mgr.addr);
  } finally {
    m.close();
    w.close();
  }
});

test('every ShoalError code and message comes back as the same ShoalError', async (t) => {
  const ctx = t.context as Ctx;
  const m = client(ctx, ctx.manager);
  try {
    for (const code of ALL_CODES) {
      const message = `${code}: service "web" — line with: colons, 100% ünïcode`;
      const err = await t.throwsAsync(m.call('fail', { code, message }));
      t.true(err instanceof ShoalError, code);
      t.false(err instanceof RpcError, `${code} is the remote error, not a transport error`);
      t.is((err as ShoalError).code, code);
      t.is(err?.message, message);
    }
    const conflict = await t.throwsAsync(m.call('conflict'));
    t.is((conflict as ShoalError).code, 'Aborted');
    t.regex(conflict!.message, /out of sequence \(service web changed/);
    const crash = await t.throwsAsync(m.call('crash'));
    t.is((crash as ShoalError).code, 'Internal');
    t.is(crash?.message, 'cannot read properties of undefined');
  } finally {
    m.close();
  }
});

test('per-method role checks in the handler: a worker is refused, a manager admitted', async (t) => {
  const ctx = t.context as Ctx;
  const m = client(ctx, ctx.manager);
  const w = client(ctx, ctx.worker);
  try {
    t.is(await m.call('managersOnly'), 'ok');
    const err = await t.throwsAsync(w.call('managersOnly'));
    t.true(err instanceof RpcError);
    t.is((err as RpcError).grpcCode, grpc.status.PERMISSION_DENIED);
    t.is((err as RpcError).code, 'FailedPrecondition');
    t.is(err!.message, 'node worker1 is a worker; managersOnly needs role manager');
  } finally {
    m.close();
    w.close();
  }
});

test('watch: values in order then a clean end; a handler error ends the stream with that ShoalError', async (t) => {
  const ctx = t.context as Ctx;
  const w = client(ctx, ctx.worker);
  try {
    const got: unknown[] = [];
    const end = await new Promise<Error | undefined>((resolve) => w.watch('count', { n: 5 }, (v) => got.push(v), resolve));
    t.is(end, undefined);
    t.deepEqual(got, [1, 2, 3, 4, 5].map((i) => ({ i, peer: 'worker1' })));

    const got2: unknown[] = [];
    const err = await new Promise<Error | undefined>((resolve) => w.watch('failAfterOne', {}, (v) => got2.push(v), resolve));
    t.deepEqual(got2, [1]);
    t.true(err instanceof ShoalError);
    t.is((err as ShoalError).code, 'Unavailable');
    t.is(err?.message, 'session ended: node is down');

    const err3 = await new Promise<Error | undefined>((resolve) => w.watch('nope', {}, () => t.fail('no data expected'), resolve));
    t.is((err3 as ShoalError).code, 'NotFound');

    const err4 = await new Promise<Error | undefined>((resolve) => w.watch('unserializable', {}, () => t.fail('no data expected'), resolve));
    t.is((err4 as ShoalError).code, 'Internal');
    t.regex(err4!.message, /BigInt/);
    t.is(unserializableCancelled, 1, 'the handler is stopped when a value cannot be sent');
  } finally {
    w.close();
  }
});

test('watch: cancel stops the server-side stream and does not call onEnd', async (t) => {
  const ctx = t.context as Ctx;
  const m = client(ctx, ctx.manager);
  try {
    let ticks = 0;
    let ended = false;
    await new Promise<void>((resolve) => {
      const cancel = m.watch(
        'forever',
        {},
        () => {
          if (++ticks === 3) {
            cancel();
            resolve();
          }
        },
        () => (ended = true),
      );
    });
    await ctx.watchCancelled;
    t.is(ticks, 3, 'no values after cancel');
    t.false(ended);
  } finally {
    m.close();
  }
});

test('without a certificate only the join methods answer; Watch and other methods are UNAUTHENTICATED', async (t) => {
  const ctx = t.context as Ctx;
  const ok = await anonymousCall(ctx.mgr.addr, ctx.c.root.certPem, 'ca.getRootCACertificate');
  t.deepEqual(ok.json, { anonymous: true });
  for (const method of ['echo', 'dispatcher.openSession', '']) {
    const r = await anonymousCall(ctx.mgr.addr, ctx.c.root.certPem, method);
    t.is(r.err?.code, grpc.status.UNAUTHENTICATED, method);
    t.regex(r.err?.details ?? '', /^a valid cluster certificate is required/);
  }
  const w = await anonymousCall(ctx.mgr.addr, ctx.c.root.certPem, 'count', true);
  t.is(w.err?.code, grpc.status.UNAUTHENTICATED);
  const wj = await anonymousCall(ctx.mgr.addr, ctx.c.root.certPem, 'ca.getRootCACertificate', true);
  t.is(wj.err?.code, grpc.status.UNAUTHENTICATED, 'join methods are unary only');
});

test('a client with a self-signed certificate, or one from a foreign CA, is refused', async (t) => {
  const ctx = t.context as Ctx;
  const foreign = await RootCA.create({ clusterId: CLUSTER_ID });
  // The foreign root's own certificate is self-signed; the server's root must still be trusted by the client.
  const selfSigned: TlsMaterial = { rootPem: ctx.c.root.certPem, certPem: foreign.certPem, keyPem: foreign.keyPem };
  const other = await testCluster(CLUSTER_ID);
  const foreignManager = { ...(await other.node('manager1', 'manager')), rootPem: ctx.c.root.certPem };
  for (const [name, m] of [['self-signed', selfSigned], ['foreign CA', foreignManager]] as const) {
    const cl = client(ctx, m);
    try {
      const err = await t.throwsAsync(cl.call('echo', {}));
      t.true(err instanceof RpcError, name);
      t.is((err as RpcError).grpcCode, grpc.status.UNAUTHENTICATED, name);
      t.regex(err!.message, /^a valid cluster certificate is required/, name);
      const werr = await new Promise<Error | undefined>((resolve) => cl.watch('count', { n: 1 }, () => t.fail('no data'), resolve));
      t.is((werr as RpcError).grpcCode, grpc.status.UNAUTHENTICATED, name);
    } finally {
      cl.close();
    }
  }
});

test('a certificate of another cluster signed by the same root is refused', async (t) => {
  const ctx = t.context as Ctx;
  const cl = client(ctx, await ctx.c.node('stranger', 'manager', 'cluster2'));
  try {
    const err = await t.throwsAsync(cl.call('echo', {}));
    t.is((err as RpcError).grpcCode, grpc.status.UNAUTHENTICATED);
    t.regex(err!.message, /node stranger belongs to cluster cluster2, not cluster1/);
  } finally {
    cl.close();
  }
});

test('a removed node is refused from its next call on, even on an open connection', async (t) => {
  const ctx = t.context as Ctx;
  const m = await ctx.c.node('worker-removed', 'worker');
  const cl = client(ctx, m);
  try {
    t.deepEqual(await cl.call('echo', 1), { params: 1, peer: { nodeId: 'worker-removed', role: 'worker' } });
    ctx.revoked.add('worker-removed');
    const err = await t.throwsAsync(cl.call('echo', 2));
    t.is((err as RpcError).grpcCode, grpc.status.UNAUTHENTICATED);
    t.regex(err!.message, /node worker-removed was removed from the cluster/);
    const werr = await new Promise<Error | undefined>((resolve) => cl.watch('count', { n: 1 }, () => t.fail('no data'), resolve));
    t.is((werr as RpcError).grpcCode, grpc.status.UNAUTHENTICATED);
  } finally {
    cl.close();
  }
});

test('another service on the same server (Raft stand-in): managers only; no certificate and workers refused before the handler', async (t) => {
  const ctx = t.context as Ctx;
  const before = ctx.raftCalls.length;
  t.is(await pingRaft(ctx.mgr.addr, clientCredentials(ctx.manager)), null);
  const anon = await pingRaft(ctx.mgr.addr, rootTrustCredentials(ctx.c.root.certPem));
  t.is(anon?.code, grpc.status.UNAUTHENTICATED);
  t.regex(anon?.details ?? '', /^a valid cluster certificate is required/);
  const worker = await pingRaft(ctx.mgr.addr, clientCredentials(ctx.worker));
  t.is(worker?.code, grpc.status.PERMISSION_DENIED);
  t.is(worker?.details, 'node worker1 is a worker; shoal.raft.Raft needs role manager');
  t.deepEqual(await streamRaft(ctx.mgr.addr, clientCredentials(ctx.manager)), { n: 3 });
  t.is(((await streamRaft(ctx.mgr.addr, clientCredentials(ctx.worker))) as grpc.ServiceError).code, grpc.status.PERMISSION_DENIED);
  t.is(((await streamRaft(ctx.mgr.addr, rootTrustCredentials(ctx.c.root.certPem))) as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
  t.deepEqual(ctx.raftCalls.slice(before), ['ping', 'message', 'message', 'message'], 'only the manager reached the handlers');
});

test('serviceRoles admits workers to a listed service', async (t) => {
  const ctx = t.context as Ctx;
  const s = await startManager(ctx.c, handler(() => {}), {
    serviceRoles: { 'shoal.raft.Raft': ['manager', 'worker'] },
    setup: (srv) => srv.addService(fakeRaftService, { Ping: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}) }),
  });
  try {
    t.is(await pingRaft(s.addr, clientCredentials(ctx.worker)), null);
    t.is((await pingRaft(s.addr, rootTrustCredentials(ctx.c.root.certPem)))?.code, grpc.status.UNAUTHENTICATED);
  } finally {
    await s.close();
  }
});
