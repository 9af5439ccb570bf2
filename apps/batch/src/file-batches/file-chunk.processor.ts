import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { BlobStores, type BlobStore } from '@tandem/persistence';
import type { ChunkWork } from '../batches/batch.types';
import { readPayload } from '../batches/chunk-payload';
import { FileBatchRepository } from './file-batch.repository';
import type { FileBatchInfo } from './file-batch.types';
import { FileInferRunner, type RunContext } from './file-infer.runner';
import { chunkLines } from './file-scan';
import { errorLine, outputLineJson } from './output-lines';
import { parseInferUrl, wrongUrlFailure } from './request-lines';

/** What one attempt wrote; the chunk's if its commit flips it. */
export interface ChunkParts {
  output: string | null;
  error: string | null;
  ok: number;
  failed: number;
  /** Lines answered 200 by units (the throughput sample; refused lines are not). */
  ran: number;
  store: BlobStore;
}

/**
 * One chunk of a file batch: its byte range of the input file, cut into lines and sent raw to
 * batch units, which check and decode each line as the gateway would, run the valid ones as
 * model batches and encode every response as online encodes it (FileInferRunner); the output
 * and error lines are written as two part blobs. Nothing is visible until
 * ChunkRepository.commitParts names them.
 */
@Injectable()
export class FileChunkProcessor {
  private readonly meta = new Map<string, FileBatchInfo>();
  private readonly dups = new Map<string, ReadonlySet<number>>();

  constructor(
    private readonly repo: FileBatchRepository,
    private readonly blobs: BlobStores,
    private readonly infer: FileInferRunner,
  ) {}

  async process(batchId: string, work: ChunkWork, ctx: RunContext): Promise<ChunkParts> {
    const f = await this.info(batchId);
    const range = work.range;
    if (!range) throw new Error('file batch chunk without a byte range');
    const bytes = await readPayload(this.blobs.of(f.inputBlobStore), f.inputBlobKey, range, ctx.between);
    const url = parseInferUrl(f.endpoint);
    if (!url) throw new Error(`bad stored endpoint ${f.endpoint}`);
    await this.infer.model(url); // a model that cannot be loaded fails the chunk, lines or not
    const chunk = chunkLines(bytes, range.firstLine);
    const answers = chunk.lines.length > 0 ? await this.infer.runLines(url, f.endpoint, chunk, this.duplicates(batchId, f), ctx) : [];
    let out = '';
    let err = '';
    let ok = 0;
    let failed = 0;
    for (const a of answers) {
      if ('body' in a) {
        out += outputLineJson(batchId, a.line, a.customId, a.body);
        ok++;
        continue;
      }
      const x = 'url' in a ? wrongUrlFailure(a.url, f.endpoint, (u) => this.infer.resolveModel(u)) : a;
      err += errorLine(batchId, a.line, a.customId, x.status, x.message);
      failed++;
    }
    const store = this.blobs.primary;
    return { output: await this.put(batchId, work, store, out), error: await this.put(batchId, work, store, err), ok, failed, ran: ok, store };
  }

  /** A part under a key of its own (attempts never collide); recorded first, so it is deleted whatever happens. */
  private async put(batchId: string, work: ChunkWork, store: BlobStore, text: string): Promise<string | null> {
    if (text === '') return null;
    const key = `part-${batchId.replace(/-/g, '')}-${randomBytes(6).toString('hex')}`;
    await this.repo.registerBlob(batchId, key, store.kind);
    await store.put(
      key,
      (async function* () {
        yield Buffer.from(text, 'utf8');
      })(),
    );
    return key;
  }

  /** A duplicate attempt's parts: never named by the chunk, deleted now. */
  async discard(batchId: string, parts: ChunkParts): Promise<void> {
    for (const key of [parts.output, parts.error]) {
      if (!key) continue;
      await parts.store.delete(key).catch(() => undefined);
      await this.repo.forgetBlob(key).catch(() => undefined);
    }
  }

  /** The batch's duplicate custom_id lines as a set (built once per batch, not per chunk). */
  private duplicates(batchId: string, f: FileBatchInfo): ReadonlySet<number> {
    let d = this.dups.get(batchId);
    if (!d) {
      if (this.dups.size > 100) this.dups.clear();
      this.dups.set(batchId, (d = new Set(f.duplicateLines)));
    }
    return d;
  }

  private async info(batchId: string): Promise<FileBatchInfo> {
    let f = this.meta.get(batchId);
    if (!f) {
      const row = await this.repo.get(batchId);
      if (!row?.file) throw new Error(`batch ${batchId} is not a file batch`);
      f = row.file;
      if (this.meta.size > 1000) this.meta.clear();
      this.meta.set(batchId, f);
    }
    return f;
  }
}
