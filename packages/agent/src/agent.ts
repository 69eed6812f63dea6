import { isTerminal, taskStateRank, type Assignments, type Config, type DispatcherClient, type NetworkView, type Secret, type SessionInfo, type Task, type TaskStatus } from '@shoal/api';
import {
  childLogger, nopLogger, nopMetrics, ReconcileLoop, sleep, systemClock, withTimeout, TASK_START_BUCKETS,
  type Clock, type Counter, type Histogram, type Logger, type Metrics, type TimerHandle,
} from '@shoal/runtime';
import type { Executor } from './exec.js';
import { StatusReporter } from './reporter.js';
import { TaskRunner } from './task.js';
import { taskFiles, type TaskDependencies } from './files.js';
import type { TemplateContext } from './template.js';

export interface AgentOptions {
  /** This node's ID (also the `shoal.node.id` label on its containers). */
  nodeId: string;
  /** Address other nodes reach this node at (sent in the session request). */
  addr: string;
  dispatcher: DispatcherClient;
  executor: Executor;
  /** Default `nopLogger`; lines carry `component: 'agent'`. */
  logger?: Logger;
  /** Time source for heartbeats, backoff, RPC timeouts, status batching and task retries (default `systemClock`). */
  clock?: Clock;
  /** Overrides the hostname the executor reports (shoald `--hostname`). */
  hostname?: string;
  /** Load-balancer dataplane this node runs (`nftables`, `ipvs`, `userspace`), added to the node description. */
  dataplane?: string;
  /**
   * The node's network plane (overlay, load balancer, DNS). When given, the session asks for the
   * cluster-wide network view and every view received is handed to `onView` (before the tasks of
   * the same message are reconciled). `onView` must not throw; it is level-triggered. `close` is
   * called by {@link Agent.stop}.
   */
  network?: { onView(view: NetworkView): void; close?(): Promise<void> };
  /**
   * ms a running task that may be a load-balancer backend keeps running after the managers asked it
   * to stop, so every node takes it out of the load balancer first. Default 0.
   */
  drainDelayMs?: number;
  /** Session re-open backoff in ms: starts at `initialMs`, doubles, capped at `maxMs`. Default 100 → 2000. */
  backoff?: { initialMs: number; maxMs: number };
  /**
   * Timeout of describe/openSession calls, ms. Default 5000 (SwarmKit's agent RPC timeout).
   * Heartbeats time out after min(this, 2 × heartbeat period).
   */
  rpcTimeoutMs?: number;
  /** Longest a task status waits before it is sent, ms. Default 100. */
  statusBatchMs?: number;
  /** ms between retries of a failed container wait / status send. Default 1000. */
  retryMs?: number;
  /** ms between health-status polls of a task's container that has a health check. Default 500. */
  healthPollMs?: number;
  /**
   * `shoal_agent_task_start_duration_seconds` (ASSIGNED → RUNNING on this node, clock time),
   * `shoal_agent_task_starts_total{result}`, `shoal_agent_sessions_opened_total`,
   * `shoal_agent_session_open`, `shoal_agent_tasks` (at scrape time). Default {@link nopMetrics}.
   */
  metrics?: Metrics;
}

const ASSIGNED = taskStateRank('assigned');
const RUNNING = taskStateRank('running');

/** What `Agent.state()` returns, for diagnostics (`shoald` logs, tests). */
export interface AgentState {
  /** The open session, if any. */
  sessionId: string | undefined;
  /** Sessions opened since start(). */
  sessions: number;
  /** Task IDs in the last assignment set. */
  assigned: string[];
  /** Task statuses queued and not yet acknowledged by the dispatcher. */
  pendingStatuses: number;
  /** IDs of the secrets this agent holds (in memory), from the last assignment set. */
  secrets: string[];
  /** IDs of the configs this agent holds, from the last assignment set. */
  configs: string[];
}

