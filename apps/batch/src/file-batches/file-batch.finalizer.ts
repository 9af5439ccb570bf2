import { Inject, Injectable, Logger } from '@nestjs/common';
import { BlobStores, type BlobStore } from '@tandem/persistence';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { newFileId } from '../files/file.dto';
import { UPLOAD_GRACE_MS } from '../files/file.service';
import { readPayload } from '../batches/chunk-payload';
import { FileBatchRepository, type StitchedFile } from './file-batch.repository';
import { isFinalizing, type FileBatchRow, type PartRow } from './file-batch.types';
import { splitRange } from './file-scan';
import { unansweredLine } from './output-lines';

const PAGE = 100;

/** Why lines of a chunk that never committed have no answer, by the chunk's and batch's state. */
function unanswered(state: string, p: PartRow): { code: string; message: string } {
  if (p.state === 'dead') return { code: 'chunk_failed', message: `the request's chunk failed after its last attempt: ${p.error ?? 'unknown error'}` };
  if (state === 'expiring') return { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' };
  return { code: 'batch_cancelled', message: 'This request was not executed: the batch was cancelled.' };
}

/**
 * `finalizing` / `cancelling` / `expiring` → `succeeded` (completed) / `cancelled` / `expired`:
 * streams the committed parts, in input order, into a new output file and a new error file (lines
 * of chunks that never committed go to the error file with why), then makes both visible in the
 * same transaction that ends the batch. Idempotent: a second run finds the state moved and
 * drops what it wrote; a run that died leaves invisible `uploading` files the sweeper removes.
 */
@Injectable()
export class FileBatchFinalizer {
  private readonly logger = new Logger('FileBatchFinalizer');

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly repo: FileBatchRepository,
    private readonly blobs: BlobStores,
  ) {}

  async finalize(batchId: string): Promise<void> {
    const row = await this.repo.get(batchId);
    if (!row?.file || !isFinalizing(row.state) || row.owner === null) return;
    const b = row as FileBatchRow;
    const from = row.state;
    const store = this.blobs.primary;
    const counts = { unfinished: 0, errorLines: 0 };
    const output = b.file.requestsCompleted > 0 ? await this.stitch(b, store, 'output', (p) => this.partLines(p.outputPart)) : null;
    const error = await this.stitch(b, store, 'error', (p) => this.errorLines(b, from, p, counts));
    const files = { output, error: counts.errorLines > 0 ? error : null };
    if (error && !files.error) await this.drop(store, error);
    const done = await this.repo.complete(batchId, from, files, counts.unfinished, this.cfg.files.retentionMs).catch(async (e: unknown) => {
      for (const f of [output, error]) if (f) await this.drop(store, f);
      throw e;
    });
    if (!done) {
      for (const f of [output, files.error]) if (f) await this.drop(store, f);
      return;
    }
    // The parts served their purpose: every one any attempt wrote goes (the output file is a copy).
    for (const blob of await this.repo.blobsOf(batchId)) {
      await this.blobs
        .of(blob.store)
        .delete(blob.key)
        .catch(() => undefined);
      await this.repo.forgetBlob(blob.key);
    }
    this.logger.log(`file batch ${batchId} ${from} → done (${b.file.requestsCompleted} answered, ${counts.errorLines} error lines)`);
  }

  private async stitch(
    b: FileBatchRow,
    store: BlobStore,
    what: 'output' | 'error',
    lines: (p: PartRow) => AsyncIterable<Buffer>,
  ): Promise<StitchedFile | null> {
    const id = newFileId();
    await this.repo.beginFile(id, b.owner!, `batch_${b.id.replace(/-/g, '')}_${what}.jsonl`, store.kind, UPLOAD_GRACE_MS);
    let count = 0;
    const repo = this.repo;
    async function* all(): AsyncGenerator<Buffer> {
      for (let from = 0; ;) {
        const page = await repo.parts(b.id, from, PAGE);
        if (page.length === 0) return;
        for (const p of page) {
          for await (const c of lines(p)) {
            for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) count++;
            yield c;
          }
        }
        from = page.at(-1)!.idx + 1;
      }
    }
    try {
      const info = await store.put(id, all());
      return { id, bytes: info.size, lines: count, sha256: info.sha256 };
    } catch (e) {
      await this.repo.discardFile(id).catch(() => undefined);
      throw e;
    }
  }

  private async *partLines(key: string | null): AsyncGenerator<Buffer> {
    if (!key) return;
    for await (const c of await this.blobs.primary.get(key)) yield c as Buffer;
  }

  private async *errorLines(b: FileBatchRow, state: string, p: PartRow, counts: { unfinished: number; errorLines: number }): AsyncGenerator<Buffer> {
    if (p.state === 'done') {
      for await (const c of this.partLines(p.errorPart)) {
        for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) counts.errorLines++;
        yield c;
      }
      return;
    }
    // Never answered: each line of the range, with its custom_id when the input still reads.
    const why = unanswered(state, p);
    let lines: { line: number; text: string }[] = [];
    try {
      lines = splitRange(await readPayload(this.blobs.of(b.file.inputBlobStore), b.file.inputBlobKey, p), p.firstLine);
    } catch {
      lines = [];
    }
    let s = '';
    for (const { line, text } of lines) {
      let customId: string | null = null;
      try {
        const v = JSON.parse(text) as { custom_id?: unknown };
        if (typeof v.custom_id === 'string') customId = v.custom_id;
      } catch {
        // the line's own problem; it has no answer either way
      }
      s += unansweredLine(b.id, line, customId, why.code, why.message);
    }
    // A dead chunk's lines were counted as failed when it was dead-lettered (items_failed).
    if (p.state !== 'dead') counts.unfinished += p.lines;
    counts.errorLines += lines.length;
    if (s) yield Buffer.from(s, 'utf8');
  }

  private async drop(store: BlobStore, f: StitchedFile): Promise<void> {
    await store.delete(f.id).catch(() => undefined);
    await this.repo.discardFile(f.id).catch(() => undefined);
  }
}
