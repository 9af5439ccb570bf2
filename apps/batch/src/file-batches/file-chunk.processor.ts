import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { encodeInferResponse } from '@tandem/inference';
import { BlobStores, type BlobStore } from '@tandem/persistence';
import type { ChunkWork } from '../batches/batch.types';
import { FileBatchRepository } from './file-batch.repository';
import type { FileBatchInfo } from './file-batch.types';
import { FileInferRunner, type RunContext } from './file-infer.runner';
import { splitRange } from './file-scan';
import { errorLine, outputLine } from './output-lines';
import { parseInferUrl, parseRequestLine, type LineContext, type LineFailure, type LineRequest } from './request-lines';

/** What one attempt wrote; the chunk's if its commit flips it. */
export interface ChunkParts {
  output: string | null;
  error: string | null;
  ok: number;
  failed: number;
  /** Lines that ran on units (the throughput sample; lines refused before inference are not). */
  ran: number;
  store: BlobStore;
}

/** Reads the whole stream (a chunk is a few MiB at most: BATCH_FILE_CHUNK_BYTES plus one line). */
export async function readAll(s: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(parts);
}

/**
 * One chunk of a file batch: its byte range of the input file → each line checked and decoded
 * as the gateway would (400/404 lines answered here), the valid ones run as model batches on
 * batch units, every response encoded as online encodes it; the output and error lines are
 * written as two part blobs. Nothing is visible until ChunkRepository.commitParts names them.
 */
@Injectable()
export class FileChunkProcessor {
  private readonly meta = new Map<string, FileBatchInfo>();

  constructor(
    private readonly repo: FileBatchRepository,
    private readonly blobs: BlobStores,
    private readonly infer: FileInferRunner,
  ) {}

  async process(batchId: string, work: ChunkWork, ctx: RunContext): Promise<ChunkParts> {
    const f = await this.info(batchId);
    const range = work.range;
    if (!range) throw new Error('file batch chunk without a byte range');
    const bytes = await readAll(await this.blobs.of(f.inputBlobStore).get(f.inputBlobKey, { start: range.start, end: range.end }));
    if (bytes.length !== range.end - range.start) throw new Error(`input file ${f.inputFileId} is shorter than the batch's chunks (deleted or replaced?)`);
    const url = parseInferUrl(f.endpoint);
    if (!url) throw new Error(`bad stored endpoint ${f.endpoint}`);
    const model = await this.infer.model(url);
    const lctx: LineContext = { endpoint: f.endpoint, model, duplicates: new Set(f.duplicateLines), resolveModel: (u) => this.infer.resolveModel(u) };
    const parsed = splitRange(bytes, range.firstLine).map(({ line, text }) => parseRequestLine(text, line, lctx));
    const requests = parsed.filter((p): p is LineRequest => p.kind === 'request');
    const results = requests.length > 0 ? await this.infer.run(url, requests, ctx) : new Map();
    let out = '';
    let err = '';
    let ok = 0;
    let failed = 0;
    for (const p of parsed) {
      const fail = (x: Pick<LineFailure, 'status' | 'message'>): void => {
        err += errorLine(batchId, p.line, p.customId, x.status, x.message);
        failed++;
      };
      if (p.kind === 'failed') {
        fail(p);
        continue;
      }
      const r = results.get(p.line);
      if (!r) throw new Error(`line ${p.line} has no result`);
      if (!r.ok) {
        fail(r);
        continue;
      }
      const body = encodeInferResponse({ model: url.model, version: model.version, outputs: r.outputs, queueMs: 0, computeMs: 0, batchItems: 1 }, p.decoded.id, () => false).header;
      out += outputLine(batchId, p.line, p.customId, body);
      ok++;
    }
    const store = this.blobs.primary;
    return { output: await this.put(batchId, work, store, out), error: await this.put(batchId, work, store, err), ok, failed, ran: requests.length, store };
  }

  /** A part under a key of its own (attempts never collide); recorded first, so it is deleted whatever happens. */
  private async put(batchId: string, work: ChunkWork, store: BlobStore, text: string): Promise<string | null> {
    if (text === '') return null;
    const key = `part-${batchId.replace(/-/g, '')}-${randomBytes(6).toString('hex')}`;
    await this.repo.registerBlob(batchId, key, store.kind);
    await store.put(key, (async function* () {
      yield Buffer.from(text, 'utf8');
    })());
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