/**
 * The worker side of a node (SwarmKit `agent/agent.go`, `session.go`, `worker.go`).
 *
 * - Holds one dispatcher session: `openSession` with the executor's node description, heartbeats
 *   every `heartbeatPeriodMs` the manager returns, and re-opens with backoff (100 ms doubling to
 *   2 s) when a call fails, the heartbeat times out or the assignment stream ends.
 * - Reconciles each assignment message (the complete set of this node's tasks): a {@link TaskRunner}
 *   per new task, updates (desired state) to existing ones, and removal of the container of every
 *   task that left the set.
 * - Sweeps orphans on the first assignment set of every session (after an agent restart or a
 *   disconnection, when tasks may have been removed unseen): containers labelled for this node
 *   whose task is not assigned are removed. Containers without the Shoal labels are never touched.
 * - Batches task statuses to `updateTaskStatus` (≤ `statusBatchMs`), forwards only.
 *
 * A restarted agent adopts the containers of its assigned tasks (controllers are idempotent and
 * find containers by name), so nothing is duplicated. The agent never restarts a container: the
 * managers' restart policy replaces tasks that end.
 */
export class Agent {
  private readonly nodeId: string;
  private readonly logger: Logger;
  private readonly reporter: StatusReporter;
  private readonly runners = new Map<string, TaskRunner>();
  private readonly removing = new Map<string, Promise<void>>();
  private assigned = new Set<string>();
  private running = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private sessionId: string | undefined;
  private sessions = 0;
  private endSession: ((why: string) => void) | undefined;
  private wakeBackoff: (() => void) | undefined;
  private readonly clock: Clock;
  /** Orphan sweeps, one at a time; a sweep asked for while one runs follows it. */
  private readonly sweeper: ReconcileLoop;
  /** Set when a session opens: its first assignment set triggers an orphan sweep. */
  private sweepOnNextSet = false;
  private readonly metrics: Metrics;
  private readonly startSeconds: Histogram;
  private readonly starts: Counter;
  private readonly sessionsOpened: Counter;
  /** Task ID → clock ms when the task reached this agent still ASSIGNED (start latency). */
  private readonly starting = new Map<string, number>();
  private uncollect: (() => void) | undefined;
  /**
   * The secrets and configs of the last assignment set, in memory only — exactly those the
   * node's current tasks use (the dispatcher sends no others), replaced by every set.
   */
  private deps: TaskDependencies = { secrets: new Map(), configs: new Map() };
  /** This node as templates see it (from the last describe()). */
  private nodeInfo: TemplateContext['node'] = { hostname: '' };

  constructor(private readonly opts: AgentOptions) {
    if (!opts.nodeId) throw new Error('Agent: nodeId is empty; pass the node ID the managers know this node by');
    this.nodeId = opts.nodeId;
    this.logger = childLogger(opts.logger ?? nopLogger, { component: 'agent' });
    this.clock = opts.clock ?? systemClock;
    this.reporter = new StatusReporter({ batchMs: opts.statusBatchMs ?? 100, retryMs: opts.retryMs ?? 1000, logger: this.logger, clock: this.clock });
    // The sweep catches and logs its own failures (the next session's first set sweeps again), so the loop never backs off.
    this.metrics = opts.metrics ?? nopMetrics;
    this.sweeper = new ReconcileLoop(() => this.sweepOnce(), { name: 'orphan sweep', clock: this.clock, logger: this.logger, metrics: this.metrics });
    this.startSeconds = this.metrics.histogram({
      name: 'shoal_agent_task_start_duration_seconds', help: 'Time from a task reaching this node\'s agent (ASSIGNED) to RUNNING: image, container create and start, health check.', buckets: TASK_START_BUCKETS,
    });
    this.starts = this.metrics.counter({ name: 'shoal_agent_task_starts_total', help: 'Tasks this agent started: result="running" reached RUNNING, result="ended" failed, was rejected or was stopped before.', labelNames: ['result'] });
    this.sessionsOpened = this.metrics.counter({ name: 'shoal_agent_sessions_opened_total', help: 'Dispatcher sessions this agent opened.' });
  }

  /** Starts the session loop in the background; returns at once. Calling it twice is an error. */
  start(): void {
    if (this.running) throw new Error('Agent: already started');
    this.running = true;
    const open = this.metrics.gauge({ name: 'shoal_agent_session_open', help: '1 while this agent holds a dispatcher session, else 0.' });
    const tasks = this.metrics.gauge({ name: 'shoal_agent_tasks', help: 'Tasks assigned to this node (the last assignment set).' });
    const off = this.metrics.onCollect(() => {
      open.set(this.sessionId ? 1 : 0);
      tasks.set(this.assigned.size);
    });
    this.uncollect = () => {
      off();
      open.set(0);
      tasks.set(0);
    };
    this.sweeper.start();
    this.loop = this.sessionLoop();
  }

