import type { PortConfig, Task, TaskState, TaskStatus } from '@shoal/api';
import { isTerminal, taskStateRank } from '@shoal/api';
import type { ContainerStatus, Controller } from './exec.js';
import { ContainerNotFoundError, containerName } from './exec.js';
import { isoNow, nopLogger, systemClock, type Clock, type Logger } from '@shoal/runtime';

/**
 * One assigned task on this node: drives its controller through the observed-state machine
 * (SwarmKit `agent/exec.Do` and `agent/task.go`) and reports every state it reaches.
 *
 * ```
 *  (ASSIGNED) → ACCEPTED → PREPARING ──prepare()──▶ READY ──(desired ≥ RUNNING)──▶ STARTING ──start()──▶ RUNNING
 *                              │ error                                                  │ error            │ wait() ‖ health poll
 *                              ▼                                                        ▼                  ▼
 *                          REJECTED                                                  FAILED     exit 0 → COMPLETE
 *                                                                                              exit N → FAILED "task: non-zero exit (N)"
 *                                                                                              OOM-killed → FAILED "task: OOM killed: non-zero exit (N)"
 *                                                                                              unhealthy → FAILED "task: unhealthy container"
 *  With a health check (inspect() reports `health`), start() is followed by a wait in STARTING,
 *  polling inspect() every healthPollMs:
 *    STARTING ──healthy──▶ RUNNING    STARTING ──unhealthy──▶ FAILED "task: unhealthy container"
 *    STARTING ──exited / gone──▶ COMPLETE or FAILED, as from RUNNING
 *  desired ≥ SHUTDOWN: before start() → SHUTDOWN (nothing started); STARTING after start() →
 *  shutdown(grace), then SHUTDOWN; at RUNNING → drain delay (backends), shutdown(grace), then
 *  SHUTDOWN; terminal with the container still running (unhealthy) → shutdown(grace).
 * ```
 *
 * Health checks (SwarmKit's container controller): a container whose `inspect()` reports a
 * `health` status stays STARTING until the engine calls it healthy, so it joins load balancers and
 * DNS (which take RUNNING tasks only) only then. While RUNNING, the container's exit is raced with a
 * health poll; `unhealthy` makes the task FAILED with the container still running: the managers
 * then set desired SHUTDOWN (restart policy) and the runner stops it.
 *
 * Observed states only move forward. The runner never restarts a container: after a terminal state
 * it idles until the managers shut the task down or remove it from the assignment set (then
 * {@link TaskRunner.remove}). On start it first looks at an existing container (adoption after an
 * agent restart): a running one is reported RUNNING and waited on (if its health is `starting`, the
 * task is STARTING and waits for health as above unless already RUNNING; `unhealthy` is FAILED), an
 * exited one gets its terminal state, a missing one for a task already RUNNING is FAILED.
 */
