/** Every domain error carries one of these; each transport maps them once (HTTP, gRPC). */
export enum ErrorCode {
  InvalidArgument = 'invalid_argument',
  NotFound = 'not_found',
  Conflict = 'conflict',
  PayloadTooLarge = 'payload_too_large',
  Unavailable = 'unavailable',
  DeadlineExceeded = 'deadline_exceeded',
  Unauthenticated = 'unauthenticated',
  PermissionDenied = 'permission_denied',
  RateLimited = 'rate_limited',
  FailedPrecondition = 'failed_precondition',
  /** Well-formed but not feasible as asked (a batch deadline that cannot be met): 422. */
  Unprocessable = 'unprocessable',
  Internal = 'internal',
}

export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.PayloadTooLarge]: 413,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.DeadlineExceeded]: 504,
  [ErrorCode.Unauthenticated]: 401,
  [ErrorCode.PermissionDenied]: 403,
  [ErrorCode.RateLimited]: 429,
  [ErrorCode.FailedPrecondition]: 409,
  [ErrorCode.Unprocessable]: 422,
  [ErrorCode.Internal]: 500,
};
