import { hasScope, type Principal } from '@tandem/auth';
import type { Tenant } from './batch.types';

/** Batches belong to the key's principal; the admin scope sees and acts on every batch. */
export function tenantOf(p: Principal): Tenant {
  return { id: p.id, admin: hasScope(p, 'admin') };
}
