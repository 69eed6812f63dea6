/**
 * The slice of a pino logger the agent uses (`logger.info({ taskId }, 'message')`), so callers can
 * pass a pino child logger and tests can pass nothing.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

/** Discards everything. */
export const nullLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
