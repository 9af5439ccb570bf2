import { Injectable } from '@nestjs/common';
import type { BatchState } from '@tandem/persistence';
import { DomainException } from '@tandem/shared';
import { BatchRepository } from './batch.repository';
import { ChunkRepository } from './chunk.repository';
import type { BatchRow, ChunkPage, Tenant } from './batch.types';
import { toView, type BatchView } from './batch.view';

const RESULT_PAGE_CHUNKS = 20;

/**
 * Reads: one batch, lists, ordered results, errors. Every read is scoped to the tenant: another
 * key's batch is "not found", exactly like a batch that does not exist.
 */
@Injectable()
export class BatchQueryService {
  constructor(
    private readonly batches: BatchRepository,
    private readonly chunks: ChunkRepository,
  ) {}

  async row(id: string, tenant: Tenant): Promise<BatchRow> {
    const b = await this.batches.get(id, tenant);
    if (!b || b.state === 'submitting') throw DomainException.notFound(`batch ${id} not found`);
    return b;
  }

  async get(id: string, tenant: Tenant): Promise<BatchView> {
    return toView(await this.row(id, tenant));
  }

  async list(q: { state?: BatchState; limit: number; cursor?: number }, tenant: Tenant): Promise<{ items: BatchView[]; nextCursor: string | null }> {
    const rows = await this.batches.list(q, tenant);
    const last = rows.length === q.limit ? rows[rows.length - 1] : undefined;
    return { items: rows.map((r) => toView(r)), nextCursor: last ? String(last.seq) : null };
  }

  /**
   * Results as NDJSON lines in item order, a few chunks per query so memory stays flat.
   * Items of chunks not (yet) done carry their chunk state instead of an output.
   */
  async *resultLines(id: string, tenant: Tenant): AsyncGenerator<string> {
    await this.row(id, tenant);
    let from = 0;
    for (;;) {
      const page = await this.chunks.page(id, from, RESULT_PAGE_CHUNKS);
      if (page.length === 0) return;
      for (const c of page) yield linesOf(c);
      from = page[page.length - 1].idx + 1;
    }
  }

  async errors(id: string, tenant: Tenant, limit: number, cursor = 0): Promise<{ items: ErrorView[]; nextCursor: string | null }> {
    await this.row(id, tenant);
    const page = await this.chunks.errors(id, cursor, limit);
    const items = page.map((c) => ({
      chunk: c.idx,
      firstItem: c.firstItem,
      lastItem: c.firstItem + c.itemCount - 1,
      state: c.state === 'dead' ? 'dead-letter' : c.state,
      attempts: c.attempts,
      error: c.error ?? '',
    }));
    return { items, nextCursor: page.length === limit ? String(page[page.length - 1].idx + 1) : null };
  }
}

export interface ErrorView {
  chunk: number;
  firstItem: number;
  lastItem: number;
  state: string;
  attempts: number;
  error: string;
}

function linesOf(c: ChunkPage): string {
  let s = '';
  if (c.state === 'done' && c.outputs) {
    for (let i = 0; i < c.outputs.length; i++) s += `{"index":${c.firstItem + i},"output":${JSON.stringify(c.outputs[i])}}\n`;
    return s;
  }
  const tail = c.state === 'dead' ? `,"error":${JSON.stringify(c.error ?? 'failed')}` : '';
  for (let i = 0; i < c.itemCount; i++) s += `{"index":${c.firstItem + i},"state":"${c.state}"${tail}}\n`;
  return s;
}
