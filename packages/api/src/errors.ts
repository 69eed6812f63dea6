/**
 * Errors that cross component and process boundaries. `code` follows gRPC status names so the
 * Engine API façade and the CLI can map them (InvalidArgument→400, NotFound→404, AlreadyExists→409,
 * FailedPrecondition→400, Unavailable→503, anything else→500; moby `httpstatus/status.go`).
 */
export type ErrorCode =
  | 'InvalidArgument'
  | 'NotFound'
  | 'AlreadyExists'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'Aborted'
  | 'Unimplemented'
  | 'Internal';

export class ShoalError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = 'ShoalError';
  }
}

export const invalidArgument = (msg: string) => new ShoalError('InvalidArgument', msg);
export const notFound = (msg: string) => new ShoalError('NotFound', msg);
export const alreadyExists = (msg: string) => new ShoalError('AlreadyExists', msg);
export const failedPrecondition = (msg: string) => new ShoalError('FailedPrecondition', msg);
export const unavailable = (msg: string) => new ShoalError('Unavailable', msg);

/** Optimistic concurrency failure (SwarmKit `ErrSequenceConflict`). */
export class SequenceConflictError extends ShoalError {
  constructor(what = 'object') {
    super('Aborted', `update out of sequence (${what} changed since it was read); read it again and retry`);
  }
}

/** HTTP status for an error code (Engine API mapping). */
export function httpStatusOf(code: ErrorCode | undefined): number {
  switch (code) {
    case 'InvalidArgument': case 'FailedPrecondition': return 400;
    case 'NotFound': return 404;
    case 'AlreadyExists': return 409;
    case 'Aborted': return 409;
    case 'Unavailable': return 503;
    case 'Unimplemented': return 501;
    default: return 500;
  }
}
