import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { BlobStoreKind } from '@tandem/persistence';
import { BATCH_COLUMNS, toBatchRow } from '../batches/batch.repository';
import type { OwnerUsage, Tenant } from '../batches/batch.types';
import { lockOwnerUsage } from '../batches/owner-usage';
import { fileNotFound } from '../files/file.dto';
import type { LineRange } from './file-scan';
import { FINALIZE_TARGET, type AnyBatchRow, type FileBatchInfo, type FileBatchRow, type FinalizingState, type PartRow } from './file-batch.types';

type Raw = Record<string, unknown>;

/** The file id while the file is there: an output swept after BATCH_RETENTION_DAYS (or deleted) is no longer linked. */
function visibleFile(col: string): string {
  return `(SELECT o.id FROM batch_file o WHERE o.id = ${col} AND o.status = 'processed' AND o.expires_at > now())`;
}

const FILE_COLUMNS = `f.input_file_id, f.input_blob_store, f.input_blob_key, f.endpoint, f.model AS f_model, f.version, f.completion_window,
  f.expires_at, f.metadata, f.line_count, f.duplicate_lines, f.requests_completed, f.requests_failed,
  ${visibleFile('f.output_file_id')} AS output_file_id, ${visibleFile('f.error_file_id')} AS error_file_id, f.finalizing_at, f.cancelling_at`;
const SELECT = `SELECT ${BATCH_COLUMNS.split(',')
  .map((c) => `b.${c.trim()}`)
  .join(', ')}, ${FILE_COLUMNS} FROM batch b LEFT JOIN file_batch f ON f.batch_id = b.id`;

function toFile(r: Raw): FileBatchInfo | null {
  if (r.input_file_id === null || r.input_file_id === undefined) return null;
  return {
    inputFileId: r.input_file_id as string,
    inputBlobStore: r.input_blob_store as BlobStoreKind,
    inputBlobKey: r.input_blob_key as string,
    endpoint: r.endpoint as string,
    model: r.f_model as string,
    version: (r.version as string | null) ?? null,
    completionWindow: r.completion_window as string,
    expiresAt: r.expires_at as Date,
    metadata: (r.metadata as Record<string, string> | null) ?? null,
    lineCount: Number(r.line_count),
    duplicateLines: (r.duplicate_lines as number[] | null) ?? [],
    requestsCompleted: Number(r.requests_completed),
    requestsFailed: Number(r.requests_failed),
    outputFileId: (r.output_file_id as string | null) ?? null,
    errorFileId: (r.error_file_id as string | null) ?? null,
    finalizingAt: (r.finalizing_at as Date | null) ?? null,
    cancellingAt: (r.cancelling_at as Date | null) ?? null,
  };
}

const toAny = (r: Raw): AnyBatchRow => ({ ...toBatchRow(r), file: toFile(r) });

export interface NewFileBatch {
  id: string;
  owner: string;
  maxAttempts: number;
  chunkLines: number;
  file: Pick<
    FileBatchInfo,
    'inputFileId' | 'inputBlobStore' | 'inputBlobKey' | 'endpoint' | 'model' | 'version' | 'completionWindow' | 'metadata' | 'lineCount' | 'duplicateLines'
  >;
  windowMs: number;
}

/** Output/error file rows the finalizer wrote as `uploading`; made visible in the commit that ends the batch. */
export interface StitchedFile {
  id: string;
  bytes: number;
  lines: number;
  sha256: string;
}

class StopRace extends Error {}

