/**
 * The one logger shape of every Shoal component: the slice of a pino logger they use — an object
 * of fields first, then an optional message (`log.warn({ taskId, err }, 'restart failed')`) — so
 * `shoald` passes its pino logger (or a pino child) unchanged and tests pass nothing
 * ({@link nopLogger}).
 *
 * Field conventions: `err` is an error message string (or the Error), IDs are `nodeId`, `taskId`,
 * `serviceId`, durations end in `Ms`. Components add `{ component: '<name>' }` through
 * {@link childLogger}.
 *
 * The Raft core (`@shoal/raft`) keeps its own message-first `Logger` because it imports nothing;
 * `@shoal/replication` adapts this one to it.
 */
export interface Logger {
  debug(obj: LogFields, msg?: string): void;
  info(obj: LogFields, msg?: string): void;
  warn(obj: LogFields, msg?: string): void;
  error(obj: LogFields, msg?: string): void;
  /** A logger adding `bindings` to every line (pino's `child`); optional — see {@link childLogger}. */
  child?(bindings: Record<string, unknown>): Logger;
}

/**
 * What a log line starts with: its fields (`{ taskId, err }`), or — pino's other form — just the
 * message (`log.info('joined the Raft group')`). Components always pass fields.
 */
export type LogFields = object | string;

const noop = (): void => {};

/** Discards everything. The default logger of every component. */
export const nopLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => nopLogger };

/**
 * `logger.child(bindings)` when the logger has one (pino), otherwise a wrapper that merges
 * `bindings` into every line's fields (the line's own fields win).
 */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  if (logger === nopLogger) return nopLogger;
  if (logger.child) return logger.child(bindings);
  const wrap = (fn: (obj: LogFields, msg?: string) => void) => (obj: LogFields, msg?: string) =>
    typeof obj === 'string' ? fn.call(logger, { ...bindings }, obj) : fn.call(logger, { ...bindings, ...obj }, msg);
  return {
    debug: wrap(logger.debug),
    info: wrap(logger.info),
    warn: wrap(logger.warn),
    error: wrap(logger.error),
    child: (more) => childLogger(logger, { ...bindings, ...more }),
  };
}

/** An error's message for the `err` field (non-Errors are stringified). */
export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
