import type { PoolConfig } from 'pg';
import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../../migrations';
import { ENTITIES } from './entities';

export interface DataSourceParams {
  url: string;
  /** Pool size for this process (the DataSource's pool; the raw pg pool gets as many). */
  poolSize?: number;
  applicationName?: string;
}

/** node-postgres settings shared by the DataSource's pool and this process's raw pool (createPgPool). */
export function pgPoolConfig(p: DataSourceParams): PoolConfig {
  return { max: p.poolSize ?? 10, application_name: p.applicationName ?? 'tandem', connectionTimeoutMillis: 5_000 };
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
    extra: pgPoolConfig(p),
  };
}
