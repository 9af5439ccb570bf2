import { randomBytes, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BlobStores } from '@tandem/persistence';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { DomainException, ErrorCode } from '@tandem/shared';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { ChunkQueueService } from '../jobs/chunk-queue.service';
import { ReducerRegistry } from '../reducers/reducer.registry';
import { INFER_TASK, type InferTaskProvider } from '../tasks/infer.task';
import { TaskRegistry } from '../tasks/task.registry';
import type { BatchTask } from '../tasks/batch-task';
import { BatchRepository, type BatchSubmissionTx } from './batch.repository';
import type { SubmitOptions } from './batch.dto';
import type { BatchRow, NewBatch, OwnerUsage, Tenant } from './batch.types';
import type { BlobStoreKind } from '@tandem/persistence';
import { QuotaAllowance, quotasApply } from './batch-quota';
import type { NdjsonLimits } from './ndjson';
import { RangeScanner } from './ndjson-ranges';

/**
 * Items arrive as an array (inline JSON, already in memory: stored in the chunk rows), as parsed
 * lines (kept for callers that have items), or as a raw NDJSON stream: validated line by line as
 * it passes into the blob store, chunks recorded as byte ranges (never held by this process).
 */
export type ItemSource =
  | { kind: 'array'; items: readonly unknown[] }
  | { kind: 'lines'; lines: AsyncIterable<{ item: unknown; line: number }> }
  | { kind: 'ndjson'; stream: Readable; limits: NdjsonLimits };

/** Closed ranges are written to Postgres this many at a time (offsets only: a few bytes each). */
const FLUSH_RANGES = 500;

/** Chunks are written to Postgres every this many items or (estimated) bytes, so an upload is never held whole. */
const FLUSH_ITEMS = 50_000;
const FLUSH_BYTES = 16 * 1024 * 1024;

/** A cheap size estimate (no serialization): big base64 inputs must not pile up 50k deep. */
function approxBytes(item: unknown): number {
  if (typeof item === 'string') return item.length + 2;
  if (Array.isArray(item)) return item.length * 8;
  if (typeof item === 'object' && item !== null) {
    let n = 2;
    for (const v of Object.values(item)) n += typeof v === 'string' ? v.length + 8 : 16;
    return n;
  }
  return 8;
}

