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
