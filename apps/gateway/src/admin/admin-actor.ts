import type { FastifyRequest } from 'fastify';
import { principalOf } from '@tandem/auth';

/**
 * Who is acting, for the audit log: the API key the auth hook verified (`key:<id> (<name>)`).
 * Client-supplied headers are never trusted for this.
 */
export function adminActor(req: FastifyRequest): string {
  const p = principalOf(req);
  return p.id === 'anonymous' ? 'anonymous' : `key:${p.id} (${p.name})`;
}
