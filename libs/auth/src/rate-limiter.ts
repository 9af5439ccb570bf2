/** Token bucket per principal: `rps` sustained, `burst` at once; answers the wait when empty. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** 0 when allowed, else seconds until a token is available. */
  take(key: string): number {
    if (this.rps <= 0) return 0;
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
      if (this.buckets.size > 100_000) this.buckets.clear(); // bound memory under key churn
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rps);
    b.at = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.rps;
  }
}