/** Validates a submission, writes batch + chunks in one transaction, then enqueues the chunks in bulk. */
@Injectable()
export class BatchSubmissionService {
  private readonly logger = new Logger('BatchSubmission');

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly repo: BatchRepository,
    private readonly tasks: TaskRegistry,
    private readonly reducers: ReducerRegistry,
    @Inject(INFER_TASK) private readonly infer: InferTaskProvider,
    private readonly queue: ChunkQueueService,
    private readonly blobs: BlobStores,
  ) {}

  /**
   * Returns the batch and whether this call created it (false: an idempotent replay). The batch
   * belongs to `tenant`; its idempotency key is looked up among that tenant's batches only.
   */
  async submit(opts: SubmitOptions, source: ItemSource, tenant: Tenant): Promise<{ batch: BatchRow; created: boolean }> {
    const task = this.tasks.find(opts.task);
    if (!task) throw DomainException.invalid(this.tasks.whyMissing(opts.task));
    if (!this.reducers.find(opts.reducer)) throw DomainException.invalid(this.reducers.whyMissing(opts.reducer));
    if (task.needsModel) {
      const why = await this.infer.checkModel(opts.model ?? null);
      if (why) throw DomainException.invalid(why);
    } else if (opts.model) {
      throw DomainException.invalid(`task "${opts.task}" takes no model`);
    }
    const chunkSize = opts.chunkSize ?? this.cfg.jobs.defaultChunkSize;
    if (chunkSize < 1 || chunkSize > this.cfg.jobs.maxChunkSize) {
      throw DomainException.invalid(`chunkSize must be between 1 and ${this.cfg.jobs.maxChunkSize} (got ${chunkSize})`);
    }
    const key = opts.idempotencyKey ?? null;
    if (key) {
      const existing = await this.repo.findByIdempotencyKey(tenant.id, key);
      if (existing) return { batch: existing, created: false };
    }
    const nb: NewBatch = {
      id: randomUUID(),
      owner: tenant.id,
      idempotencyKey: key,
      task: task.name,
      model: opts.model ?? null,
      reducer: opts.reducer,
      chunkSize,
      priority: opts.priority ?? 50,
      mayBorrow: opts.borrow ?? true,
      failurePolicy: opts.failurePolicy ?? 'fail',
      maxAttempts: opts.maxAttempts ?? this.cfg.jobs.maxAttempts,
    };
    // Quotas are checked against the key's usage inside the submission's transaction (see BatchRepository.submit).
    const quotas = this.cfg.jobs.quotas;
    let allowance: QuotaAllowance | null = null;
    const admit = quotasApply(quotas, tenant.admin)
      ? (u: OwnerUsage): void => {
          allowance = QuotaAllowance.admit(quotas, u);
        }
      : undefined;
    let written: { store: BlobStoreKind; key: string } | null = null;
    let batch: BatchRow | null;
    try {
      batch = await this.repo.submit(
        nb,
        async (tx) => {
          if (source.kind !== 'ndjson') return this.fill(tx, task, nb.model, chunkSize, source, allowance);
          written = await this.fillBlob(tx, nb.id, task, nb.model, chunkSize, source, allowance);
        },
        admit,
      );
    } catch (e) {
      // The blob was complete but the transaction naming it did not commit: nothing refers to it.
      const w = written as { store: BlobStoreKind; key: string } | null;
      if (w)
        await this.blobs
          .of(w.store)
          .delete(w.key)
          .catch(() => undefined);
      throw e;
    }
    if (!batch) {
      // Lost an idempotency race to a concurrent identical submission.
      const winner = key ? await this.repo.findByIdempotencyKey(tenant.id, key) : null;
      if (!winner) throw DomainException.unavailable('concurrent submission with this idempotency key is still in progress');
      return { batch: winner, created: false };
    }
    const idxs = Array.from({ length: batch.chunkCount }, (_, i) => i);
    try {
      await this.queue.enqueue(batch, idxs);
    } catch (e) {
      // Postgres already says `queued`; the reconciler enqueues it once the queue store is back.
      this.logger.error({ err: e, batch: batch.id }, `enqueue failed; left to the reconciler: ${(e as Error).message}`);
    }
    return { batch, created: true };
  }

  /**
   * An NDJSON upload: its bytes stream into a new blob of the primary store while RangeScanner
   * validates every line (the task's validateItem, the item limit and quotas as items arrive) and
   * cuts byte ranges of `chunkSize` items, written to Postgres as they close. Any error abandons
   * the blob's put (nothing is left) and rolls the transaction back.
   */
  private async fillBlob(
    tx: BatchSubmissionTx,
    batchId: string,
    task: BatchTask,
    model: string | null,
    chunkSize: number,
    source: Extract<ItemSource, { kind: 'ndjson' }>,
    quota: QuotaAllowance | null,
  ): Promise<{ store: BlobStoreKind; key: string }> {
    const max = this.cfg.jobs.maxItems;
    let count = 0;
    const scanner = new RangeScanner(source.limits, {
      chunkSize,
      flushEvery: FLUSH_RANGES,
      accept: (item, line) => {
        const why = task.validateItem(item, model);
        if (why) throw DomainException.invalid(`line ${line}: ${why}`);
        if (++count > max) throw new DomainException(ErrorCode.PayloadTooLarge, `too many items: at most ${max} per batch`);
        if (quota && count % 1024 === 0) quota.checkItems(count);
      },
      flush: (ranges) => tx.addRanges(ranges),
      bytes: quota ? (n) => quota.checkBytes(n) : undefined,
    });
    const store = this.blobs.primary;
    const key = `items-${batchId.replace(/-/g, '')}-${randomBytes(4).toString('hex')}`;
    const info = await store.put(key, scanner.pass(source.stream));
    try {
      quota?.checkItems(count);
      if (count === 0) throw DomainException.invalid('empty batch: at least one item is required');
      await tx.setItemsBlob(store.kind, key, info.size);
    } catch (e) {
      await store.delete(key).catch(() => undefined);
      throw e;
    }
    return { store: store.kind, key };
  }

  private async fill(
    tx: BatchSubmissionTx,
    task: BatchTask,
    model: string | null,
    chunkSize: number,
    source: Exclude<ItemSource, { kind: 'ndjson' }>,
    quota: QuotaAllowance | null,
  ): Promise<void> {
    const max = this.cfg.jobs.maxItems;
    const tooMany = (): DomainException => new DomainException(ErrorCode.PayloadTooLarge, `too many items: at most ${max} per batch`);
    let pending: unknown[][] = [];
    let current: unknown[] = [];
    let count = 0;
    let buffered = 0;
    let bytes = 0;
    /** Synchronous per item (1M awaits would cost more than the work); true when a flush is due. */
    const accept = (item: unknown, where: () => string): boolean => {
      const why = task.validateItem(item, model);
      if (why) throw DomainException.invalid(`${where()}: ${why}`);
      if (++count > max) throw tooMany();
      quota?.checkItems(count);
      current.push(item);
      if (typeof item === 'object') bytes += approxBytes(item);
      if (current.length < chunkSize) return false;
      pending.push(current);
      buffered += current.length;
      current = [];
      return buffered >= FLUSH_ITEMS || bytes >= FLUSH_BYTES;
    };
    const flush = async (): Promise<void> => {
      const out = pending;
      pending = [];
      buffered = 0;
      bytes = 0;
      await tx.addChunks(out);
      quota?.checkBytes(tx.counts.bytes);
    };
    if (source.kind === 'array') {
      if (source.items.length > max) throw tooMany();
      quota?.checkItems(source.items.length);
      for (let i = 0; i < source.items.length; i++) if (accept(source.items[i], () => `items[${i}]`)) await flush();
    } else {
      for await (const { item, line } of source.lines) if (accept(item, () => `line ${line}`)) await flush();
    }
    if (current.length > 0) pending.push(current);
    if (count === 0) throw DomainException.invalid('empty batch: at least one item is required');
    await flush();
  }
}
