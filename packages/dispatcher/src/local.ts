import type { DispatcherClient } from '@shoal/api';
import type { Dispatcher } from './dispatcher.js';

/**
 * In-process {@link DispatcherClient} for the agent that runs inside a manager. Arguments and
 * results are copied (`structuredClone`), as a wire transport would, so neither side can change
 * the other's objects.
 */
export function localDispatcherClient(d: Dispatcher): DispatcherClient {
  return {
    openSession: async (req) => structuredClone(await d.openSession(structuredClone(req))),
    heartbeat: async (sessionId) => d.heartbeat(sessionId),
    watchAssignments: (sessionId, onAssignments, onEnd) =>
      d.watchAssignments(sessionId, (a) => onAssignments(structuredClone(a)), onEnd),
    updateTaskStatus: async (sessionId, updates) => d.updateTaskStatus(sessionId, structuredClone(updates)),
  };
}
