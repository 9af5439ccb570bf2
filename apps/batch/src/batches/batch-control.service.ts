import { Injectable } from '@nestjs/common';
import { BlobStores } from '@tandem/persistence';
import { DomainException, ErrorCode } from '@tandem/shared';
import { FileBatchRepository } from '../file-batches/file-batch.repository';
import { ChunkQueueService } from '../jobs/chunk-queue.service';
import { BatchRepository } from './batch.repository';
import { ChunkRepository } from './chunk.repository';
import type { BatchRow, Tenant } from './batch.types';
import { toView, type BatchView } from './batch.view';

/**
 * cancel / pause / resume / delete. Postgres state decides; queue removal is only an
 * optimization. Each verb first checks the tenant may see the batch (else 404, as for no batch).
 */
@Injectable()
export class BatchControlService {
  constructor(
    private readonly batches: BatchRepository,
    private readonly chunks: ChunkRepository,
    private readonly queue: ChunkQueueService,
    private readonly fileBatches: FileBatchRepository,
    private readonly blobs: BlobStores,
  ) {}

  async cancel(id: string, tenant: Tenant): Promise<BatchView> {
    this.chordOnly(await this.visible(id, tenant), 'cancel');
    const pending = await this.chunks.pendingIdxs(id);
    const b = await this.batches.cancel(id);
    if (!b) return this.conflict(id, 'cancel');
    // Waiting jobs are dropped; running ones see the state within a poll and abort.
    await this.queue.remove(id, pending).catch(() => undefined);
    return toView(b);
  }

  async pause(id: string, tenant: Tenant): Promise<BatchView> {
    this.chordOnly(await this.visible(id, tenant), 'pause');
    const b = await this.batches.transition(id, ['queued', 'running'], 'paused');
    if (!b) return this.conflict(id, 'pause');
    await this.queue.remove(id, await this.chunks.pendingIdxs(id)).catch(() => undefined);
    return toView(b);
  }

  async resume(id: string, tenant: Tenant): Promise<BatchView> {
    const cur = await this.visible(id, tenant);
    this.chordOnly(cur, 'resume');
    const b = await this.batches.transition(id, ['paused'], cur.startedAt ? 'running' : 'queued');
    if (!b) return this.conflict(id, 'resume');
    await this.queue.enqueue(b, await this.chunks.pendingIdxs(id));
    return toView(b);
  }

  /**
   * Deletes a finished batch with its items and outputs (frees the owner's stored-bytes quota);
   * a file batch's output and error files and any part blobs go with it (its input file stays);
   * an NDJSON chord's items blob too.
   */
  async remove(id: string, tenant: Tenant): Promise<void> {
    const b = await this.visible(id, tenant);
    const deleted =
      b.kind === 'file'
        ? await this.fileBatches.deleteFinished(id, async (blob) => {
            await this.blobs.of(blob.store).delete(blob.key);
          })
        : await this.batches.deleteFinished(id, async (blob) => {
            await this.blobs.of(blob.store).delete(blob.key);
          });
    if (!deleted) await this.conflict(id, 'delete');
  }

  private async visible(id: string, tenant: Tenant): Promise<BatchRow> {
    const b = await this.batches.get(id, tenant);
    if (!b || b.state === 'submitting') throw DomainException.notFound(`batch ${id} not found`);
    return b;
  }

  /** pause/resume/cancel are the chord API's; a file batch is cancelled as `batch_…` (OpenAI's cancel, which finalizes it). */
  private chordOnly(b: BatchRow, verb: string): void {
    if (b.kind === 'file')
      throw new DomainException(ErrorCode.Conflict, `cannot ${verb} a file batch by its uuid; use /v1/batches/batch_${b.id.replace(/-/g, '')}/cancel`);
  }

  private async conflict(id: string, verb: string): Promise<never> {
    const b = await this.batches.get(id);
    if (!b || b.state === 'submitting') throw DomainException.notFound(`batch ${id} not found`);
    throw new DomainException(ErrorCode.Conflict, `cannot ${verb} a batch that is ${b.state}`);
  }
}
