import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ModelRepository } from '@tandem/inference';
import { BlobStores } from '@tandem/persistence';
import { DomainException, ErrorCode } from '@tandem/shared';
import { QuotaAllowance, quotasApply } from '../batches/batch-quota';
import type { OwnerUsage, Tenant } from '../batches/batch.types';
import { toView, type BatchView } from '../batches/batch.view';
import { ChunkRepository } from '../batches/chunk.repository';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { fileNotFound } from '../files/file.dto';
import { FileRepository } from '../files/file.repository';
import { ChunkQueueService } from '../jobs/chunk-queue.service';
import { deadlineMs, isFileBatchId, MAX_WINDOW_MS, parseFileBatchId, windowMs, type AnyListQuery, type CreateFileBatch } from './file-batch.dto';
import { DeadlineAdmission } from '../accounting/deadline-admission';
import { UsageRepository } from '../accounting/usage.repository';
import { FileBatchRepository } from './file-batch.repository';
import type { AnyBatchRow } from './file-batch.types';
import { toOpenAiView, type OpenAiBatchView } from './file-batch.view';
import { scanLines } from './file-scan';
import { parseInferUrl } from './request-lines';

/** GET /v1/batches: OpenAI's list and the chord API's page, over the same rows (both kinds, newest first). */
export interface AnyBatchList {
  object: 'list';
  data: OpenAiBatchView[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
  items: BatchView[];
  nextCursor: string | null;
}

/**
 * OpenAI's Batch API over files: create (the input is checked and cut into line-aligned byte
 * ranges while the request waits), read, list, cancel. Scoped to the tenant like files and chords.
 */
@Injectable()
export class FileBatchService {
  private readonly logger = new Logger('FileBatches');
  private models?: ModelRepository;

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly repo: FileBatchRepository,
    private readonly files: FileRepository,
    private readonly blobs: BlobStores,
    private readonly chunks: ChunkRepository,
    private readonly queue: ChunkQueueService,
    private readonly deadlines: DeadlineAdmission,
    private readonly usage: UsageRepository,
  ) {}

  async create(body: CreateFileBatch, who: Tenant): Promise<OpenAiBatchView> {
    const file = await this.files.get(body.input_file_id, who);
    if (!file) throw fileNotFound(body.input_file_id);
    if (file.purpose !== 'batch') throw DomainException.invalid(`input_file_id: file ${file.id} has purpose "${file.purpose}", not "batch"`);
    const url = parseInferUrl(body.endpoint);
    if (!url)
      throw DomainException.invalid(
        `endpoint must be an OIP infer path, /v2/models/<model>/infer or /v2/models/<model>/versions/<version>/infer (got "${body.endpoint.slice(0, 200)}")`,
      );
    this.modelRepository().resolve(url.model, url.version); // the repository's 404, as online
    const scan = await scanLines(await this.blobs.of(file.blobStore).get(file.blobKey), {
      chunkLines: body.chunk_lines ?? this.cfg.files.chunkLines,
      chunkBytes: this.cfg.files.chunkBytes,
    });
    if (scan.requests === 0) throw DomainException.invalid(`input_file_id: file ${file.id} holds no requests`);
    const { window, completionWindow } = this.window(body);
    // The deadline is a promise: refused (422) here if the measured throughput cannot keep it.
    const estimate = await this.deadlines.judge(url.model, scan.requests, Date.now() + window);
    const row = await this.repo.create(
      {
        id: randomUUID(),
        owner: who.id,
        maxAttempts: this.cfg.jobs.maxAttempts,
        chunkLines: body.chunk_lines ?? this.cfg.files.chunkLines,
        windowMs: window,
        file: {
          inputFileId: file.id,
          inputBlobStore: file.blobStore,
          inputBlobKey: file.blobKey,
          endpoint: body.endpoint,
          model: url.model,
          version: url.version ?? null,
          completionWindow,
          metadata: body.metadata ?? null,
          lineCount: scan.requests,
          duplicateLines: scan.duplicates,
        },
      },
      scan.ranges,
      this.quotaCheck(who, scan.requests),
    );
    if (estimate) {
      await this.usage.setEstimate(row.id, estimate);
      row.estimate = estimate;
    }
    try {
      await this.queue.enqueue(
        { id: row.id, priority: row.priority, maxAttempts: row.maxAttempts, deadline: row.file.expiresAt },
        scan.ranges.map((_, i) => i),
      );
    } catch (e) {
      this.logger.error({ err: e, batch: row.id }, `enqueue failed; left to the reconciler: ${(e as Error).message}`);
    }
    return toOpenAiView(row);
  }

