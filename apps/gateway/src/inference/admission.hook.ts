import type { FastifyInstance, FastifyReply } from 'fastify';
import { mapException, type DomainException } from '@tandem/shared';
import type { InferenceService } from './inference.service';
import { INFER_ROUTES } from './oip-infer.route';

const INFER_ROUTE_SET = new Set<string>(INFER_ROUTES);

function refuse(reply: FastifyReply, e: DomainException): void {
  const m = mapException(e);
  if (m.retryAfterS !== undefined) void reply.header('Retry-After', String(Math.max(1, Math.ceil(m.retryAfterS))));
  // Keep-alive: Node discards the unread upload. Closing instead was measured slower under a
  // retry storm (every refusal then costs a reconnect).
  void reply.status(m.status).type('application/json').send({ error: m.error });
}

/**
 * Overload is decided before the body is read: an infer request for a model whose queue is full
 * (in requests or in time) waits, unread, for room or is answered 503 + Retry-After from
 * `onRequest` (AdmissionGate), so a flood of rejected uploads costs no body buffering, parsing
 * or decoding. Registered after the auth hook: an unauthenticated caller learns nothing of queues.
 */
export function registerAdmissionHook(fastify: FastifyInstance, inference: InferenceService): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.method !== 'POST' || !INFER_ROUTE_SET.has(request.routeOptions.url ?? '')) return done();
    const { model, version } = request.params as { model: string; version?: string };
    // The place is held while the body is read: 'close' follows the body's end, or the upload's abort.
    const r = inference.admit(model, version, (release) => request.raw.once('close', release));
    if (r === undefined) return done();
    if (!(r instanceof Promise)) return refuse(reply, r);
    void r.then((e) => (e ? refuse(reply, e) : done()));
  });
}
