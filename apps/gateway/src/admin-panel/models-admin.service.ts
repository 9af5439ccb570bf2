import { Injectable } from '@nestjs/common';
import { AuditLogRepository } from '@tandem/persistence';
import { METRIC_PREFIX } from '@tandem/shared';
import { AutoscalerService } from '../autoscaler/autoscaler.service';
import { InferenceService } from '../inference/inference.service';
import { histogramQuantileByModel } from './latency-quantile';

export interface ModelVersionView {
  version: string;
  state: 'loading' | 'ready' | 'failed' | 'not loaded';
  error: string | null;
  replicas: number;
  queueDepth: number;
}

export interface ModelView {
  name: string;
  versions: ModelVersionView[];
  replicas: number;
  /** Requests queued or running right now (the autoscaler's signal). */
  ongoing: number;
  queueDepth: number;
  /** Histogram p99 upper bounds since start, ms (null before the first request). */
  p99QueueMs: number | null;
  p99ComputeMs: number | null;
  autoscaled: boolean;
  minReplicas: number | null;
  maxReplicas: number | null;
  lastScale: { at: string; from: number; to: number } | null;
}

const toMs = (s: number | null | undefined): number | null => (s === null || s === undefined ? null : Math.round(s * 100_000) / 100);

/** The panel's model table and its one write (replica limits, audited). */
@Injectable()
export class ModelsAdminService {
  constructor(
    private readonly inference: InferenceService,
    private readonly autoscaler: AutoscalerService,
    private readonly audit: AuditLogRepository,
  ) {}

  async list(): Promise<ModelView[]> {
    const byModel = new Map<string, ModelVersionView[]>();
    for (const v of this.inference.versions()) {
      const views = byModel.get(v.model) ?? [];
      views.push({ version: v.version, state: v.state, error: v.error ?? null, replicas: v.replicas, queueDepth: v.queueDepth });
      byModel.set(v.model, views);
    }
    const [p99Queue, p99Compute] = await Promise.all([
      histogramQuantileByModel(`${METRIC_PREFIX}inference_queue_seconds`, 0.99),
      histogramQuantileByModel(`${METRIC_PREFIX}inference_compute_seconds`, 0.99),
    ]);
    return [...byModel]
      .map(([name, versions]): ModelView => {
        const limits = this.autoscaler.limitsOf(name);
        const last = this.autoscaler.events.findLast((e) => e.model === name);
        return {
          name,
          versions,
          replicas: versions.reduce((n, v) => n + v.replicas, 0),
          ongoing: this.inference.ongoing(name),
          queueDepth: versions.reduce((n, v) => n + v.queueDepth, 0),
          p99QueueMs: toMs(p99Queue.get(name)),
          p99ComputeMs: toMs(p99Compute.get(name)),
          autoscaled: limits !== undefined,
          minReplicas: limits?.min ?? null,
          maxReplicas: limits?.max ?? null,
          lastScale: last ? { at: new Date(last.at).toISOString(), from: last.from, to: last.to } : null,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Validated by the autoscaler (400 on a bad range, 404 on an unknown model), then audited. */
  async setLimits(model: string, min: number, max: number, actor: string): Promise<ModelView> {
    const was = this.autoscaler.limitsOf(model) ?? null;
    this.autoscaler.setLimits(model, min, max);
    await this.audit.record({ actor, action: 'model.limits', target: `model:${model}`, details: { min, max, was } });
    return (await this.list()).find((m) => m.name === model)!;
  }
}
