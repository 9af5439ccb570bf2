import { DataSource } from 'typeorm';
import { ApiKeyRepository, ApiKeyService, type AuthOptions } from '@tandem/auth';
import { AuditLogRepository, buildDataSourceOptions } from '@tandem/persistence';

/**
 * First `npm start` with auth on and no TANDEM_ADMIN_KEY: create an admin key if none is active
 * and hand it back to print once. Later starts find one and create nothing.
 */
export async function firstAdminKey(databaseUrl: string, auth: AuthOptions): Promise<string | undefined> {
  if (!auth.enabled || auth.bootstrapAdminKey) return undefined;
  const ds = await new DataSource(buildDataSourceOptions({ url: databaseUrl, poolSize: 1, applicationName: 'tandem-start' })).initialize();
  try {
    const service = new ApiKeyService(new ApiKeyRepository(ds), new AuditLogRepository(ds), auth);
    return await service.createFirstAdminKeyIfNone();
  } finally {
    await ds.destroy();
  }
}
