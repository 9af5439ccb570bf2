import { Inject, Injectable } from '@nestjs/common';
import type { PinoLogger } from '@tandem/shared';
import { BatchRepository } from '../batches/batch.repository';
import { ChunkRepository } from '../batches/chunk.repository';
import type { ChunkOutcome, ChunkWork } from '../batches/batch.types';
import { fanInOf } from '../jobs/fan-in';
import { ReducerRegistry } from '../reducers/reducer.registry';
import { sdkLogger } from '../user-tasks/user-task.adapter';
import { TaskRegistry } from '../tasks/task.registry';
import { BatchMetrics } from '../metrics/batch.metrics';
import { ChunkQueueService } from '../jobs/chunk-queue.service';
import { FileChunkProcessor, type ChunkParts } from '../file-batches/file-chunk.processor';
import { RunAccounting, type RunPlan } from './run-accounting';
import { BlobStores } from '@tandem/persistence';
import { BatchCapacity } from '@tandem/scheduler';
import { chordChunkBytes } from '../batches/chord-items';
import { ndjsonItemsOf } from '@tandem/inference';
import { chunkLines } from '../file-batches/file-scan';

export type ChunkRunResult = 'committed' | 'duplicate' | 'skipped' | 'paused' | 'dead';

/** Thrown to make BullMQ retry the chunk with backoff; the error is already recorded in Postgres. */
export class ChunkAttemptError extends Error {}

const CONTROL_POLL_MS = 500;

/** The app's pino logger for tasks (TaskContext.log), bound per chunk. */
export const TASK_LOGGER = Symbol('TASK_LOGGER');

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
    private readonly reducers: ReducerRegistry,
    private readonly metrics: BatchMetrics,
    @Inject(TASK_LOGGER) private readonly taskLog: PinoLogger,
    private readonly files: FileChunkProcessor,
    private readonly queue: ChunkQueueService,
    private readonly accounting: RunAccounting,
    private readonly blobs: BlobStores,
    @Inject(BatchCapacity) private readonly capacity: BatchCapacity,
  ) {}

  async run(batchId: string, idx: number, attempt: number, maxAttempts: number): Promise<ChunkRunResult> {
    const work = await this.chunks.loadWork(batchId, idx);
    if (!work || work.chunkState !== 'pending') return 'duplicate';
    if (work.batchState === 'paused') return 'paused'; // stays pending; resume re-enqueues it
    if (work.batchState !== 'queued' && work.batchState !== 'running') return 'skipped';
    const plan = await this.accounting.plan(batchId, work);
    try {
      return await this.attempt(batchId, idx, attempt, maxAttempts, work, plan);
    } finally {
      // Every attempt's unit time is charged, committed or not: the device was held either way.
      await this.accounting.charge(batchId, plan.usage);
    }
  }

  private async attempt(batchId: string, idx: number, attempt: number, maxAttempts: number, work: ChunkWork, plan: RunPlan): Promise<ChunkRunResult> {
    if (!this.started.has(batchId)) {
      await this.chunks.markStarted(batchId);
      this.started.add(batchId);
      if (this.started.size > 10_000) this.started.clear();
    }
    const fanIn = fanInOf(this.reducers, work.reducer);

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
    let outputs: unknown[] = [];
    let partial: unknown;
    let parts: ChunkParts | null = null;
    try {
      // Not while nothing this worker could take would run it (an online-demand hint's hold, or
      // every unit revoked in the borrowing hold-down): the payload would only be read and wait.
      // A read in flight then pauses between its pieces.
      const between = work.kind === 'file' || work.model ? () => this.capacity.whenRunnable(abort.signal) : undefined;
      await between?.();
      if (abort.signal.aborted) throw abort.signal.reason;
      if (work.kind === 'file') {
        // A file batch's chunk: its byte range of the input, answered line by line into part blobs.
        parts = await this.files.process(batchId, work, {
          signal: abort.signal,
          priority: plan.priority,
          mayBorrow: work.mayBorrow,
          deadline: plan.deadline,
          preferOwned: plan.preferOwned,
          usage: plan.usage,
          between,
        });
      } else {
        ({ outputs, partial } = await this.runChord(batchId, idx, attempt, work, abort.signal, plan, between));
      }
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
        const dead = await this.chunks.deadLetter(batchId, idx, attempt, msg, fanIn);
        if (dead.finalized && work.kind === 'file') await this.queue.enqueueFinalize(batchId);
        return 'dead';
      }
      await this.chunks.recordAttemptFailure(batchId, idx, attempt, msg);
      throw new ChunkAttemptError(msg);
    }
    clearInterval(poll);
    if (parts) {
      const done = await this.chunks.commitParts(batchId, idx, attempt, { output: parts.output, error: parts.error, ok: parts.ok, failed: parts.failed });
      if (!done.counted) await this.files.discard(batchId, parts); // another attempt's parts are the chunk's
      if (done.finalized) await this.queue.enqueueFinalize(batchId);
      if (done.counted) {
        this.metrics.chunkProcessed(parts.ok + parts.failed);
        await this.accounting.measured(work.model, parts.ran, plan.usage);
      }
      return done.counted ? 'committed' : 'duplicate';
    }
    const outcome: ChunkOutcome = await this.chunks.commit(batchId, idx, attempt, outputs, partial, fanIn);
    if (outcome.counted) this.metrics.chunkProcessed(outputs.length);
    return outcome.counted ? 'committed' : 'duplicate';
  }

  /** A chord's chunk: the task over its items, reduced to a partial. */
  private async runChord(
    batchId: string,
    idx: number,
    attempt: number,
    work: ChunkWork,
    signal: AbortSignal,
    plan: RunPlan,
    between?: () => Promise<void>,
  ): Promise<{ outputs: unknown[]; partial: unknown }> {
    const reducer = this.reducers.find(work.reducer);
    const task = this.tasks.find(work.task);
    // A worker whose copy of the file failed to load (or lacks it) fails the chunk with the reason.
    if (!task) throw new Error(`${this.tasks.whyMissing(work.task)} in this worker`);
    if (!reducer) throw new Error(`${this.reducers.whyMissing(work.reducer)} in this worker`);
    const log = sdkLogger(this.taskLog, { task: work.task, batch: batchId, chunk: idx, attempt });
    const ctx = { batchId, chunk: idx, attempt, signal, model: work.model, priority: plan.priority, mayBorrow: work.mayBorrow, log, usage: plan.usage };
    // Inline rows carry the items; an NDJSON upload's chunk is its byte range of the uploaded file,
    // handed raw to a task that parses it on its own share, else parsed here.
    const bytes = await chordChunkBytes(work, this.blobs, between);
    let outputs: unknown[];
    if (bytes && task.runLines) {
      const lines = chunkLines(bytes, 1);
      if (lines.lines.length !== work.itemCount) throw new Error(`chunk range holds ${lines.lines.length} items, expected ${work.itemCount}`);
      outputs = await task.runLines(lines, ctx);
    } else {
      outputs = await task.run(bytes ? ndjsonItemsOf(bytes, work.itemCount) : work.items, ctx);
    }
    const count = bytes ? work.itemCount : work.items.length;
    if (!Array.isArray(outputs) || outputs.length !== count) {
      throw new Error(`task ${work.task} returned ${Array.isArray(outputs) ? outputs.length : 'no'} outputs for ${count} items`);
    }
    return { outputs, partial: reducer.partial(outputs) };
  }
}
