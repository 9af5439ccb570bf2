import type { FastifyInstance, FastifyReply } from 'fastify';
import { DomainException, ErrorCode, HTTP_STATUS_BY_CODE } from '@tandem/shared';
import { bearerToken, type ApiKeyService } from './api-key.service';
import type { Principal } from './principal';
import { accessFor } from './route-policy';

/**
 * Authentication, authorization and rate limiting for every HTTP route, in Fastify's onRequest
 * hook: before the body is read, so an unauthenticated caller cannot make us parse a large
 * upload. Routing has already happened here, so the decision is made on the route the router
 * matched (`routeOptions.url`), the same one whose handler will run.
 */
export function registerAuthHook(fastify: FastifyInstance, keys: ApiKeyService): void {
  const opts = keys.options;
  // Callback style, not async: a key verified within the cache's lifetime is decided without a
  // promise (the hot path of every request); only a lookup waits for Postgres.
  fastify.addHook('onRequest', (request, reply, done) => {
    // Only the not-found handler runs without a matched route; anything else without a
    // pattern is unexpected, so it is closed rather than waved through.
    const route = request.routeOptions.url;
    const access = route === undefined && !request.is404 ? 'admin' : accessFor(request.method, route, opts, request.params as Record<string, unknown>);
    if (access === 'public') return done();
    const bearer = bearerToken(request.headers.authorization);
    const holder = request as unknown as { principal: Principal };
    let now: Principal | undefined;
    try {
      now = keys.authorizeNow(bearer, access, request.ip);
    } catch (e) {
      return refuse(reply, e, done);
    }
    if (now) {
      holder.principal = now;
      return done();
    }
    keys.authorize(bearer, access, request.ip).then(
      (p) => {
        holder.principal = p;
        done();
      },
      (e: unknown) => refuse(reply, e, done),
    );
  });
}

/** A DomainException is answered here (the hook's `done` is then not called); anything else goes to the error handler. */
function refuse(reply: FastifyReply, e: unknown, done: (err?: Error) => void): void {
  if (e instanceof DomainException) deny(reply, e);
  else done(e instanceof Error ? e : new Error(String(e)));
}

function deny(reply: FastifyReply, e: DomainException): FastifyReply {
  if (e.retryAfterS !== undefined) void reply.header('Retry-After', String(Math.max(1, Math.ceil(e.retryAfterS))));
  if (e.code === ErrorCode.Unauthenticated) void reply.header('WWW-Authenticate', 'Bearer');
  return reply.status(HTTP_STATUS_BY_CODE[e.code]).type('application/json').send({ error: e.message });
}
