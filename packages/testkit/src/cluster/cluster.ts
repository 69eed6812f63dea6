/**
 * The in-process cluster harness: N managers with real Raft (`RaftNode` + `Manager`, in-memory
 * storage) over a {@link FakeNetwork}, agents (`Agent` + {@link FakeExecutor}) on every node, and
 * ONE {@link FakeClock} driving all of it — Raft ticks, dispatcher heartbeats, restart delays, agent
 * timers. Object IDs and election timeouts are seeded, storage does no I/O, so a run repeats
 * exactly: the same commands give the same trace.
 *
 * Time moves only inside {@link FakeCluster.run}, {@link FakeCluster.runFor} and
 * {@link FakeCluster.stabilize}: the clock jumps to the next armed timer, fires what is due, then
 * the harness lets every promise and `setImmediate` of that instant settle before time moves on.
 *
 * What is modelled and what is not (see also README.md):
 * - nodes are `FakeHost`s, mirrors of `SwarmNode` (roles, promotion/demotion, removal, Raft join);
 *   certificates are modelled by their role only and never expire;
 * - calls between nodes (dispatcher sessions, `manager.joinRaft`, forwarded control calls, …) are
 *   direct calls that check the network: to a killed node they fail at once (connection refused),
 *   across a cut link they hang until the caller's deadline (10 s, `ClusterClient`'s default);
 *   assignment streams go silent across a cut link and deliver the latest set once it heals;
 * - a killed node's daemon and containers die; its Raft disk and container records survive.
 *
 * One harness at a time per process (it installs a seeded ID source and counts `setImmediate`).
 */
import {
  failedPrecondition, newId, setIdSource, unavailable,
  type Assignments, type DispatcherClient, type Method, type NodeRole, type Params, type Result,
} from '@shoal/api';
import { METHODS } from '@shoal/api/contract';
import type { ControlMethod, Manager } from '@shoal/manager';
import { FNC_NO_STATE, NOT_IN_SWARM, NOT_MANAGER, noLeaderMessage } from '@shoal/node';
import { nopLogger, type Logger } from '@shoal/runtime';
import { FakeClock } from '../fake-clock.js';
import { FakeExecutor } from '../fake-executor.js';
import { FakeNetwork } from './fake-network.js';
import { FakeHost } from './host.js';
import { seededIds, seededRandom } from './seeded.js';
import { settle, trackImmediates } from './settle.js';

export interface FakeClusterOptions {
  /** Seeds election timeouts, object IDs and random drops (default 1). */
  seed?: number;
  /** Raft tick, ms (default 100, shoald's). */
  tickMs?: number;
  /** ms between a node's certificate/role checks (default 2000, shoald's). */
  roleCheckMs?: number;
  /** Where the components log (default: nothing; `SHOAL_TEST_LOG=1` prints to stderr with the fake time). */
  logger?: Logger;
  /** Images every node's engine has (default {@link HARNESS_IMAGES}); others are not pullable. */
  images?: string[];
  /**
   * Raft snapshots every this many applied entries, keeping `keepEntries` behind (defaults:
   * shoald's 10,000 and 500). Low values make members catch up from snapshots.
   */
  snapshotEvery?: number;
  keepEntries?: number;
}

/**
 * Images the harness's engines have: the test image, two more tags of it (for updates), and
 * `shoal/crash:latest`, whose containers exit with code 1 after {@link CRASH_AFTER_MS} (BAD_IMAGE
 * of the acceptance cases).
 */
export const HARNESS_IMAGES = ['shoal/busybox:latest', 'shoal/busybox:v2', 'shoal/busybox:v3', 'shoal/crash:latest'];

/** How long a `shoal/crash` container runs before it exits with code 1, ms. */
export const CRASH_AFTER_MS = 300;

/** Deadline of a call between nodes across a cut link, ms (`ClusterClient`'s `DEFAULT_CALL_TIMEOUT_MS`). */
export const CALL_TIMEOUT_MS = 10_000;

/** Hooks for checkers (see `MembershipChecker`). */
export interface ClusterHooks {
  /** A manager opened on `host` (after `Manager.open`). */
  managerOpened?(host: FakeHost, m: Manager, how: { bootstrap?: unknown; joinRaft?: boolean; forceNewCluster?: boolean; commitBefore?: number }): void;
  /** `leader` added `raftId` (of `host`) to its Raft group. */
  memberJoined?(host: FakeHost, raftId: string, leader: Manager): void;
  /** Called after every instant the harness settled. */
  afterStep?(): void;
}

