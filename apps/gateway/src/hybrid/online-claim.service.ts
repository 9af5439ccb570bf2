import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { ROOT_LOGGER, type PinoLogger } from '@tandem/shared';
import { HybridMetrics, OnlineClaimer, type OnlineClaimView, type SchedulerLogger } from '@tandem/scheduler';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway.config';
import { InferenceService } from '../inference/inference.service';
import { NODE_LEDGER, type NodeLedger } from '@tandem/scheduler';

/**
 * The claim after an online-demand hint waits this long: the hint has stopped the node's borrowed
 * units already (within ~1 ms on the node), so the claim's transaction and the workers' releases
 * can run after the first requests instead of beside them (measured: 20–60 ms of CPU in the
 * first 100 ms after idle, gateway, workers and Postgres together). Within the hint's 500 ms hold.
 */
const CLAIM_AFTER_HINT_MS = 150;

/** The claim key of `partition` mode: the gateway process as a whole. */
export const WHOLE_GATEWAY = 'gateway';

/**
 * Co-location, online side. By default (`HYBRID_ONLINE_CLAIM=partition`) any CPU model with
 * requests makes the gateway hold this node's whole online CPU partition in the device ledger:
 * the gateway's event loop, codecs and GC need cores beyond its replicas' threads, so batch
 * borrows only while online is idle. In `replicas` mode each model holds its replicas' threads
 * (replicas × threads per replica cores), plus the SLO policy. Claims revoke borrowed batch
 * units; after HYBRID_HOLD_DOWN_MS without requests they are given back and batch borrows again.
 */
@Injectable()
export class OnlineClaimService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private claimer: OnlineClaimer | null = null;
  private readonly seen = new Map<string, number>();
  /** Models whose p99 broke the SLO, and when it was last seen broken. */
  private readonly boosted = new Map<string, number>();
  private readonly lastActive = new Map<string, number>();
  readonly metrics = new HybridMetrics();
  private readonly logger: SchedulerLogger;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly cfg: GatewayConfig,
    @Inject(NODE_LEDGER) private readonly node: NodeLedger,
    @Inject(InferenceService) private readonly inference: InferenceService,
    @Inject(ROOT_LOGGER) root: PinoLogger,
  ) {
    this.logger = root.child({ component: 'online-claims' });
  }

  onApplicationBootstrap(): void {
    const h = this.cfg.hybrid;
    if (!h.onlineClaims) return;
    this.claimer = new OnlineClaimer(
      this.node,
      { tickMs: h.tickMs, holdDownMs: h.holdDownMs, retryMs: 1_000, claimAfterHintMs: CLAIM_AFTER_HINT_MS },
      this.logger,
      this.metrics,
    );
    this.claimer.start(() => this.demand());
    const claimer = this.claimer;
    this.inference.onRequestAfterIdle(() => claimer.nudge());
  }

  /**
   * Cores each model wants now: all its replicas' threads while it has requests. With an online
   * SLO (HYBRID_ONLINE_P99_TARGET_MS) a model wants the whole online partition (revoking every
   * borrowed batch unit) when its traffic starts after an idle spell (its load is unknown yet)
   * and whenever its p99 over the last second is above the SLO; it gives the extra share back
   * only after its p99 stayed below half the SLO for the hold-down (hysteresis, so it does not
   * flap).
   */
  demand(): Map<string, number> {
    const out = new Map<string, number>();
    const slo = this.cfg.hybrid.p99TargetMs;
    const hold = this.cfg.hybrid.holdDownMs;
    const now = performance.now();
    for (const st of this.inference.serving()) {
      if (st.device !== 'cpu') continue;
      const started = this.inference.startedCount(st.model);
      const active = this.inference.ongoing(st.model) > 0 || started !== (this.seen.get(st.model) ?? 0);
      this.seen.set(st.model, started);
      const last = this.lastActive.get(st.model);
      const idleBefore = last === undefined || now - last > hold;
      if (active) this.lastActive.set(st.model, now);
      if (slo > 0 && active) {
        const p99 = this.inference.latencies.quantile(st.model, 0.99, 1_000, now);
        const broken = p99.count >= 20 && p99.value > slo;
        if ((idleBefore || broken) && !this.boosted.has(st.model)) {
          this.logger.info(
            {
              model: st.model,
              why: broken ? 'p99 above the SLO' : 'traffic after idle',
              p99Ms: p99.count ? Math.round(p99.value * 10) / 10 : null,
              sloMs: slo,
            },
            'online SLO: claiming the whole online partition',
          );
        }
        if (idleBefore || (p99.count >= 20 && p99.value > slo / 2)) this.boosted.set(st.model, now);
      }
      const since = this.boosted.get(st.model);
      if (since !== undefined && now - since > hold) this.boosted.delete(st.model);
      const recent = this.lastActive.get(st.model);
      const wanted = recent !== undefined && now - recent <= this.cfg.hybrid.tickMs * 2;
      const base = st.replicas * st.threadsPerReplica;
      const want = wanted ? (this.boosted.has(st.model) || this.cfg.hybrid.claim === 'partition' ? Number.POSITIVE_INFINITY : base) : 0;
      out.set(st.model, (out.get(st.model) ?? 0) + want);
    }
    if (this.cfg.hybrid.claim === 'partition') return new Map([[WHOLE_GATEWAY, Math.max(0, ...out.values())]]);
    return out;
  }

  /** When this gateway's claims last revoked batch units (performance.now()), null if never. */
  get lastPreemptionAt(): number | null {
    return this.claimer?.lastPreemptionAt ?? null;
  }

  get enabled(): boolean {
    return this.claimer !== null;
  }

  snapshot(): OnlineClaimView[] {
    return this.claimer?.snapshot() ?? [];
  }

  /** The SLO and, per model, its p99 over the last second and whether it is boosted. */
  slo(): { p99TargetMs: number; models: { model: string; p99Ms: number | null; requests: number; boosted: boolean }[] } {
    const models = this.inference
      .versions()
      .filter((st) => st.state !== 'not loaded')
      .map((st) => {
        const q = this.inference.latencies.quantile(st.model, 0.99, 1_000);
        return { model: st.model, p99Ms: q.count ? Math.round(q.value * 100) / 100 : null, requests: q.count, boosted: this.boosted.has(st.model) };
      });
    return { p99TargetMs: this.cfg.hybrid.p99TargetMs, models };
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.claimer?.stop();
  }
}
