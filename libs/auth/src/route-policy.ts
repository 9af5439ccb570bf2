import type { ApiKeyScope } from './principal';
import type { AuthOptions } from './auth.options';

export type RouteAccess = 'public' | ApiKeyScope;

/**
 * One table decides what every HTTP route needs, by path. Unknown paths need `admin`, so a
 * route added later is closed until someone opens it here.
 */
export function accessFor(method: string, url: string, opts: Pick<AuthOptions, 'openHealth' | 'openMetrics'>): RouteAccess {
  const path = url.split('?', 1)[0]!.replace(/\/+$/, '') || '/';
  if (path.startsWith('/v2/health/')) return opts.openHealth ? 'public' : 'infer';
  if (path === '/metrics') return opts.openMetrics ? 'public' : 'admin';
  if (path.startsWith('/v2/repository')) return 'admin';
  if (path === '/v2' || path.startsWith('/v2/')) return 'infer';
  if (path.startsWith('/v1/batches')) return 'batch';
  if (path.startsWith('/admin/api/')) return 'admin';
  // The panel's static shell holds no data; every call it makes needs an admin key.
  if (method === 'GET' && (path === '/admin' || /^\/admin\/[\w.-]+\.(js|css|html|svg|png|ico)$/.test(path))) return 'public';
  return 'admin';
}