interface RemoteStream {
  from: FakeHost;
  to: FakeHost;
  on(a: Assignments): void;
  end(err?: Error): void;
  pending: Assignments | undefined;
  ended: { err: Error | undefined } | undefined;
  closed: boolean;
}

function stderrLogger(clock: FakeClock): Logger {
  const t0 = clock.now();
  const line = (level: string) => (o: object | string, msg?: string) => {
    const t = ((clock.now() - t0) / 1000).toFixed(3);
    process.stderr.write(`${t}s ${level} ${typeof o === 'string' ? o : `${msg ?? ''} ${JSON.stringify(o)}`}\n`);
  };
  return { debug: () => {}, info: line('INFO'), warn: line('WARN'), error: line('ERROR') };
}

export class FakeCluster {
  readonly clock = new FakeClock();
  readonly net: FakeNetwork;
  readonly seed: number;
  readonly tickMs: number;
  readonly roleCheckMs: number;
  readonly logger: Logger;
  /** Raft snapshot settings for every manager (see {@link FakeClusterOptions}). */
  readonly raftOptions: { snapshotEvery?: number; keepEntries?: number };
  readonly hooks: ClusterHooks = {};
  /** By name, in the order they were added. */
  readonly hosts = new Map<string, FakeHost>();
  private readonly streams = new Set<RemoteStream>();
  private readonly untrack: () => void;
  private readonly images: string[];
  private closed = false;
  private clusterId = '';

  constructor(opts: FakeClusterOptions = {}) {
    this.seed = opts.seed ?? 1;
    this.tickMs = opts.tickMs ?? 100;
    this.roleCheckMs = opts.roleCheckMs ?? 2000;
    this.raftOptions = {
      ...(opts.snapshotEvery !== undefined ? { snapshotEvery: opts.snapshotEvery } : {}),
      ...(opts.keepEntries !== undefined ? { keepEntries: opts.keepEntries } : {}),
    };
    this.logger = opts.logger ?? (process.env['SHOAL_TEST_LOG'] ? stderrLogger(this.clock) : nopLogger);
    this.images = opts.images ?? HARNESS_IMAGES;
    this.net = new FakeNetwork(this.clock, seededRandom(this.seed, 'network'));
    setIdSource(seededIds(this.seed));
    this.untrack = trackImmediates();
  }

  /** Stops every node and restores the process-wide ID source. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.run(Promise.all([...this.hosts.values()].map((h) => h.stop())), 60_000).catch(() => undefined);
    } finally {
      setIdSource(undefined);
      this.untrack();
    }
  }

  // ---- hosts -------------------------------------------------------------------------------

  host(name: string): FakeHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no node ${name}; nodes are ${[...this.hosts.keys()].join(', ') || 'none yet'}`);
    return h;
  }

  hostByAddr(addr: string): FakeHost | undefined {
    for (const h of this.hosts.values()) if (h.addr === addr) return h;
    return undefined;
  }

  hostByNodeId(id: string): FakeHost | undefined {
    if (!id) return undefined;
    for (const h of this.hosts.values()) if (h.nodeId === id) return h;
    return undefined;
  }

  /** The host of the leader: the manager that leads with the highest term (a stale one may still think it leads). */
  leader(): FakeHost | undefined {
    let best: FakeHost | undefined;
    let term = -1;
    for (const h of this.hosts.values()) {
      const m = h.manager;
      if (!h.up || !m?.isLeader()) continue;
      const t = m.raftStatus().term;
      if (t > term) (best = h), (term = t);
    }
    return best;
  }

  /** A node's container engine (@internal: made when a node gets its ID). */
  engine(nodeId: string, hostname: string): FakeExecutor {
    const e = new FakeExecutor(nodeId, { hostname, images: this.images });
    e.onStart = (c) => {
      if (!c.image.includes('shoal/crash:')) return;
      const starts = c.starts;
      this.clock.setTimeout(() => {
        if (c.running && c.starts === starts) e.stop(c, 1);
      }, CRASH_AFTER_MS);
    };
    return e;
  }

  /** Calls `fn` on a later instant of the clock (0 ms). */
  later(fn: () => void): void {
    this.clock.setTimeout(fn, 0);
  }

