import { DynamicModule, Module } from '@nestjs/common';
import { HealthModule, MetricsModule } from '@tandem/shared';
import { SchedulerModule } from '@tandem/scheduler';
import { PersistenceModule, PostgresReadiness } from '@tandem/persistence';
import { QueueModule, QueueReadiness } from '@tandem/queue';
import { AuthModule } from '@tandem/auth';
import { BATCH_CONFIG, type BatchConfig } from './config/batch.config';
import { BatchJobsModule, type BatchRuntime } from './batch-jobs.module';
import { FilesModule } from './files/files.module';
import { usesLedger } from './worker/batch-capacity.providers';

@Module({})
export class BatchModule {
  static forRoot(cfg: BatchConfig, runtime: BatchRuntime): DynamicModule {
    return {
      module: BatchModule,
      imports: [
        PersistenceModule.forRoot({ url: cfg.databaseUrl, applicationName: 'tandem-batch' }),
        QueueModule.forRoot(cfg.queue),
        AuthModule.forRoot(cfg.auth),
        HealthModule.register([PostgresReadiness, QueueReadiness]),
        MetricsModule,
        // Co-location: workers take their infer units from the device ledger.
        ...(usesLedger(cfg) ? [SchedulerModule.forRoot({ options: cfg.scheduler, logger: runtime.logger.child({ component: 'scheduler' }) })] : []),
        BatchJobsModule.forRoot(cfg, runtime),
        // The Files API, beside /v1/batches (API roles only).
        ...(cfg.jobs.role !== 'worker' ? [FilesModule.forRoot(cfg)] : []),
      ],
      providers: [{ provide: BATCH_CONFIG, useValue: cfg }],
      exports: [BATCH_CONFIG],
    };
  }
}
