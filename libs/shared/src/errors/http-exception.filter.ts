import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainException } from './domain.exception';
import { HTTP_STATUS_BY_CODE } from './error-code.enum';
import { logInternalError } from './internal-error';

interface Mapped {
  status: number;
  error: string;
  retryAfterS?: number;
}

/** Errors Fastify raises itself (bad JSON, body too large, bad content type) carry a 4xx statusCode. */
function isFastifyClientError(e: unknown): e is { statusCode: number; message: string; code?: string } {
  if (typeof e !== 'object' || e === null) return false;
  const status = (e as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

function messageOf(body: string | object): string {
  if (typeof body === 'string') return body;
  const msg = (body as { message?: unknown; error?: unknown }).message ?? (body as { error?: unknown }).error;
  if (Array.isArray(msg)) return msg.join('; ');
  return typeof msg === 'string' ? msg : 'request failed';
}

export function mapException(e: unknown): Mapped {
  if (e instanceof DomainException) {
    return { status: HTTP_STATUS_BY_CODE[e.code], error: e.message, retryAfterS: e.retryAfterS };
  }
  if (e instanceof HttpException) {
    const status = e.getStatus();
    return { status, error: messageOf(e.getResponse()) };
  }
  if (isFastifyClientError(e)) {
    const error = e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'request body too large' : e.message;
    return { status: e.statusCode, error };
  }
  return { status: 500, error: 'internal error' };
}

/**
 * The only HTTP error mapping: `{"error": "..."}` with the domain's status. Unexpected errors
 * become a sanitized 500 carrying an error id that also appears in the log with the stack.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const reply = ctx.getResponse<FastifyReply>();
    const request = ctx.getRequest<FastifyRequest>();
    const mapped = mapException(exception);
    const body: { error: string; errorId?: string } = { error: mapped.error };
    if (mapped.status >= 500 && !(exception instanceof DomainException)) {
      body.errorId = logInternalError(this.logger, exception, { reqId: request?.id });
    }
    if (mapped.retryAfterS !== undefined) void reply.header('Retry-After', String(Math.max(1, Math.ceil(mapped.retryAfterS))));
    void reply.status(mapped.status).type('application/json').send(body);
  }
}
