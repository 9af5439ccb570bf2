import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { counter, DomainException } from '@tandem/shared';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway.config';
import { InferenceService } from '../inference/inference.service';
import { AUTOSCALING_DEFAULTS, AutoscalingPolicy } from './autoscaling.policy';

const decisions = counter({ name: 'autoscaler_decisions_total', help: 'Replica count changes made by the autoscaler', labelNames: ['model', 'direction'] });

export interface ScaleEvent {
  at: number;
  model: string;
  version: string;
  from: number;
  to: number;
  load: number;
}

/**
 * Ticks every few hundred ms: feeds each autoscaled model's ongoing requests to its policy and
 * applies the decision through the model's replica pool (replicas come from the capacity
 * provider, i.e. the device scheduler's ledger where one is configured).
 */
@Injectable()
export class AutoscalerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Autoscaler');
  private readonly policies = new Map<string, AutoscalingPolicy>();
  private readonly busy = new Set<string>();
  /** Operator overrides of min/max replicas (admin API), by model name. */
  private readonly limits = new Map<string, { min: number; max: number }>();
  private timer?: NodeJS.Timeout;
  /** Recent decisions, newest last (admin API and benchmarks read it). */
  readonly events: ScaleEvent[] = [];

  constructor(
    private readonly inference: InferenceService,
    @Inject(GATEWAY_CONFIG) private readonly cfg: GatewayConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.tick(Date.now()), this.cfg.autoscalerTickMs);
    this.timer.unref();
  }

  beforeApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One control step; public so tests can drive it with their own clock. */
  tick(now: number): void {
    for (const v of this.inference.serving()) {
      const override = this.limits.get(v.model);
      const as = v.autoscaling ?? (override ? { min_replicas: override.min, max_replicas: override.max } : undefined);
      if (!as) continue;
      const key = `${v.model}/${v.version}`;
      let policy = this.policies.get(key);
      if (!policy) {
        policy = new AutoscalingPolicy({ ...AUTOSCALING_DEFAULTS, ...as, ...(override ? { min_replicas: override.min, max_replicas: override.max } : {}) });
        this.policies.set(key, policy);
      }
      policy.observe(now, this.inference.ongoing(v.model));
      if (this.busy.has(key)) continue;
      const from = v.replicas;
      const to = policy.decide(now, from);
      if (to === from) continue;
      this.busy.add(key);
      const event: ScaleEvent = { at: now, model: v.model, version: v.version, from, to, load: policy.load() };
      this.events.push(event);
      if (this.events.length > 500) this.events.shift();
      decisions.inc({ model: v.model, direction: to > from ? 'up' : 'down' });
      this.logger.log(`${key}: ${from} → ${to} replicas (ongoing ${event.load.toFixed(1)})`);
      this.inference
        .scaleTo(v.model, v.version, to)
        .catch((e: unknown) => this.logger.warn(`${key}: scaling to ${to} failed: ${e instanceof Error ? e.message : String(e)}`))
        .finally(() => {
          this.busy.delete(key);
          this.inference.refreshReplicaGauge();
        });
    }
  }

  /** Effective min/max replicas of an autoscaled model (override, else its config); undefined when not autoscaled. */
  limitsOf(model: string): { min: number; max: number } | undefined {
    const o = this.limits.get(model);
    if (o) return o;
    const as = this.inference.configuredAutoscaling(model);
    return as ? { min: as.min_replicas, max: as.max_replicas } : undefined;
  }

  /**
   * Operator override of a model's replica range (admin API). Models without an `autoscaling`
   * block become autoscaled with default targets. Takes effect on the next tick.
   */
  setLimits(model: string, min: number, max: number): void {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < 1 || min > max || max > 64) {
      throw DomainException.invalid('need integers 0 <= min_replicas <= max_replicas, 1 <= max_replicas <= 64');
    }
    this.inference.configuredAutoscaling(model); // 404 for unknown models
    this.limits.set(model, { min, max });
    for (const key of [...this.policies.keys()]) if (key.startsWith(`${model}/`)) this.policies.delete(key);
  }

  /** Forget a model's history (on reload/unload). */
  reset(model: string, version: string): void {
    this.policies.delete(`${model}/${version}`);
  }
}
