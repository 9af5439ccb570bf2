import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Worker, type Job } from 'bullmq';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { BATCH_CHUNK_QUEUE, JOB_NAMES, parseChunkJob, parseFinalizeJob, type ChunkJobData, type FinalizeJobData } from '../jobs/job-catalogue';
import { FileBatchFinalizer } from '../file-batches/file-batch.finalizer';
import { resolveQueueConnection } from '@tandem/queue';
import { ChunkRunner, type ChunkRunResult } from './chunk-runner.service';

/**
 * The BullMQ worker for chunk jobs (raw bullmq: its concurrency, lock and stall settings come
 * from config at boot). Only started when BATCH_ROLE is `worker` or `all`.
 */
@Injectable()
export class ChunkWorkerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ChunkWorker');
  private worker?: Worker<ChunkJobData | FinalizeJobData, ChunkRunResult | 'finalized'>;

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly runner: ChunkRunner,
    private readonly finalizer: FileBatchFinalizer,
  ) {}

  onApplicationBootstrap(): void {
    const { connection, prefix } = resolveQueueConnection(this.cfg.queue);
    const j = this.cfg.jobs;
    this.worker = new Worker<ChunkJobData | FinalizeJobData, ChunkRunResult | 'finalized'>(BATCH_CHUNK_QUEUE, (job) => this.process(job), {
      connection,
      prefix,
      concurrency: j.concurrency,
      lockDuration: j.lockMs,
      stalledInterval: j.stalledIntervalMs,
      // A chunk whose worker died is picked up again; the reconciler covers anything beyond this.
      maxStalledCount: 10,
    });
    this.worker.on('error', (e) => this.logger.error({ err: e }, `chunk worker error: ${e.message}`));
    this.logger.log(`chunk worker started (concurrency ${j.concurrency})`);
  }

  private async process(job: Job<ChunkJobData | FinalizeJobData, ChunkRunResult | 'finalized'>): Promise<ChunkRunResult | 'finalized'> {
    if (job.name === JOB_NAMES.finalize) {
      await this.finalizer.finalize(parseFinalizeJob(job.data).batchId);
      return 'finalized';
    }
    const { batchId, chunk } = parseChunkJob(job.name, job.data);
    const maxAttempts = job.opts.attempts ?? 1;
    return this.runner.run(batchId, chunk, job.attemptsMade + 1, maxAttempts);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }
}
