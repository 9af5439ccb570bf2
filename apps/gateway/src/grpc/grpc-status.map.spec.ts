import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DomainException, ErrorCode, HTTP_STATUS_BY_CODE } from '@tandem/shared';
import { grpcErrorReply, toGrpcError } from './grpc-status.map';

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

  it('an unexpected error is logged with its stack under the error id the client gets in details and the error-id trailer', () => {
    const logged: { fields: Record<string, unknown>; msg: unknown }[] = [];
    const logger = { error: (fields: unknown, msg: unknown) => logged.push({ fields: fields as Record<string, unknown>, msg }) };
    const reply = grpcErrorReply(new Error('boom'), logger, { method: '/inference.GRPCInferenceService/ModelInfer' });
    expect(reply.code).toBe(status.INTERNAL);
    const id = reply.trailers!['error-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(reply.details).toBe(`internal error (error id ${String(id)})`);
    expect(logged).toHaveLength(1);
    expect(logged[0]!.fields).toMatchObject({ errorId: id, method: '/inference.GRPCInferenceService/ModelInfer' });
    expect(String(logged[0]!.msg)).toMatch(/^Error: boom\n\s+at /);
  });

  it('a domain error is not logged and has no error id; a rate limit carries retry-after', () => {
    const logged: unknown[] = [];
    const logger = { error: (f: unknown) => logged.push(f) };
    const limited = grpcErrorReply(new DomainException(ErrorCode.RateLimited, 'slow down', { retryAfterS: 2.2 }), logger);
    expect(limited.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(limited.trailers).toEqual({ 'retry-after': '3' });
    expect(logged).toEqual([]);
  });
});
