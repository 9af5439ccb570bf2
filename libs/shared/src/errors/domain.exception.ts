import { ErrorCode } from './error-code.enum';

export interface DomainExceptionOptions {
  /** Seconds a client should wait before retrying (503/429 → `Retry-After`). */
  retryAfterS?: number;
  cause?: unknown;
}

/** The one exception type services throw; transports translate `code` to their status. */
export class DomainException extends Error {
  readonly retryAfterS?: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: DomainExceptionOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainException';
    this.retryAfterS = options.retryAfterS;
  }

  static invalid(message: string): DomainException {
    return new DomainException(ErrorCode.InvalidArgument, message);
  }

  static notFound(message: string): DomainException {
    return new DomainException(ErrorCode.NotFound, message);
  }

  static unavailable(message: string, retryAfterS = 1): DomainException {
    return new DomainException(ErrorCode.Unavailable, message, { retryAfterS });
  }
}
