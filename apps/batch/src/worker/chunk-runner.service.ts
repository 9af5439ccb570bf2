import { Injectable } from '@nestjs/common';
import { BatchRepository } from '../batches/batch.repository';
import { ChunkRepository } from '../batches/chunk.repository';
import type { ChunkOutcome } from '../batches/batch.types';
import { findReducer } from '../reducers/reducer.registry';
import { TaskRegistry } from '../tasks/task.registry';
import { BatchMetrics } from '../metrics/batch.metrics';

export type ChunkRunResult = 'committed' | 'duplicate' | 'skipped' | 'paused' | 'dead';

/** Thrown to make BullMQ retry the chunk with backoff; the error is already recorded in Postgres. */
export class ChunkAttemptError extends Error {}

const CONTROL_POLL_MS = 500;

/**
 * Runs one chunk: load it from Postgres, run the task (abortable on cancel/pause), reduce its
 * outputs to a partial, commit both in one transaction. The last failed attempt dead-letters
 * the chunk instead of throwing, so the fan-in still fires.
 */
@Injectable()
export class ChunkRunner {
  /** Batches this process already marked started (saves a write per chunk). */
  private readonly started = new Set<string>();

  constructor(
    private readonly batches: BatchRepository,
    private readonly chunks: ChunkRepository,
    private readonly tasks: TaskRegistry,
    private readonly metrics: BatchMetrics,
  ) {}

  async run(batchId: string, idx: number, attempt: number, maxAttempts: number): Promise<ChunkRunResult> {
    const work = await this.chunks.loadWork(batchId, idx);
    if (!work || work.chunkState !== 'pending') return 'duplicate';
    if (work.batchState === 'paused') return 'paused'; // stays pending; resume re-enqueues it
    if (work.batchState !== 'queued' && work.batchState !== 'running') return 'skipped';
    if (!this.started.has(batchId)) {
      await this.chunks.markStarted(batchId);
      this.started.add(batchId);
      if (this.started.size > 10_000) this.started.clear();
    }
    const reducer = findReducer(work.reducer);
    const task = this.tasks.find(work.task);
    const fanIn = (partials: unknown[]): unknown => {
      if (!reducer) throw new Error(`unknown reducer ${work.reducer}`);
      let acc = reducer.empty();
      for (const p of partials) acc = reducer.combine(acc, p);
      return reducer.finalize(acc);
    };

    const abort = new AbortController();
    const poll = setInterval(() => {
      void this.batches.stateOf(batchId).then(
        (s) => {
          if (s !== 'queued' && s !== 'running') abort.abort(new Error(`batch is ${s}`));
        },
        () => undefined,
      );
    }, CONTROL_POLL_MS);
    poll.unref();
    let outputs: unknown[];
    let partial: unknown;
    try {
      if (!task) throw new Error(`task ${work.task} is not registered in this worker`);
      if (!reducer) throw new Error(`reducer ${work.reducer} is not registered in this worker`);
      outputs = await task.run(work.items, { batchId, chunk: idx, attempt, signal: abort.signal, model: work.model, priority: work.priority, mayBorrow: work.mayBorrow });
      if (!Array.isArray(outputs) || outputs.length !== work.items.length) {
        throw new Error(`task ${work.task} returned ${Array.isArray(outputs) ? outputs.length : 'no'} outputs for ${work.items.length} items`);
      }
      partial = reducer.partial(outputs);
    } catch (e) {
      clearInterval(poll);
      if (abort.signal.aborted) {
        // Cancelled or paused mid-chunk: not a failure, so the attempt counted at start is given back.
        await this.chunks.refundAttempt(batchId, idx);
        return 'skipped';
      }
      const msg = e instanceof Error ? e.message : String(e);
      this.metrics.chunkFailed();
      if (attempt >= maxAttempts) {
        await this.chunks.deadLetter(batchId, idx, attempt, msg, fanIn);
        return 'dead';
      }
      await this.chunks.recordAttemptFailure(batchId, idx, attempt, msg);
      throw new ChunkAttemptError(msg);
    }
    clearInterval(poll);
    const outcome: ChunkOutcome = await this.chunks.commit(batchId, idx, attempt, outputs, partial, fanIn);
    if (outcome.counted) this.metrics.chunkProcessed(outputs.length);
    return outcome.counted ? 'committed' : 'duplicate';
  }
}
