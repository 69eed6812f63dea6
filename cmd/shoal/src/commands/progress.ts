import type { Service, Task } from '@shoal/api';
import { taskName } from '../format/tables.js';
import { type Call, err as write } from './common.js';

/** What one poll of a converging service shows. Pure summary of `service.inspect` + `service.ps`. */
export interface Convergence {
  running: number;
  desired: number;
  /** True when every desired task of the current spec runs. */
  converged: boolean;
  /** True when every slot has failed (FAILED/REJECTED with an error) and nothing runs. */
  allFailed: boolean;
  /** Errors of current-spec tasks that failed or were rejected, by task ID: `web.1: <err>`. */
  errors: Map<string, string>;
  /**
   * Why current-spec tasks wait in PENDING (the scheduler's `no suitable node (…)`), by task ID:
   * `web.1: pending: <reason>` — what `service ps` shows in its ERROR column.
   */
  pending: Map<string, string>;
}

/**
 * Summarizes a service's tasks for the progress display: counts tasks of the current spec
 * version that are desired and observed RUNNING against the desired count (replicas, or for
 * global services the tasks desired running).
 */
export function summarize(service: Service, tasks: readonly Task[]): Convergence {
  const current = tasks.filter((t) => t.specVersion === undefined || service.specVersion === undefined || t.specVersion === service.specVersion);
  const live = current.filter((t) => t.desiredState === 'running');
  const running = live.filter((t) => t.status.state === 'running').length;
  const desired = 'replicated' in service.spec.mode ? service.spec.mode.replicated.replicas : live.length;
  const errors = new Map<string, string>();
  const pending = new Map<string, string>();
  for (const t of current) {
    if (t.status.err && (t.status.state === 'failed' || t.status.state === 'rejected')) errors.set(t.id, `${taskName(t)}: ${t.status.err}`);
    if (t.status.err && t.status.state === 'pending' && t.desiredState === 'running') pending.set(t.id, `${taskName(t)}: pending: ${t.status.err}`);
  }
  // Every slot (or node, for global services) has at least one failed task and none runs.
  const slots = new Map<string, boolean>();
  for (const t of current) {
    const key = t.slot !== 0 ? String(t.slot) : t.nodeId;
    const failed = (t.status.state === 'failed' || t.status.state === 'rejected') && Boolean(t.status.err);
    slots.set(key, (slots.get(key) ?? false) || failed);
  }
  const slotCount = 'replicated' in service.spec.mode ? desired : slots.size;
  const failedSlots = [...slots.values()].filter(Boolean).length;
  const allFailed = desired > 0 && running === 0 && slotCount > 0 && failedSlots >= slotCount;
  const converged = running === desired;
  return { running, desired, converged, allFailed, errors, pending };
}

/** How long a global service must show no tasks before `0 out of 0` counts as converged. */
const GLOBAL_EMPTY_MS = 3000;

export interface WaitOptions {
  /** Give up (but leave the service converging) after this long. Default 120 s. */
  timeoutMs?: number;
  /** Poll period, ms. Default 200 (Docker's). */
  pollMs?: number;
  /** Print nothing but errors. */
  quiet?: boolean;
  /**
   * What the command did, for the error when every task fails: the change is in the store by then,
   * so the message says so and how to look at (or undo) it. Default `updated`.
   */
  action?: 'created' | 'updated' | 'scaled' | 'rolled back';
  /**
   * The service's `specVersion` before the command, or `unchanged` for a command that cannot change
   * it (`service scale`). When the service is still at that version, the tasks that had already
   * failed at the first poll belong to an earlier command: their errors are not shown again (an
   * update that changes no task, e.g. `--replicas`, must not repeat an old task's error).
   */
  specVersionBefore?: number | 'unchanged';
}

/**
 * The one-line error when every task of `name` fails after `action`: it says the change WAS made
 * (the service exists, the update is applied) and what to run next.
 */
export function tasksFailMessage(name: string, action: NonNullable<WaitOptions['action']>, lastError: string): string {
  const see = `See 'shoal service ps ${name}'`;
  const why = lastError ? `: ${lastError.replace(/[.\s]+$/, '')}` : '';
  switch (action) {
    case 'created': return `service ${name} was created, but its tasks fail${why}. ${see}; remove it with 'shoal service rm ${name}'`;
    case 'updated': return `service ${name} was updated (the update is applied), but its tasks fail${why}. ${see}; undo it with 'shoal service rollback ${name}'`;
    case 'scaled': return `service ${name} was scaled, but its tasks fail${why}. ${see}`;
    case 'rolled back': return `service ${name} was rolled back, but its tasks fail${why}. ${see}`;
  }
}

