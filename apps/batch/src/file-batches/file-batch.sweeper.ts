import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { ChunkQueueService } from '../jobs/chunk-queue.service';
import { FileBatchRepository } from './file-batch.repository';

/**
 * Every process, every second (at most the reconcile period): file batches past `expires_at`
 * stop (pending chunks cancelled) and go to the finalizer as `expiring`; batches waiting for the
 * finalizer with no progress get its job again (the queue store may have lost it). Safe on many
 * processes: `stop` is one conditional transaction and the finalize job id dedupes.
 */
@Injectable()
export class FileBatchSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('FileBatchSweeper');
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly repo: FileBatchRepository,
    private readonly queue: ChunkQueueService,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), Math.min(1_000, this.cfg.jobs.reconcileMs));
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const id of await this.repo.dueForExpiry()) {
        if (await this.repo.stop(id, 'expiring')) {
          this.logger.log(`file batch ${id} passed its completion window: expiring`);
          await this.queue.enqueueFinalize(id);
        }
      }
      for (const id of await this.repo.idleFinalizing(this.cfg.jobs.reconcileMs)) {
        await this.queue.enqueueFinalize(id);
        await this.repo.touch(id);
      }
    } catch (e) {
      this.logger.error({ err: e }, `file batch sweep failed: ${(e as Error).message}`);
    } finally {
      this.running = false;
    }
  }
}
