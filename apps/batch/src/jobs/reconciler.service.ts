import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { BatchRepository } from '../batches/batch.repository';
import { ChunkRepository } from '../batches/chunk.repository';
import { ChunkQueueService } from './chunk-queue.service';
import { ReducerRegistry } from '../reducers/reducer.registry';
import { fanInOf } from './fan-in';

/**
 * Postgres is the truth: batches that made no progress for a reconcile period get every chunk
 * Postgres says is pending, but whose job the queue store lost (restart, flush), enqueued again.
 * A lost chunk that already started `maxAttempts` times (its worker process died each time: a
 * poison chunk) is dead-lettered instead, so it cannot crash workers forever.
 * Safe to run in several processes at once: job ids dedupe, and chunk settles are idempotent.
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
    private readonly reducers: ReducerRegistry,
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
        const exhausted = new Set(lost.length > 0 ? await this.chunks.exhaustedIdxs(b.id) : []);
        for (const idx of lost.filter((i) => exhausted.has(i))) {
          const msg = `no attempt left: ${b.maxAttempts} attempt(s) started and the last ended without an answer (its worker process exited)`;
          const out = await this.chunks.deadLetter(b.id, idx, b.maxAttempts, msg, fanInOf(this.reducers, b.reducer));
          if (out.counted) this.logger.warn({ batch: b.id, chunk: idx, attempts: b.maxAttempts }, 'dead-lettered a chunk whose worker died on every attempt');
        }
        const retry = lost.filter((i) => !exhausted.has(i));
        if (retry.length > 0) {
          await this.queue.enqueue(b, retry);
          requeued += retry.length;
          this.logger.warn({ batch: b.id, chunks: retry.length }, 're-enqueued chunks the queue store lost');
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
