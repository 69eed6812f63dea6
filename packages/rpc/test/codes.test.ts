/** ShoalError ↔ gRPC status mapping and transport error text (pure). */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import type { ErrorCode } from '@shoal/api';
import { ERROR_CODE_KEY, errorCodeOf, errorFromStatus, grpcStatusOf, isTransportStatus, RpcError, statusOfError, transportReason } from '../src/index.js';

const CODES: ErrorCode[] = ['InvalidArgument', 'NotFound', 'AlreadyExists', 'FailedPrecondition', 'Unavailable', 'Aborted', 'Unimplemented', 'Internal'];

test('each ShoalError code maps to its gRPC status and back', (t) => {
  for (const code of CODES) t.is(errorCodeOf(grpcStatusOf(code)), code);
  t.is(grpcStatusOf('InvalidArgument'), grpc.status.INVALID_ARGUMENT);
  t.is(grpcStatusOf('Unavailable'), grpc.status.UNAVAILABLE);
});

test('statuses without a ShoalError code map to the nearest one', (t) => {
  t.is(errorCodeOf(grpc.status.DEADLINE_EXCEEDED), 'Unavailable');
  t.is(errorCodeOf(grpc.status.CANCELLED), 'Unavailable');
  t.is(errorCodeOf(grpc.status.RESOURCE_EXHAUSTED), 'Unavailable');
  t.is(errorCodeOf(grpc.status.UNAUTHENTICATED), 'FailedPrecondition');
  t.is(errorCodeOf(grpc.status.PERMISSION_DENIED), 'FailedPrecondition');
  t.is(errorCodeOf(grpc.status.OUT_OF_RANGE), 'InvalidArgument');
  t.is(errorCodeOf(grpc.status.UNKNOWN), 'Internal');
  t.is(errorCodeOf(999), 'Internal');
});

test('a server status with the code trailer rebuilds the same ShoalError; without it an RpcError', (t) => {
  const s = statusOfError(new ShoalError('Unavailable', 'not the leader'));
  t.is(s.code, grpc.status.UNAVAILABLE);
  t.is(s.metadata?.get(ERROR_CODE_KEY)[0], 'Unavailable');
  const back = errorFromStatus(s);
  t.is(back.constructor, ShoalError);
  t.is(back.code, 'Unavailable');
  t.is(back.message, 'not the leader');
  t.false(isTransportStatus(s));

  const transport = { code: grpc.status.UNAVAILABLE, details: 'Connection dropped', metadata: new grpc.Metadata() };
  t.true(isTransportStatus(transport));
  const e = errorFromStatus(transport);
  t.true(e instanceof RpcError);
  t.is((e as RpcError).grpcCode, grpc.status.UNAVAILABLE);
  t.is(e.message, 'Connection dropped');

  const md = new grpc.Metadata();
  md.set(ERROR_CODE_KEY, 'NoSuchCode');
  t.true(errorFromStatus({ code: grpc.status.NOT_FOUND, details: 'x', metadata: md }) instanceof RpcError, 'an unknown code in the trailer is ignored');

  const internal = statusOfError(new RangeError('bad'));
  t.is(internal.code, grpc.status.INTERNAL);
  t.is(errorFromStatus(internal).code, 'Internal');
});

test('transportReason keeps the cause of a grpc-js connection failure', (t) => {
  t.is(transportReason('No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: '), 'connect ECONNREFUSED 127.0.0.1:1');
  t.is(transportReason('Connection dropped'), 'Connection dropped');
  t.is(transportReason(undefined), 'connection failed');
});
