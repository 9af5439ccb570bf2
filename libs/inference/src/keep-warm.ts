import { performance } from 'node:perf_hooks';
import type { ReplicaPool, Replica } from './replica-pool';
import type { InferTensor } from './tensor';

export interface KeepWarmOptions {
  /** A CPU replica idle this long (ms) runs one batch-of-1 zero run; 0 = off. */
  periodMs: number;
  /** ...as long as its model served a request in this window (ms); older models go cold. */
  activeForMs: number;
}

export const KEEP_WARM_OFF: KeepWarmOptions = { periodMs: 0, activeForMs: 0 };

/**
 * Keeps a recently used model's idle CPU replicas warm. Measured on this project's VMs
 * (`npm run bench:cold`; docs/benchmarks.md, "Cold after idle"): the first onnxruntime run after an idle spell costs
 * 10 ms (1 s idle) to 35–50 ms (8 s idle) instead of 1.4 ms for ppocr_cls — a plain JS loop over
 * 4 MB shows the same, so it is the memory of an idle process going cold under the hypervisor,
 * not onnxruntime — and every request queued behind it waits too: the first 2 s of traffic
 * after a pause had 3× the steady p99, batch or no batch. One zero-filled batch-of-1 run per idle
 * replica every `periodMs` (2–3 ms of CPU each 50 ms for ppocr_cls) keeps the first real run at
 * ~2 ms. The runs take the replica's slot like a batch does (a request that arrives meanwhile
 * queues for at most one run), are not requests (no metrics, no online claim, no autoscaling),
 * and stop `activeForMs` after the model's last request.
 */
export class KeepWarm {
  private timer: NodeJS.Timeout | undefined;
  private readonly lastRunAt = new WeakMap<Replica, number>();
  /** When a real batch was last dispatched (performance.now()). */
  private lastUsedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly pool: ReplicaPool,
    private readonly inputs: () => InferTensor[],
    private readonly opts: KeepWarmOptions,
    /** Replicas this applies to (CPU placements). */
    private readonly eligible: (r: Replica) => boolean,
  ) {}

  start(): void {
    if (this.opts.periodMs <= 0 || this.timer) return;
    this.timer = setInterval(() => this.tick(), this.opts.periodMs);
    this.timer.unref();
  }

  /** The batcher dispatched real work to `replica`. */
  used(replica: Replica, now = performance.now()): void {
    this.lastUsedAt = now;
    this.lastRunAt.set(replica, now);
  }

  tick(now = performance.now()): void {
    if (now - this.lastUsedAt > this.opts.activeForMs) return;
    for (const r of this.pool.list()) {
      if (r.inflight > 0 || !this.eligible(r)) continue;
      if (now - (this.lastRunAt.get(r) ?? Number.NEGATIVE_INFINITY) < this.opts.periodMs) continue;
      if (!this.pool.take(r)) continue;
      this.lastRunAt.set(r, now);
      void r.runner
        .runUnchecked(this.inputs(), undefined, { transfer: true })
        .catch(() => undefined) // a failing replica shows on real requests; warmth is best effort
        .finally(() => this.pool.release(r));
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
