import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import type { JobsOptions, Queue } from 'bullmq';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { BatchMetrics } from '../metrics/batch.metrics';
import { BATCH_CHUNK_QUEUE, chunkJobId, finalizeJobId, JOB_NAMES, type ChunkJobData, type FinalizeJobData } from './job-catalogue';

const BULK = 1_000;

/** Deadline slots per API priority: BullMQ priorities end at 2^21, and 101 × 20,000 fits. */
const DEADLINE_SLOTS = 20_000;

/**
 * API priority (0..100, higher first) → BullMQ priority (1 = first). Every job is prioritized so
 * order is consistent. Within a priority, earlier deadlines first (EDF) by the deadline's minute;
 * no deadline is last. Minutes wrap every ~13.9 days (20,000 slots), so near the wrap point a
 * later deadline can be taken first: the worker's unit queue orders by the exact deadline anyway.
 */
export function bullPriority(priority: number, deadline?: Date | null): number {
  const tier = 100 - Math.min(100, Math.max(0, priority));
  const slot = deadline ? Math.floor(deadline.getTime() / 60_000) % (DEADLINE_SLOTS - 1) : DEADLINE_SLOTS - 1;
  return tier * DEADLINE_SLOTS + slot + 2; // 1 is the finalize job's
}

/** Producer side of the chunk queue: bulk enqueue with deterministic ids, depth, removal. */
@Injectable()
export class ChunkQueueService implements OnModuleInit {
  constructor(
    @InjectQueue(BATCH_CHUNK_QUEUE) private readonly queue: Queue<ChunkJobData | FinalizeJobData>,
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly metrics: BatchMetrics,
  ) {}

  onModuleInit(): void {
    this.metrics.setDepthSource(() => this.depth());
  }

  /** Enqueues chunks in bulk; chunks whose job still exists are left alone (same job id). */
  async enqueue(batch: { id: string; priority: number; maxAttempts: number; deadline?: Date | null }, idxs: readonly number[]): Promise<void> {
    const opts: JobsOptions = {
      priority: bullPriority(batch.priority, batch.deadline),
      attempts: batch.maxAttempts,
      backoff: { type: 'exponential', delay: this.cfg.jobs.backoffMs, jitter: 0.5 },
      // Postgres keeps the outcome; the queue keeps nothing, so a re-enqueue is never shadowed.
      removeOnComplete: true,
      removeOnFail: true,
    };
    for (let i = 0; i < idxs.length; i += BULK) {
      const jobs = idxs.slice(i, i + BULK).map((chunk) => ({
        name: JOB_NAMES.chunk,
        data: { batchId: batch.id, chunk },
        opts: { ...opts, jobId: chunkJobId(batch.id, chunk) },
      }));
      await this.queue.addBulk(jobs);
    }
  }

  /** The finalize job of a file batch (first in line: it ends a batch); a job still queued is left alone. */
  async enqueueFinalize(batchId: string): Promise<void> {
    await this.queue.add(
      JOB_NAMES.finalize,
      { batchId },
      {
        jobId: finalizeJobId(batchId),
        priority: 1,
        attempts: 5,
        backoff: { type: 'exponential', delay: this.cfg.jobs.backoffMs, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  /** Chunks of `idxs` whose job the queue store no longer has. */
  async missing(batchId: string, idxs: readonly number[]): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < idxs.length; i += 200) {
      const part = idxs.slice(i, i + 200);
      const states = await Promise.all(part.map((c) => this.queue.getJobState(chunkJobId(batchId, c))));
      states.forEach((s, k) => {
        if (s === 'unknown' || s === 'completed' || s === 'failed') out.push(part[k]);
      });
    }
    return out;
  }

  /** Best-effort removal of waiting jobs (cancel/pause); workers also skip them by Postgres state. */
  async remove(batchId: string, idxs: readonly number[]): Promise<void> {
    for (let i = 0; i < idxs.length; i += 200) {
      await Promise.all(idxs.slice(i, i + 200).map((c) => this.queue.remove(chunkJobId(batchId, c)).catch(() => 0)));
    }
  }

  async depth(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
  }
}
