/**
 * ShoalError codes ↔ gRPC status codes (pure).
 *
 * The server answers an error with the gRPC status of its code (`grpcStatusOf`) and, for a
 * ShoalError, the trailing metadata key `shoal-error-code` carrying the exact ShoalError code; the
 * client rebuilds `new ShoalError(code, message)` from it, so the error a handler threw is the error
 * the caller catches (message preserved, stack not). Statuses without a ShoalError (transport
 * failures, refused peers) are mapped by `errorCodeOf` and thrown as `RpcError`, a ShoalError that
 * also keeps the gRPC status in `grpcCode`.
 */
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import type { ErrorCode } from '@shoal/api';

/** Trailing metadata key carrying the ShoalError code of an application error. */
export const ERROR_CODE_KEY = 'shoal-error-code';

const TO_GRPC: Readonly<Record<ErrorCode, status>> = {
  InvalidArgument: status.INVALID_ARGUMENT,
  NotFound: status.NOT_FOUND,
  AlreadyExists: status.ALREADY_EXISTS,
  FailedPrecondition: status.FAILED_PRECONDITION,
  Unavailable: status.UNAVAILABLE,
  Aborted: status.ABORTED,
  Unimplemented: status.UNIMPLEMENTED,
  Internal: status.INTERNAL,
};

const ERROR_CODES = new Set<string>(Object.keys(TO_GRPC));

/** True when `s` is one of the ShoalError codes. */
export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && ERROR_CODES.has(s);
}

/** The gRPC status for a ShoalError code. */
export function grpcStatusOf(code: ErrorCode): status {
  return TO_GRPC[code];
}

/**
 * The ShoalError code for a gRPC status. Exact for the eight statuses above; otherwise:
 * DEADLINE_EXCEEDED, CANCELLED, RESOURCE_EXHAUSTED → Unavailable (try again / elsewhere);
 * UNAUTHENTICATED, PERMISSION_DENIED → FailedPrecondition (the caller's identity must change first);
 * OUT_OF_RANGE → InvalidArgument; OK, UNKNOWN, DATA_LOSS → Internal.
 */
export function errorCodeOf(grpcCode: number): ErrorCode {
  switch (grpcCode) {
    case status.INVALID_ARGUMENT: case status.OUT_OF_RANGE: return 'InvalidArgument';
    case status.NOT_FOUND: return 'NotFound';
    case status.ALREADY_EXISTS: return 'AlreadyExists';
    case status.FAILED_PRECONDITION: case status.UNAUTHENTICATED: case status.PERMISSION_DENIED: return 'FailedPrecondition';
    case status.UNAVAILABLE: case status.DEADLINE_EXCEEDED: case status.CANCELLED: case status.RESOURCE_EXHAUSTED: return 'Unavailable';
    case status.ABORTED: return 'Aborted';
    case status.UNIMPLEMENTED: return 'Unimplemented';
    default: return 'Internal';
  }
}

/**
 * An error that did not come from a remote ShoalError: a transport failure, a deadline, a refused
 * peer. `code` is the mapped ShoalError code, `grpcCode` the gRPC status as received.
 */
export class RpcError extends ShoalError {
  /**
   * @param sent true when the request may have reached a server before the transport failed (the
   * connection was up when it was sent): a write may then have been applied although no answer came.
   */
  constructor(code: ErrorCode, message: string, readonly grpcCode: number, readonly sent = false) {
    super(code, message);
    this.name = 'RpcError';
  }
}

/** The parts of a grpc-js `ServiceError` / status object this module reads. */
export interface StatusLike {
  code?: number;
  details?: string;
  message?: string;
  metadata?: { get(key: string): unknown[] };
}

/**
 * Rebuilds the error a server sent: a ShoalError with the remote code and message when the
 * `shoal-error-code` trailer is present, otherwise an `RpcError` (mapped code, gRPC details).
 */
export function errorFromStatus(err: StatusLike): ShoalError {
  const code = err.code ?? status.UNKNOWN;
  const message = err.details || err.message || `gRPC status ${code}`;
  const remote = err.metadata?.get(ERROR_CODE_KEY)[0];
  const remoteCode = typeof remote === 'string' ? remote : Buffer.isBuffer(remote) ? remote.toString() : undefined;
  if (isErrorCode(remoteCode)) return new ShoalError(remoteCode, message);
  return new RpcError(errorCodeOf(code), message, code);
}

/** True when the status came from the transport (no `shoal-error-code` trailer) rather than a handler. */
export function isTransportStatus(err: StatusLike): boolean {
  return !isErrorCode(String(err.metadata?.get(ERROR_CODE_KEY)[0] ?? ''));
}

/**
 * grpc-js transport details shortened to the cause, e.g. "No connection established. Last error:
 * Error: connect ECONNREFUSED 10.0.0.1:2377. Resolution note: " → "connect ECONNREFUSED 10.0.0.1:2377".
 */
export function transportReason(details: string | undefined): string {
  let d = (details ?? '').trim();
  d = d.replace(/\.?\s*Resolution note:\s*$/, '');
  d = d.replace(/^No connection established\.\s*Last error:\s*(Error:\s*)?/, '');
  d = d.replace(/\s+/g, ' ');
  return d || 'connection failed';
}

/**
 * Sends grpc-js's own diagnostics (which it otherwise prints to stderr, e.g. "No address added out
 * of total 1 resolved" when a listen fails) to `log` as `warn` lines (`grpc` field), so a daemon's
 * output stays structured. The failure itself still reaches the caller as an error.
 */
export function routeGrpcLogs(log: { warn(obj: object, msg?: string): void }): void {
  const out = (...args: unknown[]) => log.warn({ grpc: args.map(String).join(' ') }, 'grpc-js');
  grpc.setLogger({ error: out, info: out, debug: out } as unknown as Partial<Console>);
  grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
}