export class TaskRunner {
  private task: Task;
  private state: TaskState;
  private containerId: string | undefined;
  /** Host-mode ports bound by the running container (reported with RUNNING). */
  private ports: PortConfig[] | undefined;
  /** Data-path addresses of the running container (reported with RUNNING as `networkAddrs`). */
  private addresses: string[] | undefined;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  /** Bumped by update(), so a change during a step is never slept through. */
  private changes = 0;
  private stopping: Promise<void> | undefined;
  private stoppedAfterTerminal = false;
  /** The container has been started (by this runner, or found running at adoption). */
  private started = false;
  /** The started container has a health check (its last inspect() reported a `health` status). */
  private healthChecked = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    task: Task,
    private readonly controller: Controller,
    private readonly report: (taskId: string, status: TaskStatus) => void,
    private readonly logger: Logger = nopLogger,
    /** ms between re-inspections when wait() fails for a reason other than a vanished container. */
    private readonly retryMs = 1000,
    /**
     * ms between the managers asking a running load-balancer backend to stop and the stop signal:
     * every node takes it out of the load balancer first (docs/NETWORKING.md). 0 = stop at once.
     */
    private readonly drainDelayMs = 0,
    /**
     * ms between inspect() calls that read a started container's health status: while STARTING
     * (waiting for `healthy`) and while RUNNING (watching for `unhealthy`). Default 500.
     */
    private readonly healthPollMs = 500,
    /** Time source for retries, health polls, the drain delay and status timestamps. */
    private readonly clock: Clock = systemClock,
  ) {
    this.task = task;
    this.state = task.status.state;
    this.containerId = task.status.containerId;
  }

  get id(): string {
    return this.task.id;
  }

  /** The last observed state this runner reported (or received from the manager). */
  get observed(): TaskState {
    return this.state;
  }

  /** Starts driving the task; returns at once. */
  start(): void {
    this.done = this.run();
  }

  /** A newer version of the task (new desired state); the manager's status never moves ours backwards. */
  update(task: Task): void {
    this.task = task;
    this.changes++;
    if (taskStateRank(task.status.state) > taskStateRank(this.state)) this.state = task.status.state;
    if (wantsStop(task) && this.state === 'running') this.beginShutdown();
    this.wake?.();
  }

  /** Stops driving (agent shutting down); the container is left as it is. Resolves when the loop has ended. */
  async close(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.done;
  }

  /**
   * The task left the assignment set: stop driving, stop the container with its grace period if it
   * still runs, and remove it. Errors are logged, not thrown.
   */
  async remove(): Promise<void> {
    await this.close();
    try {
      if (!isTerminal(this.state)) await this.controller.shutdown();
      await this.controller.remove();
    } catch (err) {
      this.logger.warn({ taskId: this.id, err: String(err) }, 'could not remove container of unassigned task');
    }
  }

  private get closed(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    await this.adopt();
    while (!this.closed) {
      const seen = this.changes;
      let moved: boolean;
      try {
        moved = await this.step();
      } catch (err) {
        // Controllers' expected failures are handled in step(); anything else ends the task.
        if (this.closed) break;
        this.logger.error({ taskId: this.id, err: String(err) }, 'task runner: unexpected error');
        this.fatal(err);
        moved = true;
      }
      if (!moved && !this.closed && seen === this.changes) {
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      this.wake = undefined;
    }
  }

  /**
   * Looks at an existing container once, before the state machine runs. The runtime gets three
   * tries (`retryMs` apart); then the task fails (REJECTED before STARTING, else FAILED).
   */
  private async adopt(): Promise<void> {
    if (isTerminal(this.state)) return;
    let st: ContainerStatus | undefined;
    for (let attempt = 1; !st; attempt++) {
      try {
        st = await this.controller.inspect();
      } catch (err) {
        if (this.closed) return;
        if (attempt >= 3) {
          this.fatal(err);
          return;
        }
        await sleep(this.clock, this.retryMs, this.abort.signal);
      }
      if (this.closed) return;
    }
    if (!st.exists) {
      if (this.state === 'running') this.exited(undefined, new ContainerNotFoundError(containerName(this.task)).message);
      return;
    }
    this.observe(st);
    if (st.running) {
      this.started = true;
      if (st.health === 'unhealthy') this.unhealthy();
      else if (st.health === 'starting' && this.state !== 'running') this.setState('starting', 'starting (adopted running container, waiting for its health check)');
      else if (this.state !== 'running') this.setState('running', 'started (adopted running container)');
    } else if (st.started) {
      this.exited(st.exitCode ?? 0, undefined, st.oomKilled);
    }
  }

  /** One transition; false when there is nothing to do until the task changes. */
  private async step(): Promise<boolean> {
    const s = this.state;
    if (isTerminal(s)) {
      if (wantsStop(this.task) && !this.stoppedAfterTerminal) {
        // e.g. FAILED while the container still runs: honour the shutdown anyway.
        this.stoppedAfterTerminal = true;
        await this.controller.shutdown().catch((err) => this.logger.debug({ taskId: this.id, err: String(err) }, 'shutdown after terminal state'));
      }
      return false;
    }
    if (wantsStop(this.task) && s !== 'running') {
      if (this.started) {
        // STARTING, waiting for the health check: the container runs and must be stopped.
        this.beginShutdown(false);
        await this.stopping;
        this.setState('shutdown', 'shutdown while waiting for the health check');
        return true;
      }
      this.setState('shutdown', 'shutdown before the task started');
      return true;
    }
    const rank = taskStateRank(s);
    if (rank < taskStateRank('accepted')) {
      this.setState('accepted', 'accepted');
    } else if (s === 'accepted') {
      this.setState('preparing', 'preparing');
    } else if (s === 'preparing') {
      try {
        await this.controller.prepare();
      } catch (err) {
        this.fatal(err);
        return true;
      }
      this.setState('ready', 'prepared');
    } else if (s === 'ready') {
      if (taskStateRank(this.task.desiredState) < taskStateRank('running')) return false;
      this.setState('starting', 'starting');
    } else if (s === 'starting') {
      if (this.started) return this.pollHealth();
      let st: ContainerStatus;
      try {
        await this.controller.start();
        this.started = true;
        st = await this.controller.inspect();
      } catch (err) {
        this.fatal(err);
        return true;
      }
      this.observe(st);
      // A container that already exited is RUNNING for a moment; waitExit() reports how it ended.
      if (st.health === 'unhealthy') this.unhealthy();
      else if (st.health !== 'starting') this.setState('running', 'started');
    } else if (s === 'running') {
      if (wantsStop(this.task)) this.beginShutdown();
      await this.waitExit();
    } else {
      return false;
    }
    return true;
  }

  /** Records what a fresh inspect() of the started container says (ID, ports, addresses, health check). */
  private observe(st: ContainerStatus): void {
    this.containerId = st.containerId ?? this.containerId;
    this.ports = st.ports;
    this.addresses = st.addresses;
    if (st.running) this.healthChecked = st.health !== undefined;
  }

  /**
   * One poll of a STARTING container's health (after `healthPollMs`, or sooner when the task
   * changes): `healthy` → RUNNING, `unhealthy` → FAILED, exited or gone → its terminal state, still
   * `starting` (or an inspect error, logged) → poll again. A stop request is left to step().
   */
  private async pollHealth(): Promise<boolean> {
    await this.pause(this.healthPollMs);
    if (this.closed || wantsStop(this.task)) return true;
    let st: ContainerStatus;
    try {
      st = await this.controller.inspect();
    } catch (err) {
      this.logger.warn({ taskId: this.id, err: String(err) }, 'inspecting a starting container failed; retrying');
      return true;
    }
    if (this.closed || wantsStop(this.task)) return true;
    this.observe(st);
    if (!st.exists) this.exited(undefined, new ContainerNotFoundError(containerName(this.task)).message);
    else if (!st.running) this.exited(st.exitCode ?? 0, undefined, st.oomKilled);
    else if (st.health === 'unhealthy') this.unhealthy();
    else if (st.health !== 'starting') this.setState('running', 'started');
    return true;
  }

  /** The container failed its health check: FAILED, container left running for the managers to stop. */
  private unhealthy(): void {
    this.setState('failed', 'unhealthy container', { err: 'task: unhealthy container' });
  }

  /**
   * Polls a RUNNING container's health every `healthPollMs` until `signal` fires or the task is
   * being stopped. @returns true when the engine reports it `unhealthy`.
   */
  private async watchHealth(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted && !this.stopping) {
      await sleep(this.clock, this.healthPollMs, signal);
      if (signal.aborted || this.stopping) break;
      const st = await this.controller.inspect().catch((err) => {
        this.logger.debug({ taskId: this.id, err: String(err) }, 'health poll: inspect failed');
        return undefined;
      });
      if (signal.aborted || this.stopping) break;
      if (st?.running && st.health === 'unhealthy') return true;
    }
    return false;
  }

  /**
   * Waits for the running container to stop, riding out runtime hiccups, and reports the outcome.
   * With a health check the wait is raced with {@link watchHealth}: `unhealthy` ends it as FAILED.
   */
  private async waitExit(): Promise<void> {
    for (;;) {
      const attempt = new AbortController();
      const stop = (): void => attempt.abort();
      this.abort.signal.addEventListener('abort', stop);
      let unhealthy = false;
      if (this.healthChecked) {
        void this.watchHealth(attempt.signal).then((bad) => {
          if (!bad) return;
          unhealthy = true;
          attempt.abort();
        });
      }
      try {
        const { exitCode, oomKilled } = await this.controller.wait(attempt.signal);
        if (this.closed) return;
        await this.stopping;
        this.exited(exitCode, undefined, oomKilled);
        return;
      } catch (err) {
        if (this.closed) return;
        if (unhealthy) {
          this.unhealthy();
          return;
        }
        if (err instanceof ContainerNotFoundError) {
          this.exited(undefined, err.message);
          return;
        }
        this.logger.warn({ taskId: this.id, err: String(err) }, 'waiting for container failed; inspecting');
        const st = await this.controller.inspect().catch(() => undefined);
        if (this.closed) return;
        if (st && !st.exists) {
          this.exited(undefined, new ContainerNotFoundError(containerName(this.task)).message);
          return;
        }
        if (st && st.started && !st.running) {
          this.exited(st.exitCode ?? 0, undefined, st.oomKilled);
          return;
        }
        await sleep(this.clock, this.retryMs, this.abort.signal);
      } finally {
        attempt.abort();
        this.abort.signal.removeEventListener('abort', stop);
      }
    }
  }

  /** Sleeps `ms`, waking early when the task changes (update()) or the runner closes. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      const done = (): void => {
        this.clock.clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', done);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = this.clock.setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done);
      this.wake = done;
    });
  }

  /**
   * Terminal state after the container stopped (exitCode) or vanished (missing = error text). A
   * container the OOM killer ended says so first in the error (`service ps` shows its start).
   */
  private exited(exitCode: number | undefined, missing?: string, oomKilled?: boolean): void {
    if (wantsStop(this.task)) {
      this.setState('shutdown', 'shutdown', exitCode === undefined ? {} : { exitCode });
    } else if (missing !== undefined) {
      this.setState('failed', 'container gone', { err: `task: ${missing}` });
    } else if (exitCode === 0) {
      this.setState('complete', 'finished', { exitCode });
    } else {
      this.setState('failed', 'started', { err: `task: ${oomKilled ? 'OOM killed: ' : ''}non-zero exit (${exitCode})`, exitCode });
    }
  }

  /** SwarmKit's rule for errors: REJECTED if the task never reached STARTING, else FAILED. */
  private fatal(err: unknown): void {
    if (taskStateRank(this.state) < taskStateRank('starting')) this.setState('rejected', 'rejected', { err: errText(err) });
    else this.setState('failed', 'failed', { err: errText(err) });
  }

  /**
   * Stops the container once (later calls reuse the first stop). `drain`: a RUNNING backend first
   * waits `drainDelayMs` so load balancers drop it; a STARTING task was never a backend.
   */
  private beginShutdown(drain = true): void {
    if (this.stopping) return;
    const delay = drain && this.drainDelayMs > 0 && isBackend(this.task) ? sleep(this.clock, this.drainDelayMs, this.abort.signal) : Promise.resolve();
    this.stopping = delay.then(() => (this.closed ? undefined : this.controller.shutdown())).catch(async (err) => {
      this.logger.warn({ taskId: this.id, err: String(err) }, 'graceful stop failed; killing');
      await this.controller.terminate().catch(() => undefined);
    });
  }

  private setState(state: TaskState, message: string, extra: { err?: string; exitCode?: number } = {}): void {
    if (taskStateRank(state) <= taskStateRank(this.state)) return;
    this.state = state;
    const status: TaskStatus = { state, timestamp: isoNow(this.clock), message };
    if (extra.err !== undefined) status.err = extra.err;
    if (extra.exitCode !== undefined) status.exitCode = extra.exitCode;
    if (this.containerId) status.containerId = this.containerId;
    if (this.ports && this.ports.length > 0) status.ports = this.ports;
    if (this.addresses && this.addresses.length > 0) status.networkAddrs = this.addresses;
    this.logger.debug({ taskId: this.id, state, err: extra.err }, 'task state');
    this.report(this.task.id, status);
  }
}

/** True when the managers want the task stopped (desired state past RUNNING: SHUTDOWN, REMOVE, …). */
export function wantsStop(task: Pick<Task, 'desiredState'>): boolean {
  return taskStateRank(task.desiredState) > taskStateRank('running');
}

/** May the task be a load-balancer backend (VIP, DNS or published ports)? Then it drains before it stops. */
export function isBackend(task: Pick<Task, 'networks' | 'endpoint' | 'spec'>): boolean {
  return task.networks.length > 0 || task.spec.networks.length > 0 || (task.endpoint?.ports ?? []).some((p) => p.publishMode === 'ingress');
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Resolves after `ms` on `clock`, or at once when `signal` aborts. */
function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = clock.setTimeout(done, ms);
    function done(): void {
      clock.clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
