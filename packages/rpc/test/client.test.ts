/**
 * ClusterClient fail-over and RemoteDispatcherClient end to end over real gRPC + mutual TLS on
 * 127.0.0.1, against a tiny in-test dispatcher (a stand-in for the leader's dispatcher).
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { ShoalError, unavailable } from '@shoal/api';
import type { Assignments, DispatcherClient, SessionInfo, SessionRequest, Task, TaskStatusUpdate } from '@shoal/api';
import type { TlsMaterial } from '@shoal/ca';
import { ClusterClient, dispatcherMethods, RemoteDispatcherClient, RpcError, tableHandler } from '../src/index.js';
import type { ClusterHandler } from '../src/index.js';
import { deadAddr, silentServer, startManager, testCluster } from './fixtures.js';
import type { TestCluster } from './fixtures.js';

/** A tiny dispatcher: sessions by ID, per-node task sets pushed to watchers, status updates recorded. */
class TinyDispatcher implements DispatcherClient {
  private n = 0;
  readonly sessions = new Map<string, { nodeId: string; watchers: Set<{ on: (a: Assignments) => void; end: (e?: Error) => void }> }>();
  readonly tasks = new Map<string, Task[]>();
  readonly statuses: { nodeId: string; updates: TaskStatusUpdate[] }[] = [];
  heartbeats = 0;

  private session(id: string) {
    const s = this.sessions.get(id);
    if (!s) throw unavailable(`session ${id} not found; open a new session`);
    return s;
  }
  async openSession(req: SessionRequest): Promise<SessionInfo> {
    const sessionId = `s${++this.n}-${req.nodeId}`;
    this.sessions.set(sessionId, { nodeId: req.nodeId, watchers: new Set() });
    return { sessionId, heartbeatPeriodMs: 1000, managers: [{ nodeId: 'manager1', addr: req.addr }] };
  }
  async heartbeat(sessionId: string): Promise<{ heartbeatPeriodMs: number }> {
    this.session(sessionId);
    this.heartbeats++;
    return { heartbeatPeriodMs: 1000 };
  }
  watchAssignments(sessionId: string, on: (a: Assignments) => void, end: (err?: Error) => void): () => void {
    let s;
    try {
      s = this.session(sessionId);
    } catch (e) {
      queueMicrotask(() => end(e as Error));
      return () => {};
    }
    const w = { on, end };
    s.watchers.add(w);
    on({ tasks: this.tasks.get(s.nodeId) ?? [] });
    return () => s.watchers.delete(w);
  }
  async updateTaskStatus(sessionId: string, updates: TaskStatusUpdate[]): Promise<void> {
    this.statuses.push({ nodeId: this.session(sessionId).nodeId, updates });
  }
  assign(nodeId: string, tasks: Task[]): void {
    this.tasks.set(nodeId, tasks);
    for (const s of this.sessions.values()) if (s.nodeId === nodeId) for (const w of s.watchers) w.on({ tasks });
  }
  stop(): void {
    for (const s of this.sessions.values()) for (const w of s.watchers) w.end(unavailable('dispatcher stopped; reconnect to the new leader'));
    this.sessions.clear();
  }
}

function task(id: string, nodeId: string): Task {
  return {
    id,
    nodeId,
    serviceId: 'svc1',
    serviceName: 'web',
    slot: 1,
    desiredState: 'running',
    status: { state: 'assigned', timestamp: '2026-01-01T00:00:00.000Z', message: 'scheduled' },
  } as unknown as Task;
}

/** A manager answering `where` with its name, plus forever-streams that end when the server dies. */
function named(name: string): ClusterHandler {
  return tableHandler({
    calls: { where: async () => name },
    watches: {
      ticks: (_p, _peer, push) => {
        push(name);
        const t = setInterval(() => push(name), 20);
        return () => clearInterval(t);
      },
    },
  });
}

let c: TestCluster;
let worker: TlsMaterial;
test.before(async () => {
  c = await testCluster();
  worker = await c.node('worker1', 'worker');
});

function client(managers: string[], extra: { connectTimeoutMs?: number } = {}): ClusterClient {
  return new ClusterClient({ managers, ...worker, connectTimeoutMs: extra.connectTimeoutMs ?? 2000, callTimeoutMs: 8000 });
}

