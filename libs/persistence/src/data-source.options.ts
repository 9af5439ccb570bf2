import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../../migrations';
import { ENTITIES } from './entities';

export interface DataSourceParams {
  url: string;
  /** Pool size for this process. */
  poolSize?: number;
  applicationName?: string;
}

export function buildDataSourceOptions(p: DataSourceParams): DataSourceOptions {
  return {
    type: 'postgres',
    url: p.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: ['error'],
    extra: { max: p.poolSize ?? 10, application_name: p.applicationName ?? 'tandem', connectionTimeoutMillis: 5_000 },
  };
}
