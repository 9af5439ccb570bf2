import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { BatchRepository } from '../batches/batch.repository';
import { ChunkRepository } from '../batches/chunk.repository';
import { ChunkQueueService } from './chunk-queue.service';

/**
 * Postgres is the truth: batches that made no progress for a reconcile period get every chunk
 * Postgres says is pending, but whose job the queue store lost (restart, flush), enqueued again.
 * Safe to run in several processes at once: job ids dedupe, and chunk commits are idempotent.
 */
@Injectable()
export class ReconcilerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('BatchReconciler');
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly batches: BatchRepository,
    private readonly chunks: ChunkRepository,
    private readonly queue: ChunkQueueService,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), this.cfg.jobs.reconcileMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass; returns how many chunks were re-enqueued. */
  async tick(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let requeued = 0;
    try {
      for (const b of await this.batches.idleActive(this.cfg.jobs.reconcileMs)) {
        const pending = await this.chunks.pendingIdxs(b.id);
        const lost = await this.queue.missing(b.id, pending);
        if (lost.length > 0) {
          await this.queue.enqueue(b, lost);
          requeued += lost.length;
          this.logger.warn({ batch: b.id, chunks: lost.length }, 're-enqueued chunks the queue store lost');
        }
        await this.batches.touch(b.id);
      }
    } catch (e) {
      this.logger.error({ err: e }, `reconcile pass failed: ${(e as Error).message}`);
    } finally {
      this.running = false;
    }
    return requeued;
  }
}
