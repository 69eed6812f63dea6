import { type Task, isTerminal, taskStateRank } from './objects.js';

const RUNNING = taskStateRank('running');
const REMOVE = taskStateRank('remove');

/**
 * Whether `task` is still handing its slot over to its replacement ({@link Task.handoff}), so its
 * container must keep running and serving although its desired state is past RUNNING. True when
 * all of these hold:
 * - `task.desiredState` is past RUNNING but before REMOVE (a task whose slot or service is being
 *   removed stops at once);
 * - `task.status.state` is RUNNING;
 * - `task.handoff` is set and `nowMs` is before `handoff.until` (an unparsable `until` counts as
 *   passed);
 * - `successor` (the task `handoff.to`; `undefined` when it does not exist any more) is still
 *   desired to run (desired ≤ RUNNING), has not reached RUNNING yet, and has not ended.
 * Pure: the caller looks the successor up and supplies the time (ms since the epoch).
 * Once false it stays false (states only move forward; time too).
 */
export function handoffPending(task: Task, successor: Task | undefined, nowMs: number): boolean {
  const desired = taskStateRank(task.desiredState);
  if (desired <= RUNNING || desired >= REMOVE) return false;
  if (task.status.state !== 'running' || !task.handoff) return false;
  const until = Date.parse(task.handoff.until);
  if (!(nowMs < until)) return false;
  if (!successor || successor.id !== task.handoff.to) return false;
  if (taskStateRank(successor.desiredState) > RUNNING) return false;
  return successor.status.state !== 'running' && !isTerminal(successor.status.state);
}
