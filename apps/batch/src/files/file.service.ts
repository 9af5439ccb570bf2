import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import { BlobStores, type BlobStore, type ByteRange } from '@tandem/persistence';
import { DomainException } from '@tandem/shared';
import { checkFileStorage, withinStorage } from '../batches/batch-quota';
import type { Tenant } from '../batches/batch.types';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { fileNotFound, newFileId, type FileListQuery, type UploadFields } from './file.dto';
import { FileRepository } from './file.repository';
import { toFileView, type FileDeleted, type FileList, type FileRow, type FileView } from './file.types';
import { validatedJsonl, type JsonlStats } from './jsonl-validator';

/** An upload not finished within this is treated as abandoned (its process died) and swept. */
export const UPLOAD_GRACE_MS = 24 * 3600_000;

/** Bytes stored under a file id whose row is still `uploading`: `complete` or `abandon` it. */
export interface ReceivedFile {
  id: string;
  store: BlobStore;
  bytes: number;
  lines: number;
  sha256: string;
  /** The owner, when the storage quota applies to it (not an admin, quota not 0). */
  quotaOwner: string | null;
}

/**
 * The Files API behind its transports: uploads are validated JSONL streamed into the blob store
 * (limits checked as bytes arrive, nothing kept on failure), reads and deletes are scoped to the
 * tenant (another key's file is a 404, as for batches; admins see every file).
 */
@Injectable()
export class FileService {
  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly files: FileRepository,
    private readonly blobs: BlobStores,
  ) {}

  /** Streams one file in (purpose=batch: JSONL) and stores it, not yet visible. */
  async receive(who: Tenant, filename: string, data: AsyncIterable<Buffer>): Promise<ReceivedFile> {
    const { limitBytes, lineLimitBytes, maxLines } = this.cfg.files;
    const quotas = this.cfg.jobs.quotas;
    const quotaOwner = !who.admin && quotas.storedBytes > 0 ? who.id : null;
    if (quotaOwner) {
      // Early and unlocked, so an upload over the quota is refused before (or as) its bytes arrive.
      const usage = await this.files.usage(quotaOwner);
      checkFileStorage(quotas, usage, 1);
      data = withinStorage(data, quotas, usage);
    }
    const id = newFileId();
    const store = this.blobs.primary;
    await this.files.begin({ id, owner: who.id, filename, blobStore: store.kind, blobKey: id, graceMs: UPLOAD_GRACE_MS });
    const stats: JsonlStats = { bytes: 0, lines: 0 };
    try {
      const info = await store.put(id, validatedJsonl(data, { maxBytes: limitBytes, maxLineBytes: lineLimitBytes, maxLines }, stats));
      return { id, store, bytes: info.size, lines: stats.lines, sha256: info.sha256, quotaOwner };
    } catch (e) {
      // The blob store kept nothing; the row goes too (or, if Postgres is down, the sweeper takes it).
      await this.files.discard(id).catch(() => undefined);
      throw e;
    }
  }

  /** Makes a received file visible with its purpose and expiry. */
  async complete(r: ReceivedFile, fields: UploadFields): Promise<FileView> {
    const retention = this.cfg.files.retentionMs;
    const asked = fields['expires_after[seconds]'];
    if (asked !== undefined && asked * 1000 > retention) {
      await this.abandon(r);
      throw DomainException.invalid(`expires_after[seconds]: at most ${Math.floor(retention / 1000)} (BATCH_RETENTION_DAYS)`);
    }
    const quotas = this.cfg.jobs.quotas;
    const finished = { purpose: fields.purpose, bytes: r.bytes, lines: r.lines, sha256: r.sha256, ttlMs: asked !== undefined ? asked * 1000 : retention };
    // Rechecked under the owner's lock: uploads that passed the early check together cannot all fit
    // (a throw here leaves the bytes to the caller's abandon, as every failure of complete does).
    const row = await this.files.finish(r.id, r.quotaOwner ?? '', finished, r.quotaOwner ? (u) => checkFileStorage(quotas, u, r.bytes) : undefined);
    if (!row) {
      await r.store.delete(r.id);
      throw DomainException.unavailable('the upload took longer than its grace period and was discarded; upload again', 1);
    }
    return toFileView(row);
  }

  /** Undoes a receive (the form turned out bad after the file part). */
  async abandon(r: ReceivedFile): Promise<void> {
    await r.store.delete(r.id);
    await this.files.discard(r.id);
  }

  async get(id: string, who: Tenant): Promise<FileView> {
    return toFileView(await this.row(id, who));
  }

  async list(q: FileListQuery, who: Tenant): Promise<FileList> {
    let afterSeq: number | undefined;
    if (q.after !== undefined) {
      const seq = await this.files.seqOf(q.after, who);
      if (seq === null) throw DomainException.invalid(`after: no file ${q.after.slice(0, 64)}`);
      afterSeq = seq;
    }
    const rows = await this.files.list(q, afterSeq, who);
    const data = rows.slice(0, q.limit).map(toFileView);
    return { object: 'list', data, has_more: rows.length > q.limit, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
  }

  /** The file's bytes as a stream, with what the response needs to describe them; 404 before any byte. */
  async content(id: string, who: Tenant, range?: (size: number) => ByteRange | undefined): Promise<{ file: FileView; stream: Readable }> {
    const row = await this.row(id, who);
    return { file: toFileView(row), stream: await this.blobs.of(row.blobStore).get(row.blobKey, range?.(row.bytes)) };
  }

  async remove(id: string, who: Tenant): Promise<FileDeleted> {
    const row = await this.files.remove(id, who, async (r) => {
      await this.blobs.of(r.blobStore).delete(r.blobKey);
    });
    if (!row) throw fileNotFound(id);
    return { id: row.id, object: 'file', deleted: true };
  }

  private async row(id: string, who: Tenant): Promise<FileRow> {
    const row = await this.files.get(id, who);
    if (!row) throw fileNotFound(id);
    return row;
  }
}
