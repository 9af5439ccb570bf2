import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { BlobStoreKind } from '@tandem/persistence';
import { DomainException, ErrorCode } from '@tandem/shared';
import type { OwnerUsage, Tenant } from '../batches/batch.types';
import { lockOwnerUsage, ownerUsage } from '../batches/owner-usage';
import type { FileListQuery } from './file.dto';
import type { FileRow } from './file.types';

const COLUMNS = 'id, seq, owner, purpose, filename, bytes, line_count, sha256, blob_store, blob_key, created_at, expires_at';
/** What the API may see: finished uploads that have not expired (the sweeper may not have run yet). */
const VISIBLE = `status = 'processed' AND expires_at > now()`;
/** File batches still reading their input: that file may be neither deleted nor swept. */
const UNFINISHED_INPUT = `SELECT b.id, b.state FROM file_batch f JOIN batch b ON b.id = f.batch_id
  WHERE f.input_file_id = batch_file.id AND b.state NOT IN ('succeeded','failed','cancelled','expired')`;

type Raw = Record<string, unknown>;

function toRow(r: Raw): FileRow {
  return {
    id: r.id as string,
    seq: Number(r.seq),
    owner: r.owner as string,
    purpose: r.purpose as string,
    filename: r.filename as string,
    bytes: Number(r.bytes),
    lineCount: Number(r.line_count),
    sha256: (r.sha256 as string | null) ?? null,
    blobStore: r.blob_store as BlobStoreKind,
    blobKey: r.blob_key as string,
    createdAt: r.created_at as Date,
    expiresAt: r.expires_at as Date,
  };
}

/** `AND owner = $n` unless the tenant is an admin (who sees every file). */
function ownerClause(t: Tenant, params: unknown[]): string {
  if (t.admin) return '';
  params.push(t.id);
  return ` AND owner = $${params.length}`;
}

export interface NewFile {
  id: string;
  owner: string;
  filename: string;
  blobStore: BlobStoreKind;
  blobKey: string;
  /** An upload not finished within this is swept as abandoned. */
  graceMs: number;
}

export interface FinishedFile {
  purpose: string;
  bytes: number;
  lines: number;
  sha256: string;
  ttlMs: number;
}

