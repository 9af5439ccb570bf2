import { Inject, Injectable, Logger } from '@nestjs/common';
import { UnitUsage } from '@tandem/scheduler';
import type { ChunkWork } from '../batches/batch.types';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { isUrgent } from '../accounting/deadline-estimator';
import { UsageRepository, type DeadlineState } from '../accounting/usage.repository';
import { BatchMetrics } from '../metrics/batch.metrics';

/** How a chunk's runs ask for units: its deadline (EDF), and whether it is urgent. */
export interface RunPlan {
  priority: number;
  deadline?: number;
  preferOwned: boolean;
  usage: UnitUsage;
}

/** Urgency is re-read at most this often per batch (one small query per batch, not per chunk). */
const STATE_TTL_MS = 2_000;
/** An urgent run's capacity priority is raised above every API priority (0..100). */
const URGENT_BOOST = 101;

/**
 * The worker's side of deadlines and cost: plans each chunk's unit requests (EDF by the file
 * batch's deadline; owned units first and a raised priority once its slack is under 25 %), and
 * after each attempt charges the unit time it used to the batch and its owner, and feeds the
 * model's throughput from committed chunks.
 */
@Injectable()
export class RunAccounting {
  private readonly logger = new Logger('RunAccounting');
  private readonly states = new Map<string, { at: number; state: DeadlineState | null }>();
  private readonly urgent = new Set<string>();

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly repo: UsageRepository,
    private readonly metrics: BatchMetrics,
  ) {}

  async plan(batchId: string, work: ChunkWork): Promise<RunPlan> {
    const usage = new UnitUsage();
    if (work.kind !== 'file') return { priority: work.priority, preferOwned: false, usage };
    const s = await this.state(batchId);
    if (!s) return { priority: work.priority, preferOwned: false, usage };
    const urgent = isUrgent(s, Date.now());
    if (urgent && !this.urgent.has(batchId)) {
      this.urgent.add(batchId);
      if (this.urgent.size > 10_000) this.urgent.clear();
      this.logger.log(
        { batch: batchId, remaining: s.remaining, deadline: s.deadline.toISOString() },
        'batch is near its deadline: owned units first, priority raised',
      );
    }
    return { priority: urgent ? work.priority + URGENT_BOOST : work.priority, deadline: s.deadline.getTime(), preferOwned: urgent, usage };
  }

  /** After an attempt (whatever its outcome: the device time was spent). Never throws: accounting must not fail a chunk. */
  async charge(batchId: string, usage: UnitUsage): Promise<void> {
    if (usage.totalMs <= 0) return;
    const owned = usage.ownedMs / 1000;
    const borrowed = usage.borrowedMs / 1000;
    try {
      const owner = await this.repo.addDeviceSeconds(batchId, owned, borrowed);
      if (owner !== null) this.metrics.deviceSeconds(owner, owned, borrowed);
    } catch (e) {
      this.logger.warn({ err: e, batch: batchId }, 'device-seconds not recorded');
    }
  }

  /** A committed file chunk: `lines` ran on units for `usage` unit time. */
  async measured(model: string | null, lines: number, usage: UnitUsage): Promise<void> {
    if (!model || lines <= 0 || usage.totalMs <= 0) return;
    await this.repo
      .addThroughput(model, this.cfg.jobs.deviceKind, lines, usage.totalMs / 1000)
      .catch((e: unknown) => this.logger.warn({ err: e }, 'throughput not recorded'));
  }

  private async state(batchId: string): Promise<DeadlineState | null> {
    const hit = this.states.get(batchId);
    if (hit && Date.now() - hit.at < STATE_TTL_MS) return hit.state;
    const state = await this.repo.deadlineState(batchId, this.cfg.jobs.deviceKind).catch(() => hit?.state ?? null);
    if (this.states.size > 1000) this.states.clear();
    this.states.set(batchId, { at: Date.now(), state });
    return state;
  }
}
