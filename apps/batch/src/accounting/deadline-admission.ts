import { Inject, Injectable } from '@nestjs/common';
import { DomainException, ErrorCode } from '@tandem/shared';
import type { BatchEstimate } from '../batches/batch.types';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { estimateCompletion } from './deadline-estimator';
import { UsageRepository } from './usage.repository';

/**
 * A file batch's deadline as a promise: admitted only if, at its model's measured per-unit rate
 * on the owned batch units (borrowed share is not promised), it finishes in time behind the
 * earlier-deadline work already admitted. Without a measurement, or without an owned batch
 * share, there is nothing to promise on: it is accepted best-effort (`estimate: null`).
 */
@Injectable()
export class DeadlineAdmission {
  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly repo: UsageRepository,
  ) {}

  /** The estimate to record, null when none can be made; throws 422 naming the earliest feasible completion. */
  async judge(model: string, lines: number, deadline: number, now = Date.now()): Promise<BatchEstimate | null> {
    const kind = this.cfg.jobs.deviceKind;
    const rate = await this.repo.rate(model, kind);
    if (rate === null || rate <= 0) return null;
    const units = await this.repo.ownedUnits(kind);
    if (units <= 0) return null;
    const e = estimateCompletion({ now, deadline, lines, rate, units, admitted: await this.repo.admitted(kind) });
    if (!e.feasible) {
      throw new DomainException(
        ErrorCode.Unprocessable,
        `cannot finish ${lines} requests by ${new Date(deadline).toISOString()}: at ${rate.toPrecision(3)} requests/s per unit on ${units} owned batch unit(s), behind ${Math.round(e.aheadSeconds)} s of earlier-deadline work; earliest feasible completion ${new Date(Math.ceil(e.completionAt / 1000) * 1000).toISOString()}`,
      );
    }
    const r3 = (x: number): number => Math.round(x * 1000) / 1000;
    return {
      completionAt: new Date(e.completionAt).toISOString(),
      ownSeconds: r3(e.ownSeconds),
      aheadSeconds: r3(e.aheadSeconds),
      perUnitRate: r3(rate),
      units,
    };
  }
}