/** `batch_file` rows; the bytes are in a blob store, never here. */
@Injectable()
export class FileRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Records an upload before its bytes are stored, so a process that dies mid-way leaves a row
   * the sweeper finds (at `expires_at`, the grace) and whose blob it removes.
   */
  async begin(f: NewFile): Promise<void> {
    await this.ds.query(
      `INSERT INTO batch_file (id, owner, purpose, filename, status, blob_store, blob_key, expires_at)
       VALUES ($1, $2, 'batch', $3, 'uploading', $4, $5, now() + $6 * interval '1 millisecond')`,
      [f.id, f.owner, f.filename, f.blobStore, f.blobKey, f.graceMs],
    );
  }

  /**
   * Makes the upload visible; null when the row is gone (swept after the grace: the caller drops
   * the blob). With `admit`, the owner's lock is taken first and `admit` sees the owner's usage
   * (this file not yet in it) and may throw: the storage quota holds under concurrent uploads.
   */
  async finish(id: string, owner: string, f: FinishedFile, admit?: (usage: OwnerUsage) => void): Promise<FileRow | null> {
    return this.ds.transaction(async (m) => {
      if (admit) admit(await lockOwnerUsage(m, owner));
      const rows = (await m.query(
        `UPDATE batch_file SET status = 'processed', purpose = $2, bytes = $3, line_count = $4, sha256 = $5,
           expires_at = created_at + $6 * interval '1 millisecond'
         WHERE id = $1 AND status = 'uploading' RETURNING ${COLUMNS}`,
        [id, f.purpose, f.bytes, f.lines, f.sha256, f.ttlMs],
      )) as [Raw[], number];
      return rows[0][0] ? toRow(rows[0][0]) : null;
    });
  }

  /** The owner's quota usage (files included), unlocked: an upload's early check. */
  async usage(owner: string): Promise<OwnerUsage> {
    return ownerUsage(this.ds, owner);
  }

  async discard(id: string): Promise<void> {
    await this.ds.query(`DELETE FROM batch_file WHERE id = $1 AND status = 'uploading'`, [id]);
  }

  /** The file, or null when it does not exist, expired, or the tenant may not see it (all 404). */
  async get(id: string, tenant: Tenant): Promise<FileRow | null> {
    const params: unknown[] = [id];
    const rows = (await this.ds.query(`SELECT ${COLUMNS} FROM batch_file WHERE id = $1 AND ${VISIBLE}${ownerClause(tenant, params)}`, params)) as Raw[];
    return rows[0] ? toRow(rows[0]) : null;
  }

  /** One page in `seq` order after the cursor's row; `limit + 1` rows tell whether there are more. */
  async list(q: FileListQuery, afterSeq: number | undefined, tenant: Tenant): Promise<FileRow[]> {
    const params: unknown[] = [q.limit + 1];
    const where = [VISIBLE];
    const owner = ownerClause(tenant, params);
    if (q.purpose !== undefined) {
      params.push(q.purpose);
      where.push(`purpose = $${params.length}`);
    }
    if (afterSeq !== undefined) {
      params.push(afterSeq);
      where.push(`seq ${q.order === 'desc' ? '<' : '>'} $${params.length}`);
    }
    const rows = (await this.ds.query(
      `SELECT ${COLUMNS} FROM batch_file WHERE ${where.join(' AND ')}${owner} ORDER BY seq ${q.order === 'desc' ? 'DESC' : 'ASC'} LIMIT $1`,
      params,
    )) as Raw[];
    return rows.map(toRow);
  }

  /**
   * Deletes a visible file: the row is locked, `dropBlob` removes the bytes, then the row goes,
   * in one transaction. If dropping the bytes fails the row stays (the file is still whole);
   * if the process dies after the bytes went, the row is rolled back and a retry drops nothing twice.
   */
  async remove(id: string, tenant: Tenant, dropBlob: (r: FileRow) => Promise<void>): Promise<FileRow | null> {
    return this.ds.transaction(async (m) => {
      const params: unknown[] = [id];
      const rows = (await m.query(`SELECT ${COLUMNS} FROM batch_file WHERE id = $1 AND ${VISIBLE}${ownerClause(tenant, params)} FOR UPDATE`, params)) as Raw[];
      if (!rows[0]) return null;
      const row = toRow(rows[0]);
      // A batch creating over this file waits on the row lock (FOR SHARE), so none can start after this check.
      const [busy] = (await m.query(`${UNFINISHED_INPUT.replace('batch_file.id', '$1')} LIMIT 1`, [id])) as Raw[];
      if (busy) {
        const bid = `batch_${(busy.id as string).replace(/-/g, '')}`;
        throw new DomainException(
          ErrorCode.Conflict,
          `file ${id} is the input of batch ${bid}, which has not finished (${busy.state as string}); cancel it (POST /v1/batches/${bid}/cancel) or wait for it to end, then delete the file`,
        );
      }
      await dropBlob(row);
      await m.query('DELETE FROM batch_file WHERE id = $1', [id]);
      return row;
    });
  }

  /**
   * Up to `limit` expired files (and uploads abandoned past their grace) whose bytes are in one of
   * `stores` (those the caller reaches), bytes then rows. The input of a file batch still running
   * is kept until the batch ends (its chunks read it), though the API no longer shows it. Rows are taken with SKIP LOCKED, so every
   * node may sweep at once: each file goes to one sweeper.
   */
  async sweepExpired(limit: number, stores: readonly BlobStoreKind[], dropBlob: (r: FileRow) => Promise<void>): Promise<number> {
    return this.ds.transaction(async (m) => {
      const rows = (
        (await m.query(
          `SELECT ${COLUMNS} FROM batch_file WHERE expires_at <= now() AND blob_store = ANY($2::text[]) AND NOT EXISTS (${UNFINISHED_INPUT})
           ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [limit, stores],
        )) as Raw[]
      ).map(toRow);
      for (const r of rows) await dropBlob(r);
      if (rows.length > 0) await m.query('DELETE FROM batch_file WHERE id = ANY($1::text[])', [rows.map((r) => r.id)]);
      return rows.length;
    });
  }

  /** The cursor row's position, if the tenant can see it. */
  async seqOf(id: string, tenant: Tenant): Promise<number | null> {
    const params: unknown[] = [id];
    const rows = (await this.ds.query(`SELECT seq FROM batch_file WHERE id = $1${ownerClause(tenant, params)}`, params)) as Raw[];
    return rows[0] ? Number(rows[0].seq) : null;
  }
}
