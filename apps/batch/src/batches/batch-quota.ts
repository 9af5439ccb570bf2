import { DomainException, ErrorCode } from '@tandem/shared';
import type { BatchQuotas } from '../config/batch.config';
import type { OwnerUsage } from './batch.types';

/**
 * What one submission may still add for its key, from the key's usage when it started. Open
 * batches and queued items are a 429 (they free up as work finishes); stored bytes a 413 (they
 * free up only when the key deletes finished batches).
 */
export class QuotaAllowance {
  private constructor(
    private readonly quotas: BatchQuotas,
    private readonly usage: OwnerUsage,
  ) {}

  /** Throws when the key may not open another batch at all. */
  static admit(quotas: BatchQuotas, usage: OwnerUsage): QuotaAllowance {
    const { concurrentBatches: maxOpen, storedBytes: maxBytes } = quotas;
    if (maxOpen > 0 && usage.openBatches >= maxOpen) {
      throw new DomainException(
        ErrorCode.RateLimited,
        `quota exceeded: this key already has ${usage.openBatches} open batches (queued, running or paused; at most ${maxOpen}); wait for one to finish or cancel one`,
        { retryAfterS: 5 },
      );
    }
    if (maxBytes > 0 && usage.storedBytes >= maxBytes) throw storedTooLarge(usage.storedBytes, maxBytes);
    return new QuotaAllowance(quotas, usage);
  }

  /** Throws once the new batch's item count would take the key over its queued items. */
  checkItems(items: number): void {
    const max = this.quotas.queuedItems;
    if (max > 0 && this.usage.queuedItems + items > max) {
      throw new DomainException(
        ErrorCode.RateLimited,
        `quota exceeded: at most ${max} queued items per key (${this.usage.queuedItems} already queued, this batch has more than ${max - this.usage.queuedItems}); wait for batches to finish`,
        { retryAfterS: 5 },
      );
    }
  }

  /** Throws once the new batch's stored bytes would take the key over its storage quota. */
  checkBytes(bytes: number): void {
    const max = this.quotas.storedBytes;
    if (max > 0 && this.usage.storedBytes + bytes > max) throw storedTooLarge(this.usage.storedBytes + bytes, max);
  }
}

function storedTooLarge(bytes: number, max: number): DomainException {
  return new DomainException(
    ErrorCode.PayloadTooLarge,
    `quota exceeded: this key would store ${bytes} bytes of batch data (at most ${max}); delete finished batches (DELETE /v1/batches/<id>) to free space`,
  );
}

/** No quotas at all (admins, or every quota 0): nothing to check, no per-key lock needed. */
export function quotasApply(quotas: BatchQuotas, admin: boolean): boolean {
  return !admin && (quotas.concurrentBatches > 0 || quotas.queuedItems > 0 || quotas.storedBytes > 0);
}

/**
 * Files count towards `BATCH_QUOTA_STORED_MB` with the batches' items and outputs: 413 when this
 * key's stored bytes plus `bytes` would pass it. Checked before an upload, as its bytes arrive,
 * and again under the owner's lock when it becomes visible (concurrent uploads cannot overrun it).
 */
export function checkFileStorage(quotas: BatchQuotas, usage: OwnerUsage, bytes: number): void {
  const max = quotas.storedBytes;
  if (max > 0 && usage.storedBytes + bytes > max) {
    throw new DomainException(
      ErrorCode.PayloadTooLarge,
      `quota exceeded: this key's files and batch data would take more than ${max} bytes (${usage.storedBytes} stored already); delete files (DELETE /v1/files/<id>) or finished batches (DELETE /v1/batches/<id>) to free space`,
    );
  }
}

/** Counts an upload's bytes as they pass, throwing the storage 413 as soon as `room` is exceeded. */
export async function* withinStorage(data: AsyncIterable<Buffer>, quotas: BatchQuotas, usage: OwnerUsage): AsyncGenerator<Buffer> {
  let bytes = 0;
  for await (const c of data) {
    bytes += c.length;
    checkFileStorage(quotas, usage, bytes);
    yield c;
  }
}
