import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import type { ReadinessCheck } from '@tandem/shared';
import { AuditLogRepository } from './audit/audit-log.repository';
import { buildDataSourceOptions, type DataSourceParams } from './data-source.options';
import { createPgPool } from './pg-pool';

@Injectable()
export class PostgresReadiness implements ReadinessCheck {
  readonly name = 'postgres';
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}
  async check(): Promise<void> {
    await this.ds.query('SELECT 1');
  }
}

@Injectable()
class DatabaseCloser implements OnApplicationShutdown {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(Pool) private readonly pool: Pool,
  ) {}
  async onApplicationShutdown(): Promise<void> {
    if (this.ds.isInitialized) await this.ds.destroy();
    if (!this.pool.ended) await this.pool.end();
  }
}

/**
 * Provides the initialized DataSource and this process's raw node-postgres `Pool` (injected by
 * its class, for the paths that bypass TypeORM: see createPgPool); only repositories inject them.
 */
@Global()
@Module({})
export class PersistenceModule {
  static forRoot(params: DataSourceParams): DynamicModule {
    return {
      module: PersistenceModule,
      providers: [
        {
          provide: DataSource,
          useFactory: async () => new DataSource(buildDataSourceOptions(params)).initialize(),
        },
        { provide: Pool, useFactory: () => createPgPool(params) },
        PostgresReadiness,
        DatabaseCloser,
        AuditLogRepository,
      ],
      exports: [DataSource, Pool, PostgresReadiness, AuditLogRepository],
    };
  }
}