  /**
   * Stops the agent: task runners stop watching (containers keep running, for the next agent to
   * adopt), pending statuses get one last send (≤ 1 s), the session's streams are closed.
   */
  async stop(): Promise<void> {
    if (!this.running || this.stopping) return this.loop;
    this.stopping = true;
    await Promise.all([...this.runners.values()].map((r) => r.close()));
    await Promise.all(this.removing.values());
    await Promise.race([this.reporter.flush(), sleep(this.clock, 1000)]);
    this.reporter.close();
    this.endSession?.('agent stopping');
    this.wakeBackoff?.();
    await this.loop;
    await this.sweeper.stop();
    await this.opts.network?.close?.().catch((err: unknown) => this.logger.warn({ err: String(err) }, 'network plane close failed'));
    this.runners.clear();
    this.starting.clear();
    this.uncollect?.();
    this.deps = { secrets: new Map(), configs: new Map() };
  }

  state(): AgentState {
    return {
      sessionId: this.sessionId,
      sessions: this.sessions,
      assigned: [...this.assigned],
      pendingStatuses: this.reporter.size,
      secrets: [...this.deps.secrets.keys()],
      configs: [...this.deps.configs.keys()],
    };
  }

  private async sessionLoop(): Promise<void> {
    const initial = this.opts.backoff?.initialMs ?? 100;
    const max = this.opts.backoff?.maxMs ?? 2000;
    let backoff = initial;
    while (!this.stopping) {
      let healthy = false;
      try {
        const description = await this.call(this.opts.executor.describe(), 'describe');
        if (this.opts.hostname) description.hostname = this.opts.hostname;
        if (this.opts.dataplane) description.dataplane = this.opts.dataplane;
        this.nodeInfo = { hostname: description.hostname, os: description.platform.os, architecture: description.platform.architecture };
        const info = await this.call(
          this.opts.dispatcher.openSession({ nodeId: this.nodeId, description, addr: this.opts.addr, ...(this.opts.network ? { networkView: true } : {}) }),
          'openSession',
        );
        if (this.stopping) break;
        healthy = await this.runSession(info);
      } catch (err) {
        this.logger.warn({ err: String(err), retryInMs: backoff }, 'dispatcher session failed');
      }
      if (this.stopping) break;
      backoff = healthy ? initial : backoff;
      const clock = this.clock;
      await new Promise<void>((resolve) => {
        const t = clock.setTimeout(done, backoff);
        function done(): void {
          clock.clearTimeout(t);
          resolve();
        }
        this.wakeBackoff = done;
      });
      this.wakeBackoff = undefined;
      backoff = Math.min(backoff * 2, max);
    }
  }

  /**
   * Runs one open session until it ends. Resolves true if the session was healthy at some point
   * (a heartbeat or an assignment went through), which resets the backoff.
   */
  private runSession(info: SessionInfo): Promise<boolean> {
    const { dispatcher } = this.opts;
    const sessionId = info.sessionId;
    this.sessionId = sessionId;
    this.sessions++;
    this.sessionsOpened.inc();
    this.sweepOnNextSet = true;
    this.logger.info({ sessionId, heartbeatPeriodMs: info.heartbeatPeriodMs }, 'dispatcher session open');
    return new Promise<boolean>((resolve) => {
      let ended = false;
      let healthy = false;
      let timer: TimerHandle | undefined;
      let cancelWatch: (() => void) | undefined;
      const end = (why: string): void => {
        if (ended) return;
        ended = true;
        if (timer) this.clock.clearTimeout(timer);
        cancelWatch?.();
        this.reporter.setSender(undefined);
        if (this.sessionId === sessionId) this.sessionId = undefined;
        this.endSession = undefined;
        if (!this.stopping) this.logger.warn({ sessionId, why }, 'dispatcher session ended');
        resolve(healthy);
      };
      this.endSession = end;
      this.reporter.setSender((updates) => dispatcher.updateTaskStatus(sessionId, updates));
      const beat = (periodMs: number): void => {
        timer = this.clock.setTimeout(() => {
          // A heartbeat slower than two periods means a dead or partitioned manager: give up on it
          // well before the managers' grace (3 periods) runs out (acceptance case B08).
          const timeoutMs = Math.min(this.opts.rpcTimeoutMs ?? 5000, 2 * periodMs);
          this.call(dispatcher.heartbeat(sessionId), 'heartbeat', timeoutMs).then(
            (r) => {
              healthy = true;
              if (!ended) beat(r.heartbeatPeriodMs);
            },
            (err: unknown) => end(`heartbeat failed: ${String(err)}`),
          );
        }, periodMs);
      };
      beat(info.heartbeatPeriodMs);
      cancelWatch = dispatcher.watchAssignments(
        sessionId,
        (a) => {
          if (ended || this.stopping) return;
          healthy = true;
          if (a.network && this.opts.network) {
            try {
              this.opts.network.onView(a.network);
            } catch (err) {
              this.logger.warn({ err: String(err) }, 'network plane rejected a view');
            }
          }
          this.reconcile(a);
        },
        (err) => end(err ? `assignment stream ended: ${String(err)}` : 'assignment stream ended'),
      );
      if (ended) cancelWatch();
    });
  }

