import type { FastifyInstance, FastifyReply } from 'fastify';
import { DomainException, ErrorCode, HTTP_STATUS_BY_CODE } from '@tandem/shared';
import { bearerToken, type ApiKeyService } from './api-key.service';
import { accessFor } from './route-policy';

/**
 * Authentication, authorization and rate limiting for every HTTP route, in Fastify's onRequest
 * hook: before the body is read, so an unauthenticated caller cannot make us parse a large
 * upload. Routing has already happened here, so the decision is made on the route the router
 * matched (`routeOptions.url`), the same one whose handler will run.
 */
export function registerAuthHook(fastify: FastifyInstance, keys: ApiKeyService): void {
  const opts = keys.options;
  fastify.addHook('onRequest', async (request, reply) => {
    // Only the not-found handler runs without a matched route; anything else without a
    // pattern is unexpected, so it is closed rather than waved through.
    const route = request.routeOptions.url;
    const access = route === undefined && !request.is404 ? 'admin' : accessFor(request.method, route, opts, request.params as Record<string, unknown>);
    if (access === 'public') return;
    try {
      const principal = await keys.authorize(bearerToken(request.headers.authorization), access, request.ip);
      (request as unknown as { principal: unknown }).principal = principal;
    } catch (e) {
      if (!(e instanceof DomainException)) throw e;
      return deny(reply, e);
    }
  });
}

function deny(reply: FastifyReply, e: DomainException): FastifyReply {
  if (e.retryAfterS !== undefined) void reply.header('Retry-After', String(Math.max(1, Math.ceil(e.retryAfterS))));
  if (e.code === ErrorCode.Unauthenticated) void reply.header('WWW-Authenticate', 'Bearer');
  return reply.status(HTTP_STATUS_BY_CODE[e.code]).type('application/json').send({ error: e.message });
}
