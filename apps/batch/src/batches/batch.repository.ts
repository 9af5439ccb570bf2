import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import type { BatchState, BlobStoreKind } from '@tandem/persistence';
import type { BatchEstimate, BatchRow, NewBatch, OwnerUsage, Tenant } from './batch.types';
import { lockOwnerUsage } from './owner-usage';

export const BATCH_COLUMNS = `id, seq, kind, owner, stored_bytes, idempotency_key, task, model, reducer, chunk_size, priority, may_borrow, failure_policy, max_attempts,
  state, item_count, chunk_count, chunks_done, chunks_failed, items_done, items_failed, result, error,
  created_at, started_at, finished_at, device_owned_s, device_borrowed_s, estimate`;

type Raw = Record<string, unknown>;

export function toBatchRow(r: Raw): BatchRow {
  return {
    id: r.id as string,
    seq: Number(r.seq),
    kind: r.kind === 'file' ? 'file' : 'chord',
    owner: (r.owner as string | null) ?? null,
    idempotencyKey: (r.idempotency_key as string | null) ?? null,
    task: r.task as string,
    model: (r.model as string | null) ?? null,
    reducer: r.reducer as string,
    chunkSize: Number(r.chunk_size),
    priority: Number(r.priority),
    mayBorrow: r.may_borrow !== false,
    failurePolicy: r.failure_policy === 'continue' ? 'continue' : 'fail',
    maxAttempts: Number(r.max_attempts),
    state: r.state as BatchState,
    itemCount: Number(r.item_count),
    chunkCount: Number(r.chunk_count),
    chunksDone: Number(r.chunks_done),
    chunksFailed: Number(r.chunks_failed),
    itemsDone: Number(r.items_done),
    itemsFailed: Number(r.items_failed),
    result: r.result ?? null,
    error: (r.error as string | null) ?? null,
    createdAt: r.created_at as Date,
    startedAt: (r.started_at as Date | null) ?? null,
    finishedAt: (r.finished_at as Date | null) ?? null,
    storedBytes: Number(r.stored_bytes),
    deviceSeconds: { owned: Number(r.device_owned_s ?? 0), borrowed: Number(r.device_borrowed_s ?? 0) },
    estimate: (r.estimate as BatchEstimate | null) ?? null,
  };
}

/** `AND owner = $n` unless the tenant is an admin (who sees every batch). */
function ownerClause(t: Tenant | undefined, params: unknown[]): string {
  if (!t || t.admin) return '';
  params.push(t.id);
  return ` AND owner = $${params.length}`;
}

/**
 * A submission in progress: one transaction, so a bad item (or NDJSON line) found late rolls
 * back every chunk already written and nothing is ever enqueued for it.
 */
export class BatchSubmissionTx {
  private chunkCount = 0;
  private itemCount = 0;
  private byteCount = 0;
  constructor(
    private readonly qr: QueryRunner,
    private readonly batchId: string,
    private readonly chunkSize: number,
  ) {}

  /** Appends whole chunks (arrays of items) in one statement. */
  async addChunks(chunks: readonly unknown[][]): Promise<void> {
    if (chunks.length === 0) return;
    const json = JSON.stringify(chunks);
    await this.qr.query(
      `INSERT INTO batch_chunk (batch_id, idx, first_item, item_count, items)
       SELECT $1, $2 + e.ord - 1, ($2 + e.ord - 1)::bigint * $3, json_array_length(e.value), e.value
       FROM json_array_elements($4::json) WITH ORDINALITY AS e(value, ord)`,
      [this.batchId, this.chunkCount, this.chunkSize, json],
    );
    this.byteCount += Buffer.byteLength(json);
    this.chunkCount += chunks.length;
    for (const c of chunks) this.itemCount += c.length;
  }

  /**
   * Appends chunks that are byte ranges of the batch's items blob (offsets only; `items` is an
   * empty array), in one statement.
   */
  async addRanges(ranges: readonly { start: number; end: number; items: number }[]): Promise<void> {
    if (ranges.length === 0) return;
    await this.qr.query(
      `INSERT INTO batch_chunk (batch_id, idx, first_item, item_count, items, start_byte, end_byte)
       SELECT $1, $2 + r.ord - 1, ($2 + r.ord - 1)::bigint * $3, r.n, '[]'::json, r.s, r.e
       FROM unnest($4::bigint[], $5::bigint[], $6::int[]) WITH ORDINALITY AS r(s, e, n, ord)`,
      [this.batchId, this.chunkCount, this.chunkSize, ranges.map((r) => r.start), ranges.map((r) => r.end), ranges.map((r) => r.items)],
    );
    this.chunkCount += ranges.length;
    for (const r of ranges) this.itemCount += r.items;
  }

