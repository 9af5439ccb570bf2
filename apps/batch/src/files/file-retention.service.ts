import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { BlobStores } from '@tandem/persistence';
import { FileRepository } from './file.repository';
import { UPLOAD_GRACE_MS } from './file.service';

/** How often each process sweeps; expiry is coarse (days), so a minute late is fine. */
export const FILE_SWEEP_MS = 60_000;
const SWEEP_BATCH = 100;

/**
 * Deletes expired files (BATCH_RETENTION_DAYS, or the upload's expires_after) and uploads
 * abandoned past their grace: bytes first, then rows, in batches. Every API process runs it:
 * rows are claimed with SKIP LOCKED, so concurrent sweepers split the work and never delete a
 * file twice. Also removes the disk store's leftovers of interrupted puts.
 */
@Injectable()
export class FileRetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('FileRetention');
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly files: FileRepository,
    @Inject(BlobStores) private readonly blobs: BlobStores,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.sweep(), FILE_SWEEP_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass; returns how many files it deleted. */
  async sweep(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let deleted = 0;
    try {
      for (;;) {
        // Only files in stores this process reaches: another node's disk files are that node's to sweep.
        const n = await this.files.sweepExpired(SWEEP_BATCH, this.blobs.reachable, async (r) => {
          await this.blobs.of(r.blobStore).delete(r.blobKey);
        });
        deleted += n;
        if (n < SWEEP_BATCH) break;
      }
      if (deleted > 0) this.logger.log({ deleted }, `deleted ${deleted} expired file(s)`);
      if (this.blobs.reachable.includes('disk')) await this.blobs.of('disk').sweepPartials(UPLOAD_GRACE_MS);
    } catch (e) {
      this.logger.error({ err: e }, `file sweep failed: ${(e as Error).message}`);
    } finally {
      this.running = false;
    }
    return deleted;
  }
}