/** File batches in Postgres: creation with their byte-range chunks, reads, stop and finalize transitions. */
@Injectable()
export class FileBatchRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * The batch row, its file row and every chunk (offsets only) in one transaction. The input
   * file's row is share-locked (a concurrent delete waits, then sees this batch: 409) and must
   * still be there (404). With `admit`, the owner's quotas are checked under the owner's lock.
   */
  async create(nb: NewFileBatch, ranges: readonly LineRange[], admit?: (usage: OwnerUsage) => void): Promise<FileBatchRow> {
    return this.ds.transaction(async (m) => {
      const f = nb.file;
      if (admit) admit(await lockOwnerUsage(m, nb.owner));
      const input = (await m.query(`SELECT id FROM batch_file WHERE id = $1 AND status = 'processed' AND expires_at > now() FOR SHARE`, [
        f.inputFileId,
      ])) as Raw[];
      if (input.length === 0) throw fileNotFound(f.inputFileId);
      await m.query(
        `INSERT INTO batch (id, kind, owner, task, model, reducer, chunk_size, priority, may_borrow, failure_policy, max_attempts, state, item_count, chunk_count)
         VALUES ($1, 'file', $2, 'infer', $3, 'none', $4, 50, true, 'continue', $5, 'queued', $6, $7)`,
        [nb.id, nb.owner, f.model, nb.chunkLines, nb.maxAttempts, f.lineCount, ranges.length],
      );
      await m.query(
        `INSERT INTO file_batch (batch_id, input_file_id, input_blob_store, input_blob_key, endpoint, model, version, completion_window, expires_at,
           metadata, line_count, duplicate_lines)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9 * interval '1 millisecond', $10::jsonb, $11, $12::jsonb)`,
        [
          nb.id,
          f.inputFileId,
          f.inputBlobStore,
          f.inputBlobKey,
          f.endpoint,
          f.model,
          f.version,
          f.completionWindow,
          nb.windowMs,
          f.metadata ? JSON.stringify(f.metadata) : null,
          f.lineCount,
          JSON.stringify(f.duplicateLines),
        ],
      );
      if (ranges.length > 0) {
        await m.query(
          `INSERT INTO batch_chunk (batch_id, idx, first_item, item_count, items, start_byte, end_byte)
           SELECT $1, e.ord - 1, (e.value->>'firstLine')::bigint, (e.value->>'lines')::int, '[]'::json, (e.value->>'start')::bigint, (e.value->>'end')::bigint
           FROM json_array_elements($2::json) WITH ORDINALITY AS e(value, ord)`,
          [nb.id, JSON.stringify(ranges)],
        );
      }
      const rows = (await m.query(`${SELECT} WHERE b.id = $1`, [nb.id])) as Raw[];
      return toAny(rows[0]!) as FileBatchRow;
    });
  }

  /** Any batch (chord or file) the tenant may see. */
  async get(id: string, tenant?: Tenant): Promise<AnyBatchRow | null> {
    const params: unknown[] = [id];
    let where = 'b.id = $1';
    if (tenant && !tenant.admin) {
      params.push(tenant.id);
      where += ' AND b.owner = $2';
    }
    const rows = (await this.ds.query(`${SELECT} WHERE ${where} AND b.state <> 'submitting'`, params)) as Raw[];
    return rows[0] ? toAny(rows[0]) : null;
  }

  /** Newest first, both kinds (`seq` below `beforeSeq` when paging); one more than `limit` tells has_more. */
  async list(tenant: Tenant, limit: number, beforeSeq?: number, state?: string): Promise<AnyBatchRow[]> {
    const params: unknown[] = [limit];
    const where = [`b.state <> 'submitting'`];
    if (state) {
      params.push(state);
      where.push(`b.state = $${params.length}`);
    }
    if (!tenant.admin) {
      params.push(tenant.id);
      where.push(`b.owner = $${params.length}`);
    }
    if (beforeSeq !== undefined) {
      params.push(beforeSeq);
      where.push(`b.seq < $${params.length}`);
    }
    const rows = (await this.ds.query(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY b.seq DESC LIMIT $1`, params)) as Raw[];
    return rows.map(toAny);
  }

  /**
   * Cancel or expiry: pending chunks are cancelled, then the batch moves to `to` (chunk rows
   * first, then the batch: the lock order of every chunk commit). A chunk commit that got in
   * first stays done; none can land after, so the finalizer sees a settled set.
   */
  async stop(id: string, to: 'cancelling' | 'expiring'): Promise<boolean> {
    return this.ds
      .transaction(async (m) => {
        // Chunks first (the commit lock order); the batch row's state is checked after, under its lock.
        const rows = (await m.query(`SELECT state FROM batch WHERE id = $1 AND kind = 'file'`, [id])) as Raw[];
        if (rows.length === 0 || !['queued', 'running', 'paused'].includes(rows[0]!.state as string)) return false;
        await m.query(`UPDATE batch_chunk SET state = 'cancelled', finished_at = now() WHERE batch_id = $1 AND state = 'pending'`, [id]);
        const [moved] = (await m.query(
          `UPDATE batch SET state = $2, progressed_at = now() WHERE id = $1 AND state IN ('queued','running','paused') RETURNING id`,
          [id, to],
        )) as [Raw[], number];
        if (moved.length === 0) throw new StopRace(); // settled meanwhile: roll the chunk cancels back
        if (to === 'cancelling') await m.query(`UPDATE file_batch SET cancelling_at = now() WHERE batch_id = $1`, [id]);
        else await m.query(`UPDATE file_batch SET finalizing_at = now() WHERE batch_id = $1`, [id]);
        return true;
      })
      .catch((e: unknown) => {
        if (e instanceof StopRace) return false;
        throw e;
      });
  }

  /** Running file batches past their expires_at. */
  async dueForExpiry(limit = 100): Promise<string[]> {
    const rows = (await this.ds.query(
      `SELECT b.id FROM file_batch f JOIN batch b ON b.id = f.batch_id
       WHERE b.state IN ('queued','running','paused') AND f.expires_at <= now() ORDER BY f.expires_at LIMIT $1`,
      [limit],
    )) as Raw[];
    return rows.map((r) => r.id as string);
  }

  /** Batches waiting for the finalizer with no progress for `idleMs` (its job may be lost). */
  async idleFinalizing(idleMs: number, limit = 100): Promise<string[]> {
    const rows = (await this.ds.query(
      `SELECT id FROM batch WHERE kind = 'file' AND state IN ('finalizing','cancelling','expiring')
         AND progressed_at < now() - ($1::double precision * interval '1 millisecond') ORDER BY seq LIMIT $2`,
      [idleMs, limit],
    )) as Raw[];
    return rows.map((r) => r.id as string);
  }

  async touch(id: string): Promise<void> {
    await this.ds.query(`UPDATE batch SET progressed_at = now() WHERE id = $1`, [id]);
  }

  /** Recorded before a part blob is written, so every blob an attempt wrote is found and deleted at the end. */
  async registerBlob(batchId: string, key: string, store: BlobStoreKind): Promise<void> {
    await this.ds.query(`INSERT INTO file_batch_blob (blob_key, batch_id, blob_store) VALUES ($1, $2, $3)`, [key, batchId, store]);
  }

  async blobsOf(batchId: string): Promise<{ key: string; store: BlobStoreKind }[]> {
    const rows = (await this.ds.query(`SELECT blob_key, blob_store FROM file_batch_blob WHERE batch_id = $1`, [batchId])) as Raw[];
    return rows.map((r) => ({ key: r.blob_key as string, store: r.blob_store as BlobStoreKind }));
  }

  async forgetBlob(key: string): Promise<void> {
    await this.ds.query(`DELETE FROM file_batch_blob WHERE blob_key = $1`, [key]);
  }

  /** Chunks in input order from `fromIdx`. */
  async parts(batchId: string, fromIdx: number, limit: number): Promise<PartRow[]> {
    const rows = (await this.ds.query(
      `SELECT idx, state, first_item, item_count, start_byte, end_byte, output_part, error_part, error FROM batch_chunk
       WHERE batch_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3`,
      [batchId, fromIdx, limit],
    )) as Raw[];
    return rows.map((r) => ({
      idx: Number(r.idx),
      state: r.state as string,
      firstLine: Number(r.first_item) + 1,
      lines: Number(r.item_count),
      start: Number(r.start_byte),
      end: Number(r.end_byte),
      outputPart: (r.output_part as string | null) ?? null,
      errorPart: (r.error_part as string | null) ?? null,
      error: (r.error as string | null) ?? null,
    }));
  }

  /** An output/error file row, invisible until `complete` (the files sweeper removes it after the grace if we die). */
  async beginFile(id: string, owner: string, filename: string, store: BlobStoreKind, graceMs: number): Promise<void> {
    await this.ds.query(
      `INSERT INTO batch_file (id, owner, purpose, filename, status, blob_store, blob_key, expires_at)
       VALUES ($1, $2, 'batch_output', $3, 'uploading', $4, $1, now() + $5 * interval '1 millisecond')`,
      [id, owner, filename, store, graceMs],
    );
  }

  /**
   * The finalizer's commit: the batch leaves `from` for its end state and its output and error
   * files become visible, together; false when another finalizer (or nothing) was there first.
   */
  async complete(
    id: string,
    from: FinalizingState,
    files: { output: StitchedFile | null; error: StitchedFile | null },
    unfinished: number,
    ttlMs: number,
  ): Promise<boolean> {
    return this.ds.transaction(async (m) => {
      const [rows] = (await m.query(`UPDATE batch SET state = $3, finished_at = now(), progressed_at = now() WHERE id = $1 AND state = $2 RETURNING id`, [
        id,
        from,
        FINALIZE_TARGET[from],
      ])) as [Raw[], number];
      if (rows.length === 0) return false;
      for (const f of [files.output, files.error]) {
        if (!f) continue;
        await m.query(
          `UPDATE batch_file SET status = 'processed', bytes = $2, line_count = $3, sha256 = $4, expires_at = now() + $5 * interval '1 millisecond'
           WHERE id = $1 AND status = 'uploading'`,
          [f.id, f.bytes, f.lines, f.sha256, ttlMs],
        );
      }
      await m.query(`UPDATE file_batch SET output_file_id = $2, error_file_id = $3, requests_failed = requests_failed + $4 WHERE batch_id = $1`, [
        id,
        files.output?.id ?? null,
        files.error?.id ?? null,
        unfinished,
      ]);
      return true;
    });
  }

  /**
   * Deletes a finished file batch with its bytes: its output and error files (rows and blobs),
   * any part blob still recorded, then the batch (its chunks and file_batch row cascade). One
   * transaction holding the rows: if dropping a blob fails, everything stays and a retry deletes
   * only what is left (deleting a blob twice is fine). False when the batch is not terminal.
   */
  async deleteFinished(id: string, dropBlob: (b: { key: string; store: BlobStoreKind }) => Promise<void>): Promise<boolean> {
    return this.ds.transaction(async (m) => {
      const [locked] = (await m.query(
        `SELECT id FROM batch WHERE id = $1 AND kind = 'file' AND state IN ('succeeded','failed','cancelled','expired') FOR UPDATE`,
        [id],
      )) as Raw[];
      if (!locked) return false;
      const files = (await m.query(
        `SELECT o.id, o.blob_key, o.blob_store FROM file_batch f JOIN batch_file o ON o.id IN (f.output_file_id, f.error_file_id) WHERE f.batch_id = $1 FOR UPDATE OF o`,
        [id],
      )) as Raw[];
      const parts = (await m.query(`SELECT blob_key, blob_store FROM file_batch_blob WHERE batch_id = $1`, [id])) as Raw[];
      for (const r of [...files, ...parts]) await dropBlob({ key: r.blob_key as string, store: r.blob_store as BlobStoreKind });
      if (files.length > 0) await m.query(`DELETE FROM batch_file WHERE id = ANY($1::text[])`, [files.map((r) => r.id as string)]);
      await m.query(`DELETE FROM file_batch_blob WHERE batch_id = $1`, [id]);
      await m.query(`DELETE FROM batch WHERE id = $1`, [id]);
      return true;
    });
  }

  async discardFile(id: string): Promise<void> {
    await this.ds.query(`DELETE FROM batch_file WHERE id = $1 AND status = 'uploading'`, [id]);
  }
}
