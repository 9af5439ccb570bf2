/** Per-model autoscaling settings (`autoscaling` in the model's config.json). */
export interface AutoscalingConfig {
  min_replicas: number;
  max_replicas: number;
  /** In-flight + queued requests per replica the scaler aims for. */
  target_ongoing_requests: number;
  /** Demand must stay above the current size this long before adding replicas. */
  upscale_delay_s: number;
  /** Demand must stay below the current size this long before removing replicas. */
  downscale_delay_s: number;
  /** Averaging window for the load signal. */
  window_s: number;
}

export const AUTOSCALING_DEFAULTS: Omit<AutoscalingConfig, 'min_replicas' | 'max_replicas'> = {
  target_ongoing_requests: 2,
  upscale_delay_s: 1,
  downscale_delay_s: 10,
  window_s: 2,
};

/**
 * Hysteresis band: to shrink from n to m replicas the load must fit m replicas at this fraction
 * of the target. Without it a load sitting right at a boundary flips the size back and forth —
 * the oscillation Ray Serve users report.
 */
const DOWNSCALE_HEADROOM = 0.75;

interface Sample {
  at: number;
  ongoing: number;
}

/**
 * The pure decision part of the autoscaler: fed (time, ongoing requests) samples, it says what
 * size the model should have now. No timers or I/O here, so it is tested with a fake clock.
 */
export class AutoscalingPolicy {
  private samples: Sample[] = [];
  private wantUpSince?: number;
  private wantDownSince?: number;

  constructor(readonly cfg: AutoscalingConfig) {
    if (cfg.min_replicas < 0 || cfg.max_replicas < Math.max(1, cfg.min_replicas))
      throw new Error('autoscaling: need 0 <= min_replicas <= max_replicas, max >= 1');
    if (!(cfg.target_ongoing_requests > 0)) throw new Error('autoscaling: target_ongoing_requests must be > 0');
  }

  observe(atMs: number, ongoing: number): void {
    this.samples.push({ at: atMs, ongoing });
    const from = atMs - this.cfg.window_s * 1000;
    while (this.samples.length > 1 && this.samples[0]!.at < from) this.samples.shift();
  }

  /** Mean ongoing requests over the window. */
  load(): number {
    if (this.samples.length === 0) return 0;
    return this.samples.reduce((s, x) => s + x.ongoing, 0) / this.samples.length;
  }

  /** The replica count wanted at `atMs`, given `current` replicas. */
  decide(atMs: number, current: number): number {
    const { min_replicas: min, max_replicas: max, target_ongoing_requests: target } = this.cfg;
    const clamp = (n: number): number => Math.min(max, Math.max(min, n));
    const load = this.load();
    const raw = clamp(Math.ceil(load / target));
    // Never below 1 while there is work, even with min_replicas = 0.
    const desired = load > 0 ? Math.max(1, raw) : raw;
    if (current < min || current > max) return clamp(current);

    if (desired > current) {
      this.wantDownSince = undefined;
      this.wantUpSince ??= atMs;
      // Scale from zero at once: a request is waiting for a replica.
      if (current === 0 || atMs - this.wantUpSince >= this.cfg.upscale_delay_s * 1000) {
        this.wantUpSince = undefined;
        return desired;
      }
      return current;
    }
    this.wantUpSince = undefined;
    const fitsSmaller = desired < current && load <= desired * target * DOWNSCALE_HEADROOM + (desired === 0 ? 0 : 1e-9);
    if (!fitsSmaller) {
      this.wantDownSince = undefined;
      return current;
    }
    this.wantDownSince ??= atMs;
    if (atMs - this.wantDownSince >= this.cfg.downscale_delay_s * 1000) {
      this.wantDownSince = undefined;
      // One step at a time on the way down: the load re-measures on the smaller size.
      return current - 1;
    }
    return current;
  }
}