  async get(id: string, who: Tenant): Promise<OpenAiBatchView> {
    return toOpenAiView(await this.fileRow(id, who));
  }

  async list(q: AnyListQuery & { state?: string }, who: Tenant): Promise<AnyBatchList> {
    let before = q.cursor;
    if (q.after !== undefined) {
      const uuid = isFileBatchId(q.after) ? parseFileBatchId(q.after) : q.after;
      const row = /^[0-9a-f-]{36}$/i.test(uuid) ? await this.repo.get(uuid.toLowerCase(), who) : null;
      if (!row) throw DomainException.invalid(`after: no batch ${q.after.slice(0, 64)}`);
      before = row.seq;
    }
    const rows = await this.repo.list(who, q.limit + 1, before, q.state);
    const page = rows.slice(0, q.limit);
    const data = page.map((r) => toOpenAiView(r));
    return {
      object: 'list',
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: rows.length > q.limit,
      items: page.map((r) => toView(r)),
      nextCursor: page.length === q.limit ? String(page.at(-1)!.seq) : null,
    };
  }

  /** cancelling → (the finalizer) cancelled; lines already answered stay in the output file. */
  async cancel(id: string, who: Tenant): Promise<OpenAiBatchView> {
    const row = await this.fileRow(id, who);
    if (row.state === 'cancelling' || row.state === 'cancelled') return toOpenAiView(row);
    const pending = await this.chunks.pendingIdxs(row.id);
    if (!(await this.repo.stop(row.id, 'cancelling'))) {
      const now = await this.fileRow(id, who);
      throw new DomainException(ErrorCode.Conflict, `cannot cancel a batch that is ${toOpenAiView(now).status}`);
    }
    await this.queue.remove(row.id, pending).catch(() => undefined);
    await this.queue.enqueueFinalize(row.id).catch((e: unknown) => this.logger.warn({ err: e }, 'finalize enqueue failed; the sweeper retries'));
    return toOpenAiView(await this.fileRow(id, who));
  }

  /** The chord API's quotas, under the owner's lock: the batch is open, its lines are queued items (bytes live in files). */
  private quotaCheck(who: Tenant, lines: number): ((u: OwnerUsage) => void) | undefined {
    const quotas = this.cfg.jobs.quotas;
    if (!quotasApply(quotas, who.admin)) return undefined;
    return (u) => QuotaAllowance.admit(quotas, u).checkItems(lines);
  }

  /** `deadline` (absolute) wins over `completion_window`; either way the batch expires then. */
  private window(body: CreateFileBatch): { window: number; completionWindow: string } {
    if (body.deadline === undefined) return { window: windowMs(body.completion_window!)!, completionWindow: body.completion_window! };
    const window = deadlineMs(body.deadline)! - Date.now();
    if (window < 1_000 || window > MAX_WINDOW_MS) throw DomainException.invalid('deadline must be between 1 s and 168 h from now');
    return { window, completionWindow: body.completion_window ?? `${Math.ceil(window / 1000)}s` };
  }

  private async fileRow(id: string, who: Tenant): Promise<AnyBatchRow> {
    const row = await this.repo.get(parseFileBatchId(id), who);
    if (!row?.file) throw DomainException.notFound(`batch ${id.slice(0, 64)} not found`);
    return row;
  }

  private modelRepository(): ModelRepository {
    if (!this.models) {
      try {
        this.models = new ModelRepository(this.cfg.modelRepository);
      } catch (e) {
        throw DomainException.unavailable(`no model repository: ${(e as Error).message}`);
      }
    }
    return this.models;
  }
}
