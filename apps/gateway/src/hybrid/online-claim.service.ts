import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { createRootLogger } from '@tandem/shared';
import { HybridMetrics, OnlineClaimer, Scheduler, type OnlineClaimView } from '@tandem/scheduler';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway.config';
import { InferenceService } from '../inference/inference.service';

/**
 * Co-location, online side: while a CPU model has requests, its replicas hold online allocations
 * (replicas × threads per replica cores of this node) in the device ledger, which revokes borrowed
 * batch units; after HYBRID_HOLD_DOWN_MS without requests they are given back and batch borrows again.
 */
@Injectable()
export class OnlineClaimService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private claimer: OnlineClaimer | null = null;
  private readonly seen = new Map<string, number>();
  readonly metrics = new HybridMetrics();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly cfg: GatewayConfig,
    @Inject(Scheduler) private readonly scheduler: Scheduler,
    @Inject(InferenceService) private readonly inference: InferenceService,
  ) {}

  onApplicationBootstrap(): void {
    const h = this.cfg.hybrid;
    if (!h.onlineClaims) return;
    const s = this.scheduler;
    this.claimer = new OnlineClaimer(
      { allocations: s.allocations, ledger: s.ledger, nodeName: s.options.nodeName },
      { tickMs: h.tickMs, holdDownMs: h.holdDownMs, retryMs: 1_000 },
      createRootLogger(this.cfg.logLevel, 'online-claims'),
      this.metrics,
    );
    this.claimer.start(() => this.demand());
  }

  /** Cores each model wants now: all its replicas' threads if it saw a request since the last look. */
  demand(): Map<string, number> {
    const out = new Map<string, number>();
    for (const st of this.inference.engine.states()) {
      if (st.state !== 'ready') continue;
      const inst = this.inference.engine.instance(st.model, st.version);
      if (inst.config.device.kind !== 'cpu') continue;
      const started = this.inference.startedCount(st.model);
      const active = this.inference.ongoing(st.model) > 0 || started !== (this.seen.get(st.model) ?? 0);
      this.seen.set(st.model, started);
      const want = active ? inst.replicas * inst.config.device.threads_per_replica : 0;
      out.set(st.model, (out.get(st.model) ?? 0) + want);
    }
    return out;
  }

  get enabled(): boolean {
    return this.claimer !== null;
  }

  snapshot(): OnlineClaimView[] {
    return this.claimer?.snapshot() ?? [];
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.claimer?.stop();
  }
}