/**
 * Polls the service until it converges, printing `overall progress: R out of D tasks` when the
 * count changes, each error of a current-spec task once, why a task waits in PENDING (each reason
 * once, as `service ps` shows it), and `verify: Service <id> converged` at the end, on stderr
 * (stdout stays the command's result, e.g. the service ID, for scripts).
 * @throws Error when every task failed (e.g. the image does not exist): one line saying the change
 *   was made, the last error, and what to run next ({@link tasksFailMessage}).
 */
export async function waitForService(call: Call, id: string, opts: WaitOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const pollMs = opts.pollMs ?? 200;
  const started = Date.now();
  const deadline = started + timeoutMs;
  // Task IDs (errors) or `ID reason` (pending reasons, which may change) already shown or not to show.
  const seenErrors = new Set<string>();
  let firstPoll = true;
  let lastLine = '';
  let rollbackShown = '';
  // On a terminal the progress line is redrawn in place; other output starts on a fresh line.
  const tty = Boolean(process.stderr.isTTY) && !opts.quiet;
  let open = false;
  const endLine = () => {
    if (open) write('\n');
    open = false;
  };
  const say = (s: string) => {
    if (opts.quiet) return;
    endLine();
    write(s);
  };
  const progress = (line: string) => {
    if (opts.quiet) return;
    if (tty) {
      write(`\r\x1b[2K${line}`);
      open = true;
    } else {
      write(`${line}\n`);
    }
  };
  let interrupted = false;
  const onSigint = () => { interrupted = true; };
  process.once('SIGINT', onSigint);
  try {
    for (;;) {
      const service = await call('service.inspect', { ref: id });
      const { tasks } = await call('service.ps', { ref: id });
      const s = summarize(service, tasks);
      if (firstPoll) {
        firstPoll = false;
        const before = opts.specVersionBefore;
        if (before !== undefined && (before === 'unchanged' || before === service.specVersion)) for (const tid of s.errors.keys()) seenErrors.add(tid);
      }
      const rollingBack = service.updateStatus?.state.startsWith('rollback') ?? false;
      if (rollingBack && service.updateStatus && rollbackShown !== service.updateStatus.message) {
        rollbackShown = service.updateStatus.message;
        say(`rollback: ${rollbackShown}\n`);
      }
      const line = `${rollingBack ? 'rolling back update' : 'overall progress'}: ${s.running} out of ${s.desired} tasks`;
      if (line !== lastLine) {
        progress(line);
        lastLine = line;
      }
      // The reason alone (without the task name), for the final error line.
      const reason = (e: string) => e.replace(/^[^:]*: /, '');
      const lastErr = [...s.errors.values()].pop() ?? '';
      for (const [tid, e] of s.errors) {
        if (seenErrors.has(tid)) continue;
        seenErrors.add(tid);
        // When giving up now, the final line carries this error; do not print it twice.
        if (!(s.allFailed && reason(e) === reason(lastErr))) {
          endLine();
          write(`${e}\n`);
        }
      }
      for (const [tid, why] of s.pending) {
        const key = `${tid} ${why}`;
        if (seenErrors.has(key)) continue;
        seenErrors.add(key);
        say(`${why}\n`);
      }
      if (service.updateStatus?.state === 'paused' || service.updateStatus?.state === 'rollback_paused') {
        endLine();
        throw new Error(`service ${service.spec.name} update paused: ${service.updateStatus.message}`);
      }
      if (s.allFailed) endLine();
      if (s.allFailed) throw new Error(tasksFailMessage(service.spec.name, opts.action ?? 'updated', reason(lastErr)));
      // A global service has no desired count of its own: zero tasks right after creation may
      // only mean the orchestrator has not run yet, so "0 out of 0" must hold for a while.
      const settled = s.desired > 0 || !('global' in service.spec.mode) || Date.now() - started >= GLOBAL_EMPTY_MS;
      if (s.converged && settled && !(service.updateStatus?.state === 'updating' || service.updateStatus?.state === 'rollback_started')) {
        say(`verify: Service ${id} converged\n`);
        return;
      }
      if (interrupted || Date.now() >= deadline) {
        endLine();
        write(`Operation continuing in background.\nUse \`shoal service ps ${service.spec.name}\` to check progress.\n`);
        return;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    endLine();
    process.removeListener('SIGINT', onSigint);
  }
}
