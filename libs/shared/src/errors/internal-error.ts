import { randomUUID } from 'node:crypto';

/** What logInternalError needs of a logger (Nest's Logger fits). */
export interface ErrorLogger {
  error(message: unknown, ...params: unknown[]): void;
}

/**
 * Logs an unexpected error with its stack under a fresh error id and returns the id, which each
 * transport puts in its sanitized answer (HTTP body `errorId`, gRPC details and `error-id`
 * trailer): a client's report leads to the log line, the client never sees the internals.
 */
export function logInternalError(logger: ErrorLogger, e: unknown, fields: Record<string, unknown> = {}): string {
  const errorId = randomUUID();
  logger.error({ errorId, ...fields, err: e }, e instanceof Error ? (e.stack ?? e.message) : String(e));
  return errorId;
}
