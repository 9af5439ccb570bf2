import type { FastifyInstance } from 'fastify';
import { ADMIN_BODY_LIMIT_BYTES } from './admin.dto';

const isAdminApi = (url: string): boolean => url === '/admin/api' || url.startsWith('/admin/api/');

/**
 * Caps every `/admin/api` route's body at ADMIN_BODY_LIMIT_BYTES while its bytes arrive
 * (Fastify's per-route `bodyLimit`: a large Content-Length is refused before any is read, a
 * chunked body as soon as it passes the cap), instead of the app-wide limit meant for tensors.
 * Must run before Nest registers its routes (before init/listen).
 */
export function registerAdminBodyLimit(fastify: FastifyInstance): void {
  fastify.addHook('onRoute', (route) => {
    if (isAdminApi(route.url)) route.bodyLimit = ADMIN_BODY_LIMIT_BYTES;
  });
}