  /** Resolves after `ms` on the clock. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => void this.clock.setTimeout(resolve, ms));
  }

  /** Hooks for {@link FakeHost}. @internal */
  onManagerOpened(host: FakeHost, m: Manager, how: { bootstrap?: unknown; joinRaft?: boolean; forceNewCluster?: boolean; commitBefore?: number }): void {
    this.hooks.managerOpened?.(host, m, how);
  }

  // ---- driving time ------------------------------------------------------------------------

  /** Lets everything due at the current instant finish (promises, `setImmediate`, stream deliveries). */
  private async settleNow(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await settle();
      if (!this.flushStreams()) break;
    }
    this.hooks.afterStep?.();
  }

  /** Moves the clock to the next armed timer (if it is due by `until`), fires it and settles. @returns false when none is. */
  private async step(until: number): Promise<boolean> {
    const next = this.clock.nextDueInMs;
    if (next === undefined || this.clock.now() + next > until) return false;
    this.clock.advance(next);
    await this.settleNow();
    return true;
  }

  /** Runs the cluster for `ms` of fake time. */
  async runFor(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    await this.settleNow();
    while (await this.step(end));
    this.clock.advance(end - this.clock.now());
    await this.settleNow();
  }

  /**
   * Runs the cluster until `p` settles; resolves or rejects like `p`.
   * @throws Error when `p` has not settled after `maxMs` of fake time, or can never settle (no timer is armed).
   */
  async run<T>(p: Promise<T>, maxMs = 60_000, what = 'the operation'): Promise<T> {
    let done = false;
    const watched = p.then(
      (v) => ((done = true), v),
      (e: unknown) => {
        done = true;
        throw e;
      },
    );
    watched.catch(() => undefined);
    const end = this.clock.now() + maxMs;
    await this.settleNow();
    while (!done) {
      if (!(await this.step(end))) {
        if (done) break;
        if (this.clock.nextDueInMs === undefined) throw new Error(`${what} can never finish: nothing is scheduled`);
        throw new Error(`${what} did not finish within ${maxMs / 1000} s`);
      }
    }
    return watched;
  }

  /** Runs until `cond()` holds (checked after every instant). @throws Error naming `what` after `maxMs`. */
  async until(cond: () => boolean, what: string, maxMs = 60_000): Promise<void> {
    const end = this.clock.now() + maxMs;
    await this.settleNow();
    while (!cond()) {
      if (!(await this.step(end))) throw new Error(`${what}: not reached within ${maxMs / 1000} s`);
    }
  }

  /**
   * Runs until nothing changes — the leader's store, the leader, every node's role and Raft
   * membership — for `quietMs` (default 10 s: longer than the default restart delay and the node
   * liveness grace). @returns the fake ms it took. @throws Error after `maxMs`.
   */
  async stabilize(maxMs = 120_000, quietMs = 10_000): Promise<number> {
    const start = this.clock.now();
    let last = this.fingerprint();
    let since = start;
    while (this.clock.now() - since < quietMs) {
      if (this.clock.now() - start > maxMs) throw new Error(`the cluster did not stabilize within ${maxMs / 1000} s`);
      await this.runFor(500);
      const f = this.fingerprint();
      if (f !== last) (last = f), (since = this.clock.now());
    }
    return since - start;
  }

  private fingerprint(): string {
    const parts: string[] = [];
    for (const h of this.hosts.values()) {
      const m = h.manager;
      parts.push(`${h.name}:${h.up}:${h.state?.role}:${h.state?.raftId}:${m ? `${m.isLeader()}/${m.members().map((x) => `${x.id}${x.voter ? '' : '~'}`).join(',')}` : '-'}:${h.agent?.state().sessionId ? 's' : '-'}`);
    }
    parts.push(this.leader()?.manager?.dump() ?? 'no leader');
    return parts.join('\n');
  }

  // ---- building the cluster ----------------------------------------------------------------

  private newHost(name: string): FakeHost {
    if (this.hosts.has(name)) throw new Error(`node ${name} already exists`);
    const h = new FakeHost(this, name);
    this.hosts.set(name, h);
    return h;
  }

  /** `swarm init` on a new node `name`: a single-voter Raft group and the cluster objects. */
  async init(name: string): Promise<FakeHost> {
    const h = this.newHost(name);
    this.clusterId = newId();
    h.state = { nodeId: newId(), role: 'manager', clusterId: this.clusterId, advertiseAddr: h.addr, listenAddr: h.addr, managers: [], raftId: h.freshRaftId() };
    h.certRole = 'manager';
    await this.run(h.exclusive(async () => {
      await h.activate({ bootstrap: { clusterId: this.clusterId } });
      h.state!.managers = [h.addr];
    }), 60_000, `swarm init on ${name}`);
    return h;
  }

  /**
   * `swarm join` of a new node `name` with the `role` token, through manager `via` (default: the
   * first node): admitted by the leader, then — a manager — added to the Raft group.
   */
  async join(name: string, role: NodeRole, via?: string): Promise<FakeHost> {
    const h = this.newHost(name);
    const entry = via ? this.host(via) : [...this.hosts.values()][0]!;
    const admitted = await this.run(this.callOn(h, entry, 'manager.admit', (m) => m.admit(role, h.addr, name), { leader: true }), 60_000, `admitting ${name}`)
      .catch((e: unknown) => {
        this.hosts.delete(name);
        throw e;
      });
    h.state = {
      nodeId: admitted.nodeId, role, clusterId: this.clusterId, advertiseAddr: h.addr, listenAddr: h.addr,
      managers: admitted.managers.length ? admitted.managers : [entry.addr],
      ...(role === 'manager' ? { raftId: h.freshRaftId() } : {}),
    };
    h.certRole = role;
    // As `SwarmNode.join`: a node that cannot start its services leaves nothing half-joined.
    await this.run(h.exclusive(async () => {
      try {
        await h.activate({ joinRaft: role === 'manager' });
      } catch (e) {
        await h.deactivate();
        h.state = undefined;
        h.disk.wipe();
        throw e;
      }
    }), 120_000, `joining ${name}`);
    return h;
  }

  /** A cluster of `managers` managers (node1 inits) and `workers` workers, every node Ready. */
  async build(managers: number, workers: number): Promise<void> {
    if (managers < 1) throw new Error(`managers=${managers}: a cluster needs at least one manager`);
    await this.init('node1');
    for (let i = 2; i <= managers + workers; i++) await this.join(`node${i}`, i <= managers ? 'manager' : 'worker');
    await this.until(() => this.allReady(), 'every node Ready and every manager a voter', 120_000);
  }

  private allReady(): boolean {
    const l = this.leader()?.manager;
    if (!l) return false;
    const voters = l.members().filter((m) => m.voter).length;
    const managers = [...this.hosts.values()].filter((h) => h.state?.role === 'manager').length;
    if (voters !== managers) return false;
    return [...this.hosts.values()].every((h) => l.node(h.nodeId)?.status.state === 'ready');
  }

  /**
   * Hard-kills node `name` (testnet `kill`: SIGKILL to its daemon, engine and containers): from this
   * instant it sends nothing; its Raft disk and container records stay for {@link restart}.
   */
  async kill(name: string): Promise<void> {
    const h = this.host(name);
    if (!h.up) return;
    h.up = false;
    this.net.isolate(name);
    for (const s of this.streams) if (s.from === h || s.to === h) s.closed = true;
    await this.run(h.kill(), 60_000, `killing ${name}`);
    for (const c of h.executor?.running() ?? []) h.executor.stop(c, 137);
  }

  /** Starts a killed node again on its data (its engine's containers are there, stopped). */
  async restart(name: string): Promise<void> {
    const h = this.host(name);
    if (h.up) throw new Error(`node ${name} is running; kill-node it first`);
    h.up = true;
    this.net.unisolate(name);
    await this.run(h.start(), 60_000, `restarting ${name}`);
  }

  /** `swarm init --force-new-cluster` on manager `name` (its daemon restarts its manager as the only voter). */
  async forceNewCluster(name: string): Promise<void> {
    const h = this.host(name);
    if (!h.state || h.state.role !== 'manager') throw failedPrecondition('--force-new-cluster needs a node that was a manager of a swarm');
    if (h.manager && !h.manager.cluster()) throw failedPrecondition(FNC_NO_STATE);
    await this.run(h.exclusive(async () => {
      await h.deactivate();
      await h.activate({ forceNewCluster: true });
      await h.manager!.waitLeader();
    }), 60_000, `force-new-cluster on ${name}`);
  }

  // ---- control calls -----------------------------------------------------------------------

  /**
   * Runs control method `method` on node `on` (default: the leader, else the first manager that
   * is up) the way its control socket would (`ControlRouter`): here when it leads, forwarded to
   * the leader it knows otherwise; refused on workers.
   */
  async call<M extends ControlMethod>(method: M, params: Params<M>, on?: string, maxMs = 60_000): Promise<Result<M>> {
    const h = on ? this.host(on) : this.leader() ?? [...this.hosts.values()].find((x) => x.up && x.manager) ?? [...this.hosts.values()][0];
    if (!h) throw new Error('the cluster has no nodes yet; run `cluster` first');
    return this.run(this.control(h, method, params), maxMs, `${method} on ${h.name}`);
  }

  private async control<M extends ControlMethod>(h: FakeHost, method: M, params: Params<M>): Promise<Result<M>> {
    if (!h.up) throw unavailable(`node ${h.name} is down`);
    if (!h.state) throw failedPrecondition(NOT_IN_SWARM);
    const m = h.manager;
    if (!m) throw failedPrecondition(h.state.notice ? `${NOT_MANAGER} (${h.state.notice})` : NOT_MANAGER);
    if (m.isLeader()) return this.runHere(m, method, params);
    const leader = this.hostByNodeId(m.leaderNodeId());
    if (!leader?.manager || !leader.up) throw unavailable(noLeaderMessage(m));
    if (!this.net.reachable(h.name, leader.name)) {
      await this.sleep(CALL_TIMEOUT_MS);
      throw unavailable(noLeaderMessage(m));
    }
    const lm = leader.manager;
    // The leader's side of `control.call` (cluster-port.ts).
    if (lm.node(h.nodeId)?.role !== 'manager') throw failedPrecondition(NOT_MANAGER);
    if (!lm.isLeader()) throw unavailable(`this manager is not the leader; ${lm.leaderNodeId() ? 'the leader is ' + lm.leaderNodeId() : 'The swarm does not have a leader.'}`);
    return this.runHere(lm, method, params, `${h.nodeId}/${newId()}`);
  }

  private async runHere<M extends ControlMethod>(m: Manager, method: M, params: Params<M>, requestId?: string): Promise<Result<M>> {
    if (METHODS[method as Method].kind === 'read') {
      await m.readBarrier().catch(() => {
        throw unavailable(noLeaderMessage(m));
      });
    }
    return m.call(method, params, requestId !== undefined ? { requestId } : {});
  }

  // ---- the cluster port --------------------------------------------------------------------

  /**
   * A call from `from` to manager `target`'s cluster port: `fn` runs on `target`'s manager, or —
   * with `leader` — on the leader `target` knows (a follower passes such calls on).
   * @throws Unavailable when `target` is down, has no manager, or no leader is reachable;
   *   FailedPrecondition when `from` was removed from the swarm.
   */
  private async callOn<T>(from: FakeHost, target: FakeHost, what: string, fn: (m: Manager) => Promise<T>, o: { leader: boolean }): Promise<T> {
    if (!target.up || !target.manager) throw unavailable(`${what}: manager ${target.addr} is not reachable (connection refused)`);
    if (!this.net.reachable(from.name, target.name)) {
      await this.sleep(CALL_TIMEOUT_MS);
      throw unavailable(`${what} on manager ${target.addr}: no answer within ${CALL_TIMEOUT_MS} ms`);
    }
    const tm = target.manager;
    if (from.nodeId && tm.isRevoked(from.nodeId)) throw failedPrecondition(`node ${from.nodeId} was removed from the swarm`);
    if (!o.leader || tm.isLeader()) return fn(tm);
    const leader = this.hostByNodeId(tm.leaderNodeId());
    if (!leader?.manager || !leader.up || !this.net.reachable(target.name, leader.name)) throw unavailable(`${what}: ${noLeaderMessage(tm)}`);
    if (!leader.manager.isLeader()) throw unavailable(`${what}: this manager is not the leader`);
    return fn(leader.manager);
  }

  /**
   * A call from `from` through its cluster client: a manager asks the leader it knows (`leader`)
   * or itself; a worker (or `via`) tries its known managers in order, like `ClusterClient`'s
   * fail-over.
   */
  async clusterCall<T>(from: FakeHost, what: string, fn: (m: Manager) => Promise<T>, o: { leader: boolean; via?: string[] }): Promise<T> {
    if (from.manager && !o.via) {
      if (!o.leader) return fn(from.manager);
      if (from.manager.isLeader()) return fn(from.manager);
      const leader = this.hostByNodeId(from.manager.leaderNodeId());
      if (!leader) throw unavailable(noLeaderMessage(from.manager));
      return this.callOn(from, leader, what, fn, { leader: true });
    }
    const addrs = o.via ?? from.state?.managers ?? [];
    let last: unknown = unavailable(`${what}: no manager is known`);
    for (const addr of addrs) {
      const target = this.hostByAddr(addr);
      if (!target || !target.up || !target.manager) {
        last = unavailable(`${what}: manager ${addr} is not reachable (connection refused)`);
        continue;
      }
      if (!this.net.reachable(from.name, target.name)) {
        last = unavailable(`${what}: manager ${addr}: no connection`);
        continue;
      }
      return this.callOn(from, target, what, fn, o);
    }
    throw last;
  }

  // ---- dispatcher sessions across the network ----------------------------------------------

  /**
   * The dispatcher client of node `h`'s agent when `h` is a worker: calls go to the leader among
   * the managers it knows (`ClusterClient` fails over past followers, which answer "not the
   * leader").
   */
  remoteDispatcher(h: FakeHost): DispatcherClient {
    const pick = (): FakeHost => {
      const known = (h.state?.managers ?? []).map((a) => this.hostByAddr(a)).filter((x): x is FakeHost => !!x && x.up && !!x.manager);
      if (known.length === 0) throw unavailable('dispatcher: could not reach any manager');
      const leaders = known.filter((x) => x.manager!.isLeader());
      if (leaders.length === 0) throw unavailable('dispatcher: this manager is not the leader');
      leaders.sort((a, b) => Number(this.net.reachable(h.name, b.name)) - Number(this.net.reachable(h.name, a.name)) || b.manager!.raftStatus().term - a.manager!.raftStatus().term);
      return leaders[0]!;
    };
    return this.dispatcherVia(h, pick);
  }

  /** The dispatcher client a follower manager's agent uses: the leader that manager knows. */
  leaderDispatcherOf(h: FakeHost, m: Manager): DispatcherClient {
    const leader = this.hostByNodeId(m.leaderNodeId());
    if (!leader || !leader.up || !leader.manager) throw unavailable(noLeaderMessage(m));
    return this.dispatcherVia(h, () => leader);
  }

  private dispatcherVia(from: FakeHost, pick: () => FakeHost): DispatcherClient {
    const call = async <T>(fn: (d: DispatcherClient) => Promise<T>): Promise<T> => {
      const to = pick();
      if (!this.net.reachable(from.name, to.name)) {
        await this.sleep(CALL_TIMEOUT_MS);
        throw unavailable(`dispatcher on ${to.addr}: no answer within ${CALL_TIMEOUT_MS} ms`);
      }
      if (!to.manager) throw unavailable(`dispatcher on ${to.addr}: connection refused`);
      if (to.manager.isRevoked(from.nodeId)) throw failedPrecondition(`node ${from.nodeId} was removed from the swarm`);
      return fn(to.manager.localDispatcherClient());
    };
    return {
      openSession: (req) => call((d) => d.openSession(req)),
      heartbeat: (sid) => call((d) => d.heartbeat(sid)),
      updateTaskStatus: (sid, u) => call((d) => d.updateTaskStatus(sid, u)),
      watchAssignments: (sid, on, end) => {
        let to: FakeHost;
        try {
          to = pick();
          if (!to.manager) throw unavailable(`dispatcher on ${to.addr}: connection refused`);
        } catch (e) {
          queueMicrotask(() => end(e as Error));
          return () => {};
        }
        const s: RemoteStream = { from, to, on, end, pending: undefined, ended: undefined, closed: false };
        this.streams.add(s);
        const cancel = to.manager.localDispatcherClient().watchAssignments(
          sid,
          (a) => {
            if (s.closed) return;
            if (this.net.reachable(to.name, from.name)) on(a);
            else s.pending = a;
          },
          (err) => {
            if (s.closed) return;
            if (this.net.reachable(to.name, from.name)) {
              s.closed = true;
              this.streams.delete(s);
              end(err);
            } else s.ended = { err };
          },
        );
        return () => {
          s.closed = true;
          this.streams.delete(s);
          cancel();
        };
      },
    };
  }

  /** Delivers what streams held back while their link was cut. @returns whether anything was delivered. */
  private flushStreams(): boolean {
    let any = false;
    for (const s of [...this.streams]) {
      if (s.closed) {
        this.streams.delete(s);
        continue;
      }
      if (!this.net.reachable(s.to.name, s.from.name)) continue;
      if (s.pending) {
        const a = s.pending;
        s.pending = undefined;
        any = true;
        s.on(a);
      }
      if (s.ended && !s.closed) {
        s.closed = true;
        this.streams.delete(s);
        any = true;
        s.end(s.ended.err);
      }
    }
    return any;
  }
}