test('RemoteDispatcherClient: session, heartbeat, assignments stream, status updates, errors', async (t) => {
  const d = new TinyDispatcher();
  const mgr = await startManager(c, tableHandler(dispatcherMethods(d)));
  const cl = client([mgr.addr]);
  const agent = new RemoteDispatcherClient(cl, { timeoutMs: 5000 });
  try {
    const info = await agent.openSession({ nodeId: 'worker1', addr: '10.0.0.9', description: { hostname: 'w1' } as SessionRequest['description'] });
    t.is(info.heartbeatPeriodMs, 1000);
    t.deepEqual(info.managers, [{ nodeId: 'manager1', addr: '10.0.0.9' }]);
    t.deepEqual(await agent.heartbeat(info.sessionId), { heartbeatPeriodMs: 1000 });
    t.is(d.heartbeats, 1);

    // Another node's identity cannot be claimed.
    const spoof = await t.throwsAsync(agent.openSession({ nodeId: 'worker2', addr: 'x', description: {} as SessionRequest['description'] }));
    t.is((spoof as RpcError).grpcCode, grpc.status.PERMISSION_DENIED);
    t.regex(spoof!.message, /node worker1 cannot open a session for node "worker2"/);

    const got: Assignments[] = [];
    let ended: ((e?: Error) => void) | undefined;
    const end = new Promise<Error | undefined>((r) => (ended = r));
    let second!: () => void;
    const gotTwo = new Promise<void>((r) => (second = r));
    agent.watchAssignments(
      info.sessionId,
      (a) => {
        got.push(a);
        if (got.length === 2) second();
      },
      (e) => ended!(e),
    );
    await new Promise<void>((r) => {
      const wait = (): void => void (d.sessions.get(info.sessionId)!.watchers.size > 0 ? r() : setTimeout(wait, 5));
      wait();
    });
    d.assign('worker1', [task('t1', 'worker1'), task('t2', 'worker1')]);
    await gotTwo;
    t.deepEqual(got[0], { tasks: [] });
    t.deepEqual(got[1], { tasks: [task('t1', 'worker1'), task('t2', 'worker1')] });

    const update: TaskStatusUpdate = { taskId: 't1', status: { state: 'running', timestamp: '2026-01-01T00:00:01.000Z', message: 'started', containerId: 'abc' } };
    t.is(await agent.updateTaskStatus(info.sessionId, [update]), undefined);
    t.deepEqual(d.statuses, [{ nodeId: 'worker1', updates: [update] }]);

    d.stop();
    const err = await end;
    t.true(err instanceof ShoalError);
    t.is((err as ShoalError).code, 'Unavailable');
    t.is(err?.message, 'dispatcher stopped; reconnect to the new leader');

    const hb = await t.throwsAsync(agent.heartbeat(info.sessionId));
    t.is((hb as ShoalError).code, 'Unavailable');
    t.false(hb instanceof RpcError, "the dispatcher's own error");
    t.regex(hb!.message, /^session s1-worker1 not found/);
    const w = await new Promise<Error | undefined>((r) => agent.watchAssignments('nope', () => t.fail('no data'), r));
    t.is((w as ShoalError).code, 'Unavailable');
    const bad = await t.throwsAsync(cl.call('dispatcher.heartbeat', { sessionId: 7 }));
    t.is((bad as ShoalError).code, 'InvalidArgument');
  } finally {
    cl.close();
    await mgr.close();
  }
});

test('fail-over: a dead first manager is skipped, the good one remembered; the next manager takes over when it dies', async (t) => {
  const a = await startManager(c, named('A'), { nodeId: 'mA' });
  const b = await startManager(c, named('B'), { nodeId: 'mB' });
  const dead = await deadAddr();
  const cl = client([dead, a.addr, b.addr]);
  try {
    t.is(await cl.call('where'), 'A');
    t.is(cl.current, a.addr);
    t.is(await cl.call('where'), 'A');
    await a.close();
    t.is(await cl.call('where'), 'B');
    t.is(cl.current, b.addr);
    const v = await new Promise<unknown>((resolve) => {
      const cancel = cl.watch('ticks', {}, (x) => {
        cancel();
        resolve(x);
      }, (e) => resolve(e));
    });
    t.is(v, 'B');
  } finally {
    cl.close();
    await b.close();
  }
});

test('fail-over: a manager that accepts TCP but never answers is left after connectTimeoutMs', async (t) => {
  const silent = await silentServer();
  const b = await startManager(c, named('B'), { nodeId: 'mB2' });
  const cl = client([silent.addr, b.addr], { connectTimeoutMs: 300 });
  try {
    t.is(await cl.call('where'), 'B');
    const w = await new Promise<unknown>((resolve) => {
      const cancel = cl.watch('ticks', {}, (x) => {
        cancel();
        resolve(x);
      }, resolve);
    });
    t.is(w, 'B');
  } finally {
    cl.close();
    await silent.close();
    await b.close();
  }
});

