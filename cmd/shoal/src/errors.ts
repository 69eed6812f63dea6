/**
 * A bad command line: wrong flag value, missing argument, unknown command. The CLI prints its
 * message as one line (`Error: <message>`) and exits with status 1, without a usage dump.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Thrown by a command that has already printed its errors; carries the exit status. */
export class ExitError extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = 'ExitError';
  }
}