  /** Names the blob the ranges point into; its size is the batch's stored items bytes. */
  async setItemsBlob(store: string, key: string, bytes: number): Promise<void> {
    await this.qr.query(`UPDATE batch SET items_blob_store = $2, items_blob_key = $3 WHERE id = $1`, [this.batchId, store, key]);
    this.byteCount += bytes;
  }

  get counts(): { chunks: number; items: number; bytes: number } {
    return { chunks: this.chunkCount, items: this.itemCount, bytes: this.byteCount };
  }
}

/** Batch-level rows: create, read, list, state transitions. Chunk commits live in ChunkRepository. */
@Injectable()
export class BatchRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Idempotency keys are per owner: another key's identical key is a different batch. */
  async findByIdempotencyKey(owner: string, key: string): Promise<BatchRow | null> {
    const rows = (await this.ds.query(`SELECT ${BATCH_COLUMNS} FROM batch WHERE owner = $1 AND idempotency_key = $2`, [owner, key])) as Raw[];
    return rows[0] ? toBatchRow(rows[0]) : null;
  }

  /** The batch, or null when it does not exist or the tenant may not see it (callers answer 404 either way). */
  async get(id: string, tenant?: Tenant): Promise<BatchRow | null> {
    const params: unknown[] = [id];
    const rows = (await this.ds.query(`SELECT ${BATCH_COLUMNS} FROM batch WHERE id = $1${ownerClause(tenant, params)}`, params)) as Raw[];
    return rows[0] ? toBatchRow(rows[0]) : null;
  }

  /**
   * Runs `fill` inside one transaction that creates the batch; commits it as `queued` with its
   * counts, or rolls everything back if `fill` throws. Returns null when the idempotency key
   * was taken concurrently (the caller then returns the existing batch).
   *
   * With `admit`, the owner's submissions are serialized (a transaction-scoped advisory lock, so
   * across processes too) and `admit` sees the owner's usage first: quotas cannot be overrun by
   * submitting in parallel. A submission still holding the lock after a few seconds is a 429.
   */
  async submit(b: NewBatch, fill: (tx: BatchSubmissionTx) => Promise<void>, admit?: (usage: OwnerUsage) => void): Promise<BatchRow | null> {
    const qr = this.ds.createQueryRunner();
    await qr.connect();
    try {
      await qr.startTransaction();
      if (admit && b.owner !== null) admit(await this.lockOwner(qr, b.owner));
      const inserted = (await qr.query(
        `INSERT INTO batch (id, owner, idempotency_key, task, model, reducer, chunk_size, priority, may_borrow, failure_policy, max_attempts,
           state, item_count, chunk_count)
         VALUES ($1, $11, $2, $3, $4, $5, $6, $7, $10, $8, $9, 'submitting', 0, 0)
         ON CONFLICT (owner, idempotency_key) DO NOTHING RETURNING id`,
        [b.id, b.idempotencyKey, b.task, b.model, b.reducer, b.chunkSize, b.priority, b.failurePolicy, b.maxAttempts, b.mayBorrow, b.owner],
      )) as Raw[];
      if (inserted.length === 0) {
        await qr.rollbackTransaction();
        return null;
      }
      const tx = new BatchSubmissionTx(qr, b.id, b.chunkSize);
      await fill(tx);
      const { chunks, items, bytes } = tx.counts;
      const rows = (await qr.query(
        `UPDATE batch SET state = 'queued', item_count = $2, chunk_count = $3, stored_bytes = $4, progressed_at = now() WHERE id = $1 RETURNING ${BATCH_COLUMNS}`,
        [b.id, items, chunks, bytes],
      )) as [Raw[], number];
      await qr.commitTransaction();
      return toBatchRow(rows[0][0]);
    } catch (e) {
      if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
      throw e;
    } finally {
      await qr.release();
    }
  }

  private async lockOwner(qr: QueryRunner, owner: string): Promise<OwnerUsage> {
    return lockOwnerUsage(qr, owner);
  }

  /** Newest first; non-admin tenants see only their own batches. */
  async list(filter: { state?: BatchState; cursor?: number; limit: number }, tenant?: Tenant): Promise<BatchRow[]> {
    const params: unknown[] = [filter.limit];
    const where: string[] = [`state <> 'submitting'`];
    if (tenant && !tenant.admin) {
      params.push(tenant.id);
      where.push(`owner = $${params.length}`);
    }
    if (filter.state) {
      params.push(filter.state);
      where.push(`state = $${params.length}`);
    }
    if (filter.cursor !== undefined) {
      params.push(filter.cursor);
      where.push(`seq < $${params.length}`);
    }
    const rows = (await this.ds.query(`SELECT ${BATCH_COLUMNS} FROM batch WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT $1`, params)) as Raw[];
    return rows.map(toBatchRow);
  }

  /** Moves a batch from one of `from` to `to`; returns the row after, or null if it was in no such state. */
  async transition(id: string, from: readonly BatchState[], to: BatchState): Promise<BatchRow | null> {
    const rows = (await this.ds.query(
      `UPDATE batch SET state = $3, progressed_at = now(),
         finished_at = CASE WHEN $3 IN ('succeeded','failed','cancelled') THEN now() ELSE finished_at END
       WHERE id = $1 AND state = ANY($2::text[]) RETURNING ${BATCH_COLUMNS}`,
      [id, from, to],
    )) as [Raw[], number];
    return rows[0][0] ? toBatchRow(rows[0][0]) : null;
  }

  /**
   * Cancels: pending chunks first, then the batch (chunk-then-batch is the lock order every
   * chunk commit uses too, so cancel never deadlocks with a worker).
   */
  async cancel(id: string): Promise<BatchRow | null> {
    return this.ds.transaction(async (m) => {
      await m.query(`UPDATE batch_chunk SET state = 'cancelled', finished_at = now() WHERE batch_id = $1 AND state = 'pending'`, [id]);
      const rows = (await m.query(
        `UPDATE batch SET state = 'cancelled', finished_at = now(), progressed_at = now()
         WHERE id = $1 AND state IN ('queued','running','paused') RETURNING ${BATCH_COLUMNS}`,
        [id],
      )) as [Raw[], number];
      return rows[0][0] ? toBatchRow(rows[0][0]) : null;
    });
  }

  /**
   * Deletes a finished batch (its chunks cascade); false when it is not (or no longer) terminal.
   * An NDJSON chord's items blob is dropped inside the transaction: if that fails the row stays
   * and a retry deletes what is left (deleting a blob twice is fine).
   */
  async deleteFinished(id: string, dropBlob?: (blob: { store: BlobStoreKind; key: string }) => Promise<void>): Promise<boolean> {
    return this.ds.transaction(async (m) => {
      const [rows] = (await m.query(
        `DELETE FROM batch WHERE id = $1 AND state IN ('succeeded','failed','cancelled','expired') RETURNING items_blob_store, items_blob_key`,
        [id],
      )) as [Raw[], number];
      const r = rows[0];
      if (!r) return false;
      if (r.items_blob_key && dropBlob) await dropBlob({ store: r.items_blob_store as BlobStoreKind, key: r.items_blob_key as string });
      return true;
    });
  }

  /** Non-terminal, unpaused batches with no progress for `idleMs`: candidates for reconciling. */
  async idleActive(idleMs: number, limit = 100): Promise<BatchRow[]> {
    const rows = (await this.ds.query(
      `SELECT ${BATCH_COLUMNS} FROM batch WHERE state IN ('queued','running')
         AND progressed_at < now() - ($1::double precision * interval '1 millisecond')
       ORDER BY seq LIMIT $2`,
      [idleMs, limit],
    )) as Raw[];
    return rows.map(toBatchRow);
  }

  /** Marks that the reconciler looked, so an idle batch is not rescanned every tick. */
  async touch(id: string): Promise<void> {
    await this.ds.query(`UPDATE batch SET progressed_at = now() WHERE id = $1`, [id]);
  }

  async stateOf(id: string): Promise<BatchState | null> {
    const rows = (await this.ds.query(`SELECT state FROM batch WHERE id = $1`, [id])) as Raw[];
    return rows[0] ? (rows[0].state as BatchState) : null;
  }
}
