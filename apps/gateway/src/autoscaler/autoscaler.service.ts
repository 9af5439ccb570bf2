import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { counter } from '@tandem/shared';
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
    const engine = this.inference.engine;
    for (const s of engine.states()) {
      if (s.state !== 'ready') continue;
      const inst = engine.instance(s.model, s.version);
      const as = inst.config.autoscaling;
      if (!as) continue;
      const key = `${s.model}/${s.version}`;
      let policy = this.policies.get(key);
      if (!policy) {
        policy = new AutoscalingPolicy({ ...AUTOSCALING_DEFAULTS, ...as });
        this.policies.set(key, policy);
      }
      policy.observe(now, this.inference.ongoing(s.model));
      if (this.busy.has(key)) continue;
      const from = inst.replicas;
      const to = policy.decide(now, from);
      if (to === from) continue;
      this.busy.add(key);
      const event: ScaleEvent = { at: now, model: s.model, version: s.version, from, to, load: policy.load() };
      this.events.push(event);
      if (this.events.length > 500) this.events.shift();
      decisions.inc({ model: s.model, direction: to > from ? 'up' : 'down' });
      this.logger.log(`${key}: ${from} → ${to} replicas (ongoing ${event.load.toFixed(1)})`);
      inst
        .scaleTo(to)
        .catch((e: unknown) => this.logger.warn(`${key}: scaling to ${to} failed: ${e instanceof Error ? e.message : String(e)}`))
        .finally(() => {
          this.busy.delete(key);
          this.inference.refreshReplicaGauge();
        });
    }
  }

  /** Forget a model's history (on reload/unload). */
  reset(model: string, version: string): void {
    this.policies.delete(`${model}/${version}`);
  }
}
