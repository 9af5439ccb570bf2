/**
 * Recent request latencies per model, for the online SLO check: a ring of (time, ms) trimmed to
 * the window on read. Bounded so a flood of requests costs O(1) memory per model.
 */
export class LatencyWindow {
  private readonly byModel = new Map<string, { t: Float64Array; ms: Float64Array; next: number; size: number }>();

  constructor(private readonly capacity = 4096) {}

  record(model: string, ms: number, now = performance.now()): void {
    let r = this.byModel.get(model);
    if (!r) {
      r = { t: new Float64Array(this.capacity), ms: new Float64Array(this.capacity), next: 0, size: 0 };
      this.byModel.set(model, r);
    }
    r.t[r.next] = now;
    r.ms[r.next] = ms;
    r.next = (r.next + 1) % this.capacity;
    r.size = Math.min(this.capacity, r.size + 1);
  }

  /** Models with a window (one per model ever recorded; callers record only known models). */
  models(): string[] {
    return [...this.byModel.keys()];
  }

  /** The q-quantile of latencies recorded in the last `windowMs`, with how many there were. */
  quantile(model: string, q: number, windowMs: number, now = performance.now()): { value: number; count: number } {
    const r = this.byModel.get(model);
    if (!r) return { value: NaN, count: 0 };
    const xs: number[] = [];
    for (let i = 0; i < r.size; i++) if (now - r.t[i]! <= windowMs) xs.push(r.ms[i]!);
    if (xs.length === 0) return { value: NaN, count: 0 };
    xs.sort((a, b) => a - b);
    return { value: xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!, count: xs.length };
  }
}
