import type { FastifyInstance } from 'fastify';
import { DomainException, ErrorCode, HTTP_STATUS_BY_CODE } from '@tandem/shared';
import { bearerToken, type ApiKeyService } from './api-key.service';
import { RateLimiter } from './rate-limiter';
import { accessFor } from './route-policy';

/**
 * Authentication, authorization and per-key rate limiting for every HTTP route, in Fastify's
 * onRequest hook: before the body is read, so an unauthenticated caller cannot make us parse
 * a large upload.
 */
export function registerAuthHook(fastify: FastifyInstance, keys: ApiKeyService): void {
  const opts = keys.options;
  const limiter = new RateLimiter(opts.rateLimitRps, opts.rateLimitBurst);
  fastify.addHook('onRequest', async (request, reply) => {
    const access = accessFor(request.method, request.url, opts);
    if (access === 'public') return;
    try {
      const principal = await keys.authorize(bearerToken(request.headers.authorization), access);
      (request as unknown as { principal: unknown }).principal = principal;
      const wait = opts.enabled ? limiter.take(principal.id) : 0;
      if (wait > 0) {
        throw new DomainException(ErrorCode.RateLimited, `rate limit of ${opts.rateLimitRps} requests/s for this key exceeded`, {
          retryAfterS: wait,
        });
      }
    } catch (e) {
      if (!(e instanceof DomainException)) throw e;
      if (e.retryAfterS !== undefined) void reply.header('Retry-After', String(Math.max(1, Math.ceil(e.retryAfterS))));
      if (e.code === ErrorCode.Unauthenticated) void reply.header('WWW-Authenticate', 'Bearer');
      return reply.status(HTTP_STATUS_BY_CODE[e.code]).type('application/json').send({ error: e.message });
    }
  });
}
