import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module, type Provider, type Type } from '@nestjs/common';
import { ROOT_LOGGER, type PinoLogger } from '@tandem/shared';
import { BatchControlService } from './batches/batch-control.service';
import { BatchController } from './batches/batch.controller';
import { BatchQueryService } from './batches/batch-query.service';
import { BatchRepository } from './batches/batch.repository';
import { BatchSubmissionService } from './batches/batch-submission.service';
import { ChunkRepository } from './batches/chunk.repository';
import { NdjsonBodyRegistrar } from './batches/ndjson-body.registrar';
import { BATCH_CONFIG, type BatchConfig } from './config/batch.config';
import { ChunkQueueService } from './jobs/chunk-queue.service';
import { resolveQueueConnection } from '@tandem/queue';
import { assertJobCatalogue, BATCH_CHUNK_QUEUE } from './jobs/job-catalogue';
import { ReconcilerService } from './jobs/reconciler.service';
import { BatchMetrics } from './metrics/batch.metrics';
import { INFER_TASK, InferTask } from './tasks/infer.task';
import { ReducerRegistry } from './reducers/reducer.registry';
import { TaskRegistry } from './tasks/task.registry';
import { USER_CODE, type UserCode } from './user-tasks/user-code';
import { ChunkRunner, TASK_LOGGER } from './worker/chunk-runner.service';
import { ChunkWorkerService } from './worker/chunk-worker.service';
import { batchCapacityProviders } from './worker/batch-capacity.providers';
import { Pool } from 'pg';
import { BlobStores } from '@tandem/persistence';
import { FileRepository } from './files/file.repository';
import { FileBatchRepository } from './file-batches/file-batch.repository';
import { FileBatchService } from './file-batches/file-batch.service';
import { FileBatchSweeper } from './file-batches/file-batch.sweeper';
import { FileBatchFinalizer } from './file-batches/file-batch.finalizer';
import { FileChunkProcessor } from './file-batches/file-chunk.processor';
import { FileInferRunner } from './file-batches/file-infer.runner';
import { UsageRepository } from './accounting/usage.repository';
import { DeadlineAdmission } from './accounting/deadline-admission';
import { RunAccounting } from './worker/run-accounting';

/** What startBatch prepared before Nest starts: the user's code (loaded async, may refuse boot) and the app's logger. */
export interface BatchRuntime {
  userCode: UserCode;
  logger: PinoLogger;
}

/**
 * Batch chords: the /v1/batches API (role api|all), the chunk workers (role worker|all), the
 * reconciler (every role). Expects the global DataSource and BullModule.forRoot.
 */
@Module({})
export class BatchJobsModule {
  static forRoot(cfg: BatchConfig, runtime: BatchRuntime): DynamicModule {
    assertJobCatalogue();
    const role = cfg.jobs.role;
    const controllers: Type[] = [];
    const providers: Provider[] = [
      { provide: BATCH_CONFIG, useValue: cfg },
      BatchRepository,
      ChunkRepository,
      ChunkQueueService,
      ReconcilerService,
      BatchMetrics,
      { provide: USER_CODE, useValue: runtime.userCode },
      { provide: ROOT_LOGGER, useValue: runtime.logger },
      { provide: TASK_LOGGER, useValue: runtime.logger.child({ context: 'task' }) },
      TaskRegistry,
      ReducerRegistry,
      { provide: INFER_TASK, useClass: InferTask },
      ...batchCapacityProviders(cfg),
      // Batches over files (issue 15): every role reads blobs and sweeps expiry/lost finalize jobs.
      { provide: BlobStores, inject: [Pool], useFactory: (pool: Pool) => BlobStores.create(pool, { kind: cfg.files.blobStore, dir: cfg.files.blobDir }) },
      FileBatchRepository,
      FileBatchSweeper,
      UsageRepository,
    ];
    if (role !== 'worker') {
      controllers.push(BatchController);
      providers.push(BatchSubmissionService, BatchQueryService, BatchControlService, NdjsonBodyRegistrar, FileRepository, FileBatchService, DeadlineAdmission);
    }
    if (role !== 'api') providers.push(ChunkRunner, ChunkWorkerService, FileInferRunner, FileChunkProcessor, FileBatchFinalizer, RunAccounting);
    return {
      module: BatchJobsModule,
      imports: [BullModule.registerQueue({ name: BATCH_CHUNK_QUEUE, ...resolveQueueConnection(cfg.queue) })],
      controllers,
      providers,
    };
  }
}
