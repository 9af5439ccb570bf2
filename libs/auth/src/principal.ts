import type { ApiKeyScope } from '@tandem/persistence';

export type { ApiKeyScope };
export const SCOPES: readonly ApiKeyScope[] = ['infer', 'batch', 'admin'];

/** Who is calling: an API key (or `anonymous` when auth is off). */
export interface Principal {
  id: string;
  name: string;
  scopes: readonly ApiKeyScope[];
}

export const ANONYMOUS: Principal = { id: 'anonymous', name: 'anonymous (auth off)', scopes: SCOPES };

/** `admin` implies every other scope (operators drive batches and inference from the panel). */
export function hasScope(p: Principal, scope: ApiKeyScope): boolean {
  return p.scopes.includes(scope) || p.scopes.includes('admin');
}

/** The principal a request was authenticated as (set by the auth hook). */
export function principalOf(req: object): Principal {
  return (req as { principal?: Principal }).principal ?? ANONYMOUS;
}
