import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DomainException, ErrorCode, HTTP_STATUS_BY_CODE } from '@tandem/shared';
import { toGrpcError } from './grpc-status.map';

const silent = { error: () => undefined };

/**
 * One row per domain error: the REST status and the gRPC status a client sees for it. The gRPC
 * column is Triton's (unknown model: NOT_FOUND, queue full: UNAVAILABLE) and, elsewhere,
 * google.rpc's HTTP↔gRPC table; where REST is finer (413, 409) the closest gRPC code is used.
 */
const TABLE: [ErrorCode, number, status][] = [
  [ErrorCode.InvalidArgument, 400, status.INVALID_ARGUMENT],
  [ErrorCode.NotFound, 404, status.NOT_FOUND],
  [ErrorCode.Conflict, 409, status.ALREADY_EXISTS],
  [ErrorCode.PayloadTooLarge, 413, status.RESOURCE_EXHAUSTED],
  [ErrorCode.Unavailable, 503, status.UNAVAILABLE],
  [ErrorCode.DeadlineExceeded, 504, status.DEADLINE_EXCEEDED],
  [ErrorCode.Unauthenticated, 401, status.UNAUTHENTICATED],
  [ErrorCode.PermissionDenied, 403, status.PERMISSION_DENIED],
  [ErrorCode.RateLimited, 429, status.RESOURCE_EXHAUSTED],
  [ErrorCode.FailedPrecondition, 409, status.FAILED_PRECONDITION],
  [ErrorCode.Unprocessable, 422, status.FAILED_PRECONDITION],
  [ErrorCode.Internal, 500, status.INTERNAL],
];

describe('gRPC status mapping', () => {
  it('covers every domain error, in step with the REST status', () => {
    expect(TABLE.map((r) => r[0]).sort()).toEqual(Object.values(ErrorCode).sort());
    for (const [code, http, grpc] of TABLE) {
      expect(HTTP_STATUS_BY_CODE[code], code).toBe(http);
      expect(toGrpcError(new DomainException(code, 'x'), silent).code, code).toBe(grpc);
    }
  });

  it('unknown model: NOT_FOUND with the same message as the REST 404; unexpected errors: INTERNAL with an error id', () => {
    const e = DomainException.notFound("model 'nope' not found");
    expect(toGrpcError(e, silent)).toEqual({ code: status.NOT_FOUND, details: "model 'nope' not found" });
    const internal = toGrpcError(new Error('boom'), silent);
    expect(internal.code).toBe(status.INTERNAL);
    expect(internal.details).toMatch(/^internal error \(error id .+\)$/);
    expect(internal.details).not.toContain('boom');
  });
});
