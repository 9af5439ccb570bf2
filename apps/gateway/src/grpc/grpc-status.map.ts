import { status } from '@grpc/grpc-js';
import { DomainException, ErrorCode, logInternalError, type ErrorLogger } from '@tandem/shared';

/** The gRPC side of the one error model (the HTTP side is HttpExceptionFilter). */
const GRPC_STATUS_BY_CODE: Readonly<Record<ErrorCode, status>> = {
  [ErrorCode.InvalidArgument]: status.INVALID_ARGUMENT,
  [ErrorCode.NotFound]: status.NOT_FOUND,
  [ErrorCode.Conflict]: status.ALREADY_EXISTS,
  [ErrorCode.PayloadTooLarge]: status.RESOURCE_EXHAUSTED,
  [ErrorCode.Unavailable]: status.UNAVAILABLE,
  [ErrorCode.DeadlineExceeded]: status.DEADLINE_EXCEEDED,
  [ErrorCode.Unauthenticated]: status.UNAUTHENTICATED,
  [ErrorCode.PermissionDenied]: status.PERMISSION_DENIED,
  [ErrorCode.RateLimited]: status.RESOURCE_EXHAUSTED,
  [ErrorCode.FailedPrecondition]: status.FAILED_PRECONDITION,
  [ErrorCode.Unprocessable]: status.FAILED_PRECONDITION,
  [ErrorCode.Internal]: status.INTERNAL,
};

/** What a failed call answers: its status, the details and extra trailers (retry-after, error-id). */
export interface GrpcReply {
  code: status;
  details: string;
  trailers?: Record<string, string>;
}

export interface GrpcError {
  code: status;
  details: string;
  /** Set for unexpected errors: logged with their stack under this id (as the HTTP filter does). */
  errorId?: string;
}

export function toGrpcError(e: unknown, logger: ErrorLogger, fields: Record<string, unknown> = {}): GrpcError {
  if (e instanceof DomainException) return { code: GRPC_STATUS_BY_CODE[e.code], details: e.message };
  const errorId = logInternalError(logger, e, fields);
  return { code: status.INTERNAL, details: `internal error (error id ${errorId})`, errorId };
}

/**
 * What a gRPC handler answers for a thrown error: the mapped status; an unexpected error is
 * logged with its stack under an error id (as the HTTP filter does) that the client gets in the
 * details and the `error-id` trailer; a rate limit carries its wait in `retry-after`.
 */
export function grpcErrorReply(e: unknown, logger: ErrorLogger, fields: Record<string, unknown> = {}): GrpcReply {
  const err = toGrpcError(e, logger, fields);
  const trailers: Record<string, string> = {};
  if (e instanceof DomainException && e.retryAfterS !== undefined) trailers['retry-after'] = String(Math.max(1, Math.ceil(e.retryAfterS)));
  if (err.errorId) trailers['error-id'] = err.errorId;
  return { code: err.code, details: err.details, trailers };
}
