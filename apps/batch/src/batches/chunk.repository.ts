import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { BatchState, BlobStoreKind } from '@tandem/persistence';
import type { ChunkOutcome, ChunkPage, ChunkWork } from './batch.types';
import { outputsJson } from './outputs-json';

type Raw = Record<string, unknown>;

/** Combines the partials of all done chunks (in chunk order) into the batch result. */
export type FanIn = (partials: unknown[]) => unknown;

/**
 * Chunk commits and the fan-in. Every settle (done or dead) is one transaction that first flips
 * the chunk from `pending` (so a duplicate delivery changes nothing), then bumps the batch
 * counters; the one transaction whose bump settles the last chunk runs the fan-in. Lock order
 * is always chunk row, then batch row.
 */
@Injectable()
export class ChunkRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * Loads a chunk to run and counts the attempt in Postgres as it starts, so attempts whose
   * worker process died (no error recorded, the queue's own count not bumped) still count. A
   * pending chunk that already used `max_attempts` comes back as `exhausted` (not run; the
   * reconciler dead-letters it) instead of crashing its worker again.
   */
  async loadWork(batchId: string, idx: number): Promise<ChunkWork | null> {
    const rows = (await this.ds.query(
      `WITH started AS (
         UPDATE batch_chunk c SET attempts = c.attempts + 1 FROM batch b
         WHERE c.batch_id = $1 AND c.idx = $2 AND b.id = c.batch_id AND c.state = 'pending'
           AND b.state IN ('queued','running') AND c.attempts < b.max_attempts
         RETURNING c.idx)
       SELECT b.kind, b.state AS batch_state, b.task, c.start_byte, c.end_byte, c.first_item, c.item_count, b.items_blob_store, b.items_blob_key, b.model, b.reducer, b.priority, b.may_borrow,
              CASE WHEN c.state = 'pending' AND b.state IN ('queued','running') AND NOT EXISTS (SELECT 1 FROM started)
                   THEN 'exhausted' ELSE c.state END AS chunk_state,
              -- The payload only for a chunk that runs now: a cancelled or paused batch's queued
              -- jobs drain without reading megabytes each (Postgres work that would hurt online).
              CASE WHEN EXISTS (SELECT 1 FROM started) THEN c.items ELSE NULL END AS items
       FROM batch_chunk c JOIN batch b ON b.id = c.batch_id WHERE c.batch_id = $1 AND c.idx = $2`,
      [batchId, idx],
    )) as Raw[];
    const r = rows[0];
    if (!r) return null;
    return {
      kind: r.kind === 'file' ? 'file' : 'chord',
      batchState: r.batch_state as BatchState,
      chunkState: r.chunk_state as string,
      task: r.task as string,
      model: (r.model as string | null) ?? null,
      reducer: r.reducer as string,
      priority: Number(r.priority),
      mayBorrow: r.may_borrow !== false,
      items: (r.items as unknown[] | null) ?? [],
      itemCount: Number(r.item_count),
      itemsBlob: r.items_blob_key ? { store: r.items_blob_store as BlobStoreKind, key: r.items_blob_key as string } : null,
      range:
        r.start_byte === null || r.start_byte === undefined
          ? null
          : { start: Number(r.start_byte), end: Number(r.end_byte), firstLine: Number(r.first_item) + 1 },
    };
  }

  /** Marks the batch running when its first chunk starts (once per batch; later calls match nothing). */
  async markStarted(batchId: string): Promise<void> {
    await this.ds.query(
      `UPDATE batch SET started_at = now(), state = CASE WHEN state = 'queued' THEN 'running' ELSE state END
       WHERE id = $1 AND started_at IS NULL`,
      [batchId],
    );
  }

  async commit(batchId: string, idx: number, attempt: number, outputs: unknown[], partial: unknown, fanIn: FanIn): Promise<ChunkOutcome> {
    const json = outputsJson(outputs);
    return this.ds.transaction(async (m) => {
      const [flipped] = (await m.query(
        `UPDATE batch_chunk SET state = 'done', outputs = $3::json, partial = $4::jsonb, attempts = GREATEST(attempts, $5), error = NULL, finished_at = now()
         WHERE batch_id = $1 AND idx = $2 AND state = 'pending' RETURNING item_count`,
        [batchId, idx, json, JSON.stringify(partial), attempt],
      )) as [Raw[], number];
      if (flipped.length === 0) return { counted: false, finalized: false };
      return this.settle(m, batchId, Number(flipped[0].item_count), 'done', fanIn, undefined, Buffer.byteLength(json));
    });
  }

  /**
   * A file batch's chunk: names its part blobs and counts its lines in the transaction that flips
   * it from `pending`, so exactly one attempt's parts are ever the chunk's (a duplicate gets
   * `counted: false` and deletes its own blobs). Settles like any chunk.
   */
  async commitParts(
    batchId: string,
    idx: number,
    attempt: number,
    parts: { output: string | null; error: string | null; ok: number; failed: number },
  ): Promise<ChunkOutcome> {
    return this.ds.transaction(async (m) => {
      const [flipped] = (await m.query(
        `UPDATE batch_chunk SET state = 'done', output_part = $3, error_part = $4, attempts = GREATEST(attempts, $5), error = NULL, finished_at = now()
         WHERE batch_id = $1 AND idx = $2 AND state = 'pending' RETURNING item_count`,
        [batchId, idx, parts.output, parts.error, attempt],
      )) as [Raw[], number];
      if (flipped.length === 0) return { counted: false, finalized: false };
      await m.query(`UPDATE file_batch SET requests_completed = requests_completed + $2, requests_failed = requests_failed + $3 WHERE batch_id = $1`, [
        batchId,
        parts.ok,
        parts.failed,
      ]);
      return this.settle(m, batchId, Number(flipped[0].item_count), 'done', () => null);
    });
  }

  /** Dead-letters the chunk with its error after its last attempt. */
  async deadLetter(batchId: string, idx: number, attempt: number, error: string, fanIn: FanIn): Promise<ChunkOutcome> {
    return this.ds.transaction(async (m) => {
      const [flipped] = (await m.query(
        `UPDATE batch_chunk SET state = 'dead', attempts = GREATEST(attempts, $3), error = $4, finished_at = now()
         WHERE batch_id = $1 AND idx = $2 AND state = 'pending' RETURNING item_count`,
        [batchId, idx, attempt, error.slice(0, 2000)],
      )) as [Raw[], number];
      if (flipped.length === 0) return { counted: false, finalized: false };
      return this.settle(m, batchId, Number(flipped[0].item_count), 'dead', fanIn, `chunk ${idx} failed after ${attempt} attempts: ${error}`.slice(0, 2000));
    });
  }

  /** `outputBytes`: the stored outputs, counted in the batch's stored bytes (the owner's quota). */
  private async settle(
    m: EntityManager,
    batchId: string,
    items: number,
    how: 'done' | 'dead',
    fanIn: FanIn,
    error?: string,
    outputBytes = 0,
  ): Promise<ChunkOutcome> {
    const bump =
      how === 'done' ? 'chunks_done = chunks_done + 1, items_done = items_done + $2' : 'chunks_failed = chunks_failed + 1, items_failed = items_failed + $2';
    const [rows] = (await m.query(
      `UPDATE batch SET ${bump}, stored_bytes = stored_bytes + $3, progressed_at = now(), started_at = COALESCE(started_at, now()),
         state = CASE WHEN state = 'queued' THEN 'running' ELSE state END
       WHERE id = $1 RETURNING kind, state, chunks_done, chunks_failed, chunk_count, failure_policy`,
      [batchId, items, outputBytes],
    )) as [Raw[], number];
    const b = rows[0];
    if (!b) return { counted: true, finalized: false };
    const state = b.state as BatchState;
    if (b.kind === 'file') {
      // A file batch has no reducer: its last settle hands it to the finalizer (stitching the parts).
      if (state !== 'running' || Number(b.chunks_done) + Number(b.chunks_failed) !== Number(b.chunk_count)) return { counted: true, finalized: false };
      await m.query(`UPDATE batch SET state = 'finalizing' WHERE id = $1`, [batchId]);
      await m.query(`UPDATE file_batch SET finalizing_at = now() WHERE batch_id = $1`, [batchId]);
      return { counted: true, finalized: true };
    }
    const open = state === 'running' || state === 'paused';
    // Fail-fast policy: the first dead chunk fails the batch at once; that is its fan-in.
    if (how === 'dead' && b.failure_policy === 'fail' && open) {
      await m.query(`UPDATE batch SET state = 'failed', error = $2, finished_at = now() WHERE id = $1`, [batchId, error]);
      return { counted: true, finalized: true };
    }
    const settled = Number(b.chunks_done) + Number(b.chunks_failed);
    if (!open || settled !== Number(b.chunk_count)) return { counted: true, finalized: false };
    const partials = (await m.query(`SELECT partial FROM batch_chunk WHERE batch_id = $1 AND state = 'done' ORDER BY idx`, [batchId])) as Raw[];
    let result: unknown;
    try {
      result = fanIn(partials.map((p) => p.partial));
    } catch (e) {
      // A reducer that cannot combine (e.g. a result over its size cap) fails the batch, once.
      await m.query(`UPDATE batch SET state = 'failed', error = $2, finished_at = now() WHERE id = $1`, [batchId, `fan-in failed: ${(e as Error).message}`]);
      return { counted: true, finalized: true };
    }
    await m.query(
      `UPDATE batch SET state = 'succeeded', result = $2::jsonb, finished_at = now(),
         error = CASE WHEN chunks_failed > 0 THEN chunks_failed || ' chunk(s) dead-lettered; see /errors' ELSE NULL END
       WHERE id = $1`,
      [batchId, JSON.stringify(result)],
    );
    return { counted: true, finalized: true };
  }

  /** Keeps the latest attempt's error visible while the chunk waits for its retry. */
  /** An attempt that was stopped by a pause or cancel, not failed: it does not count. */
  async refundAttempt(batchId: string, idx: number): Promise<void> {
    await this.ds.query(`UPDATE batch_chunk SET attempts = attempts - 1 WHERE batch_id = $1 AND idx = $2 AND state = 'pending' AND attempts > 0`, [
      batchId,
      idx,
    ]);
  }

  async recordAttemptFailure(batchId: string, idx: number, attempt: number, error: string): Promise<void> {
    await this.ds.query(`UPDATE batch_chunk SET attempts = GREATEST(attempts, $3), error = $4 WHERE batch_id = $1 AND idx = $2 AND state = 'pending'`, [
      batchId,
      idx,
      attempt,
      error.slice(0, 2000),
    ]);
  }

  /** Pending chunks that used every attempt (their workers died): the reconciler dead-letters them. */
  async exhaustedIdxs(batchId: string): Promise<number[]> {
    const rows = (await this.ds.query(
      `SELECT c.idx FROM batch_chunk c JOIN batch b ON b.id = c.batch_id
       WHERE c.batch_id = $1 AND c.state = 'pending' AND c.attempts >= b.max_attempts ORDER BY c.idx`,
      [batchId],
    )) as Raw[];
    return rows.map((r) => Number(r.idx));
  }

  async pendingIdxs(batchId: string): Promise<number[]> {
    const rows = (await this.ds.query(`SELECT idx FROM batch_chunk WHERE batch_id = $1 AND state = 'pending' ORDER BY idx`, [batchId])) as Raw[];
    return rows.map((r) => Number(r.idx));
  }

  /** Chunks in order from `fromIdx`, with outputs: the results stream pages through these. */
  async page(batchId: string, fromIdx: number, limit: number): Promise<ChunkPage[]> {
    const rows = (await this.ds.query(
      `SELECT idx, first_item, item_count, state, outputs, error, attempts FROM batch_chunk
       WHERE batch_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3`,
      [batchId, fromIdx, limit],
    )) as Raw[];
    return rows.map(toPage);
  }

  /** Dead-lettered chunks, and pending ones whose last attempt failed. */
  async errors(batchId: string, fromIdx: number, limit: number): Promise<ChunkPage[]> {
    const rows = (await this.ds.query(
      `SELECT idx, first_item, item_count, state, NULL AS outputs, error, attempts FROM batch_chunk
       WHERE batch_id = $1 AND idx >= $2 AND error IS NOT NULL ORDER BY idx LIMIT $3`,
      [batchId, fromIdx, limit],
    )) as Raw[];
    return rows.map(toPage);
  }
}

function toPage(r: Raw): ChunkPage {
  return {
    idx: Number(r.idx),
    firstItem: Number(r.first_item),
    itemCount: Number(r.item_count),
    state: r.state as string,
    outputs: (r.outputs as unknown[] | null) ?? null,
    error: (r.error as string | null) ?? null,
    attempts: Number(r.attempts),
  };
}