  /** Applies one complete assignment set. */
  private reconcile(a: Assignments): void {
    this.deps = {
      secrets: new Map((a.secrets ?? []).map((x: Secret) => [x.id, x])),
      configs: new Map((a.configs ?? []).map((x: Config) => [x.id, x])),
    };
    const next = new Set<string>();
    for (const task of a.tasks) {
      if (task.nodeId && task.nodeId !== this.nodeId) {
        this.logger.warn({ taskId: task.id, nodeId: task.nodeId }, 'ignoring a task assigned to another node');
        continue;
      }
      next.add(task.id);
      const runner = this.runners.get(task.id);
      if (runner) runner.update(task);
      else if (!this.removing.has(task.id)) this.startRunner(task);
    }
    this.assigned = next;
    for (const [id, runner] of this.runners) {
      if (next.has(id)) continue;
      this.runners.delete(id);
      this.starting.delete(id);
      this.removing.set(
        id,
        runner.remove().finally(() => {
          this.removing.delete(id);
          this.reporter.forget(id);
        }),
      );
    }
    if (this.sweepOnNextSet) {
      this.sweepOnNextSet = false;
      this.sweep();
    }
  }

  private startRunner(task: Task): void {
    // A task that reaches this agent not yet started is timed until it runs (a restarted agent
    // adopting running tasks times nothing).
    if (taskStateRank(task.status.state) <= ASSIGNED) this.starting.set(task.id, this.clock.now());
    const report = (taskId: string, status: TaskStatus): void => {
      this.observeStart(taskId, status);
      this.reporter.push({ taskId, status });
    };
    const files = () => taskFiles(task, this.deps, { task, node: this.nodeInfo });
    const runner = new TaskRunner(task, this.opts.executor.controller(task, files), report, this.logger, this.opts.retryMs ?? 1000, this.opts.drainDelayMs ?? 0, this.opts.healthPollMs ?? 500, this.clock);
    this.runners.set(task.id, runner);
    runner.start();
  }

  private observeStart(taskId: string, status: TaskStatus): void {
    const t0 = this.starting.get(taskId);
    if (t0 === undefined) return;
    if (status.state === 'running') {
      this.starting.delete(taskId);
      this.startSeconds.observe(Math.max(0, this.clock.now() - t0) / 1000);
      this.starts.inc({ result: 'running' });
    } else if (isTerminal(status.state) || taskStateRank(status.state) > RUNNING) {
      this.starting.delete(taskId);
      this.starts.inc({ result: 'ended' });
    }
  }

  /** Removes this node's labelled containers whose task is not assigned (one sweep at a time, on {@link sweeper}). */
  private sweep(): void {
    this.sweeper.kick();
  }

  private async sweepOnce(): Promise<void> {
    if (this.stopping) return;
    try {
      const containers = await this.opts.executor.list();
      for (const c of containers) {
        if (this.stopping) return;
        if (c.nodeId !== this.nodeId) continue;
        if (this.assigned.has(c.taskId) || this.removing.has(c.taskId)) continue;
        this.logger.info({ containerId: c.containerId, name: c.name, taskId: c.taskId }, 'removing container of unassigned task');
        await this.opts.executor.removeOrphan(c.containerId);
      }
      if (this.opts.executor.pruneTaskFiles && !this.stopping) {
        await this.opts.executor.pruneTaskFiles((id) => this.assigned.has(id) || this.removing.has(id) || this.runners.has(id));
      }
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'orphan sweep failed');
    }
  }

  private call<T>(p: Promise<T>, what: string, ms = this.opts.rpcTimeoutMs ?? 5000): Promise<T> {
    return withTimeout(this.clock, p, ms, what);
  }
}