test('a manager answering Unavailable (not the leader) is thrown, and the next call starts at the following manager', async (t) => {
  const follower = await startManager(
    c,
    tableHandler({
      calls: { where: async () => Promise.reject(unavailable('this manager is not the leader; try another')) },
      watches: { ticks: (_p, _peer, _push, end) => (setImmediate(() => end(unavailable('not the leader'))), () => {}) },
    }),
    { nodeId: 'mF' },
  );
  const leader = await startManager(c, named('L'), { nodeId: 'mL' });
  const cl = client([follower.addr, leader.addr]);
  try {
    const err = await t.throwsAsync(cl.call('where'));
    t.is((err as ShoalError).code, 'Unavailable');
    t.is(err!.message, 'this manager is not the leader; try another');
    t.is(cl.current, leader.addr);
    t.is(await cl.call('where'), 'L');
    // A watch ended with Unavailable moves on the same way.
    const fresh = client([follower.addr, leader.addr]);
    try {
      const end = await new Promise<Error | undefined>((r) => fresh.watch('ticks', {}, () => {}, r));
      t.is((end as ShoalError).code, 'Unavailable');
      t.is(fresh.current, leader.addr);
    } finally {
      fresh.close();
    }
  } finally {
    cl.close();
    await follower.close();
    await leader.close();
  }
});

test('no manager reachable: Unavailable naming every address; a watch ends the same way', async (t) => {
  const d1 = await deadAddr();
  const d2 = await deadAddr();
  const cl = client([d1, d2]);
  try {
    const err = await t.throwsAsync(cl.call('where', {}, { timeoutMs: 3000 }));
    t.true(err instanceof RpcError);
    t.is((err as RpcError).code, 'Unavailable');
    t.regex(err!.message, /^where: could not reach any manager \(/);
    t.true(err!.message.includes(`${d1}: connect ECONNREFUSED`), err!.message);
    t.true(err!.message.includes(`${d2}: connect ECONNREFUSED`), err!.message);
    t.false((err as RpcError).sent, 'never connected: the request was not sent');
    const w = await new Promise<Error | undefined>((r) => cl.watch('ticks', {}, () => t.fail('no data'), r));
    t.is((w as ShoalError).code, 'Unavailable');
    t.regex(w!.message, /could not reach any manager/);
  } finally {
    cl.close();
  }
});

test('a connection lost after the request went out: Unavailable with sent = true (a write may have been applied)', async (t) => {
  let arrived!: () => void;
  const got = new Promise<void>((r) => (arrived = r));
  const a = await startManager(c, tableHandler({ calls: { hang: () => (arrived(), new Promise(() => {})) } }), { nodeId: 'mH' });
  const cl = client([a.addr]);
  try {
    const call = cl.call('hang', {}, { timeoutMs: 5000 });
    await got;
    await a.server.close(0);
    const err = await t.throwsAsync(call);
    t.true(err instanceof RpcError);
    t.is((err as RpcError).code, 'Unavailable');
    t.true((err as RpcError).sent, err!.message);
  } finally {
    cl.close();
  }
});

test('a watch ends with Unavailable when its manager goes away', async (t) => {
  const a = await startManager(c, named('A'), { nodeId: 'mA3' });
  const cl = client([a.addr]);
  try {
    let first!: () => void;
    const gotOne = new Promise<void>((r) => (first = r));
    const end = new Promise<Error | undefined>((r) => cl.watch('ticks', {}, () => first(), r));
    await gotOne;
    await a.server.close(0);
    const err = await end;
    t.true(err instanceof ShoalError);
    t.is((err as ShoalError).code, 'Unavailable');
  } finally {
    cl.close();
  }
});

test('setManagers, bad addresses and close', async (t) => {
  const b = await startManager(c, named('B'), { nodeId: 'mB4' });
  const dead = await deadAddr();
  const cl = client([dead]);
  try {
    await t.throwsAsync(cl.call('where', {}, { timeoutMs: 2000 }), { message: /could not reach any manager/ });
    cl.setManagers([b.addr, dead, b.addr]);
    t.deepEqual(cl.addresses, [b.addr, dead]);
    t.is(await cl.call('where'), 'B');
    const e = t.throws(() => cl.setManagers(['10.0.0.1']));
    t.is((e as ShoalError).code, 'InvalidArgument');
    t.regex(e!.message, /invalid manager address "10.0.0.1": expected host:port/);
    t.throws(() => new ClusterClient({ managers: ['nope'], ...worker }), { message: /invalid manager address "nope"/ });
    const empty = client([]);
    await t.throwsAsync(empty.call('where'), { message: /no manager address known/ });
    empty.close();
    cl.close();
    const closed = await t.throwsAsync(cl.call('where'));
    t.is((closed as ShoalError).code, 'Unavailable');
    t.regex(closed!.message, /closed/);
  } finally {
    cl.close();
    await b.close();
  }
});
