import type { ApiKeyScope } from './principal';
import type { AuthOptions } from './auth.options';

/** `public`: no key; a scope: a key holding it; `authenticated`: any valid key (unmatched routes). */
export type RouteAccess = 'public' | 'authenticated' | ApiKeyScope;

const PANEL_FILE = /^\w[\w-]*(\.[\w-]+)*\.(js|css|html|svg|png|ico)$/;

/**
 * One table decides what every HTTP route needs, by the route pattern the router MATCHED
 * (`/v2/repository/models/:model/unload`), never by the raw URL: the router decodes `%72`,
 * and any normalisation we did ourselves could disagree with it. `route` is undefined when no
 * route matched: any valid key may then see the 404 (nobody else learns which paths exist).
 * Matched routes this table does not know need `admin`, so a route added later is closed
 * until someone opens it here.
 */
export function accessFor(
  method: string,
  route: string | undefined,
  opts: Pick<AuthOptions, 'openHealth' | 'openMetrics'>,
  params: Readonly<Record<string, unknown>> = {},
): RouteAccess {
  if (route === undefined) return 'authenticated';
  const path = route.replace(/\/+$/, '') || '/';
  if (path.startsWith('/v2/health/')) return opts.openHealth ? 'public' : 'infer';
  if (path === '/metrics') return opts.openMetrics ? 'public' : 'admin';
  if (path === '/v2/repository' || path.startsWith('/v2/repository/')) return 'admin';
  if (path === '/v2' || path.startsWith('/v2/')) return 'infer';
  if (path === '/v1/batches' || path.startsWith('/v1/batches/')) return 'batch';
  // The Files API feeds batches (OpenAI's Batch API uploads its input there first).
  if (path === '/v1/files' || path.startsWith('/v1/files/')) return 'batch';
  if (path.startsWith('/admin/api/')) return 'admin';
  // The panel's static shell holds no data; every call the panel makes needs an admin key. Odd
  // file names (`..%2f…`) stay closed even though the controller would refuse them too.
  if (method === 'GET' || method === 'HEAD') {
    if (path === '/admin') return 'public';
    if (path === '/admin/:file' && PANEL_FILE.test(String(params.file ?? ''))) return 'public';
  }
  return 'admin';
}
