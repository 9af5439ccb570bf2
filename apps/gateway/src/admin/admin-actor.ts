import type { FastifyRequest } from 'fastify';

/**
 * Who is acting, for the audit log. Until API keys land (a later issue) every admin call is
 * `admin`; the auth guard will resolve the key id here. Client-supplied headers are not trusted.
 */
export function adminActor(_req: FastifyRequest): string {
  return 'admin';
}
