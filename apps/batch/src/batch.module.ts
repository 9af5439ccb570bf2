import { DynamicModule, Module } from '@nestjs/common';
import { HealthModule } from '@tandem/shared';
import { PersistenceModule, PostgresReadiness } from '@tandem/persistence';
import { QueueModule, QueueReadiness } from '@tandem/queue';
import { AuthModule } from '@tandem/auth';
import { BATCH_CONFIG, type BatchConfig } from './config/batch.config';
import { BatchJobsModule } from './batch-jobs.module';

@Module({})
export class BatchModule {
  static forRoot(cfg: BatchConfig): DynamicModule {
    return {
      module: BatchModule,
      imports: [
        PersistenceModule.forRoot({ url: cfg.databaseUrl, applicationName: 'tandem-batch' }),
        QueueModule.forRoot(cfg.queue),
        AuthModule.forRoot(cfg.auth),
        HealthModule.register([PostgresReadiness, QueueReadiness]),
        BatchJobsModule.forRoot(cfg),
      ],
      providers: [{ provide: BATCH_CONFIG, useValue: cfg }],
      exports: [BATCH_CONFIG],
    };
  }
}
