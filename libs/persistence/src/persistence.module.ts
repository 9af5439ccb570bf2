import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ReadinessCheck } from '@tandem/shared';
import { AuditLogRepository } from './audit/audit-log.repository';
import { buildDataSourceOptions, type DataSourceParams } from './data-source.options';

@Injectable()
export class PostgresReadiness implements ReadinessCheck {
  readonly name = 'postgres';
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}
  async check(): Promise<void> {
    await this.ds.query('SELECT 1');
  }
}

@Injectable()
class DataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}
  async onApplicationShutdown(): Promise<void> {
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}

/** Provides the initialized DataSource; only repositories inject it. */
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
        PostgresReadiness,
        DataSourceCloser,
        AuditLogRepository,
      ],
      exports: [DataSource, PostgresReadiness, AuditLogRepository],
    };
  }
}
