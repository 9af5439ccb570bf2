import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { gauge } from '@tandem/shared';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway.config';
import { InferenceService } from '../inference/inference.service';
import { NODE_LEDGER, type NodeLedger } from '@tandem/scheduler';
import { OnlineClaimService } from './online-claim.service';

/** A batch with a share on the device (or revoked by online) this recently counts as present. */
export const BATCH_PRESENCE_MS = 30_000;
/** Per-second p99s kept for the no-batch baseline (10 minutes of traffic without a batch). */
const BASELINE_SAMPLES = 600;
/** p99 "now" is taken over this window. */
const NOW_WINDOW_MS = 10_000;
/** Fewer requests than this in a second say nothing about its p99. */
const MIN_REQUESTS = 20;

export interface ModelCost {
  model: string;
  /** p99 over the last 10 s. */
  p99NowMs: number | null;
  /** Median of the per-second p99s seen while no batch was present. */
  baselineP99Ms: number | null;
  ratio: number | null;
}

/** What the batch is costing online on one device right now. */
export interface DeviceCost {
  device: string;
  batchPresent: boolean;
  /** Worst model's p99 now / its no-batch baseline (1 when no batch is present). */
  ratio: number | null;
  models: ModelCost[];
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const r2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * The promise, watched: per device of this node, each CPU model's online p99 now against its own
 * p99 while no batch was present, so an operator sees how much latency the batch costs online
 * right now (`/admin/api/hybrid`, the panel, `tandem_hybrid_batch_latency_cost_ratio`).
 */
@Injectable()
export class BatchCostService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private readonly baseline = new Map<string, number[]>();
  private lastBatchSeenAt = Number.NEGATIVE_INFINITY;
  private device: string | null = null;
  private readonly ratioGauge = gauge({
    name: 'hybrid_batch_latency_cost_ratio',
    help: 'Online p99 now / its no-batch baseline, worst model of the device (1 when no batch is present)',
    labelNames: ['device'] as const,
  });
  private readonly p99Gauge = gauge({
    name: 'hybrid_online_p99_seconds',
    help: 'Online p99 per model: now (last 10 s) and its no-batch baseline',
    labelNames: ['device', 'model', 'window'] as const,
  });

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly cfg: GatewayConfig,
    @Inject(NODE_LEDGER) private readonly node: NodeLedger,
    @Inject(InferenceService) private readonly inference: InferenceService,
    @Inject(OnlineClaimService) private readonly claims: OnlineClaimService,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.cfg.hybrid.onlineClaims) return;
    this.timer = setInterval(() => void this.sample().catch(() => undefined), 1_000);
    this.timer.unref();
  }

  /** One second's look: is a batch on the device, and each model's p99 of that second. */
  async sample(now = performance.now()): Promise<void> {
    const [cpu] = await this.node.ledger.usableDevices(this.node.nodeName, 'cpu');
    if (!cpu) return;
    this.device = cpu.id;
    if (cpu.used.batch > 0 || cpu.used.borrowed > 0) this.lastBatchSeenAt = now;
    for (const model of this.batchPresent(now) ? [] : this.cpuModels()) {
      const q = this.inference.latencies.quantile(model, 0.99, 1_000, now);
      if (q.count < MIN_REQUESTS) continue;
      const xs = this.baseline.get(model) ?? [];
      xs.push(q.value);
      if (xs.length > BASELINE_SAMPLES) xs.shift();
      this.baseline.set(model, xs);
    }
    this.publish(now);
  }

  /** A batch held a share here at the last sample, or this gateway revoked one recently (read live). */
  batchPresent(now = performance.now()): boolean {
    const seen = Math.max(this.lastBatchSeenAt, this.claims.lastPreemptionAt ?? Number.NEGATIVE_INFINITY);
    return now - seen <= BATCH_PRESENCE_MS;
  }

  view(now = performance.now()): DeviceCost[] {
    if (!this.device) return [];
    const present = this.batchPresent(now);
    const models = this.cpuModels().map((model): ModelCost => {
      const q = this.inference.latencies.quantile(model, 0.99, NOW_WINDOW_MS, now);
      const base = this.baseline.get(model);
      const p99 = q.count >= MIN_REQUESTS ? q.value : null;
      const baseline = base?.length ? median(base) : null;
      const ratio = p99 !== null && baseline !== null ? (present ? p99 / baseline : 1) : null;
      return {
        model,
        p99NowMs: p99 === null ? null : r2(p99),
        baselineP99Ms: baseline === null ? null : r2(baseline),
        ratio: ratio === null ? null : r2(ratio),
      };
    });
    const ratios = models.map((m) => m.ratio).filter((x): x is number => x !== null);
    return [{ device: this.device, batchPresent: present, ratio: ratios.length ? Math.max(...ratios) : null, models }];
  }

  private publish(now: number): void {
    this.p99Gauge.reset(); // unloaded models leave no series behind
    for (const d of this.view(now)) {
      if (d.ratio !== null) this.ratioGauge.set({ device: d.device }, d.ratio);
      for (const m of d.models) {
        if (m.p99NowMs !== null) this.p99Gauge.set({ device: d.device, model: m.model, window: 'now' }, m.p99NowMs / 1000);
        if (m.baselineP99Ms !== null) this.p99Gauge.set({ device: d.device, model: m.model, window: 'baseline' }, m.baselineP99Ms / 1000);
      }
    }
  }

  private cpuModels(): string[] {
    return [
      ...new Set(
        this.inference
          .serving()
          .filter((v) => v.device === 'cpu')
          .map((v) => v.model),
      ),
    ];
  }

  beforeApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
