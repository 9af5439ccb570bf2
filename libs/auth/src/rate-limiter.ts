/** Most buckets a limiter keeps; beyond it, refilled buckets go first, then the least recently used. */
export const DEFAULT_MAX_BUCKETS = 50_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token bucket per key (an API key's id, or a client address): `rps` sustained, `burst` at
 * once. The map is bounded: keys come from callers (random addresses, churned keys), so
 * without a cap it grows without end. A bucket that has refilled is the same as no bucket, so
 * those are dropped first; only then the least recently used ones.
 */
export class RateLimiter {
  /** Insertion order = recency order (every touch re-inserts), so the first key is the LRU. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
    private readonly maxBuckets = DEFAULT_MAX_BUCKETS,
  ) {}

  get enabled(): boolean {
    return this.rps > 0;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token: 0 when allowed, else seconds until one is available (nothing taken). */
  take(key: string): number {
    if (this.rps <= 0) return 0;
    const b = this.refill(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.rps;
  }

  /** Seconds until `key` has a token, without taking one (0 = it has one now). */
  wait(key: string): number {
    if (this.rps <= 0) return 0;
    const b = this.buckets.get(key);
    if (!b) return 0;
    const tokens = Math.min(this.burst, b.tokens + ((this.now() - b.at) / 1000) * this.rps);
    return tokens >= 1 ? 0 : (1 - tokens) / this.rps;
  }

  private refill(key: string): Bucket {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key);
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rps);
      b.at = t;
    } else {
      b = { tokens: this.burst, at: t };
      if (this.buckets.size >= this.maxBuckets) this.evict(t);
    }
    this.buckets.set(key, b);
    return b;
  }

  private evict(t: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * this.rps >= this.burst) this.buckets.delete(k);
    }
    // Free a tenth at least, least recently used first, so a flood of new keys costs one scan
    // per tenth of the cap rather than one per key.
    const target = this.maxBuckets - Math.max(1, Math.floor(this.maxBuckets / 10));
    for (const k of this.buckets.keys()) {
      if (this.buckets.size <= target) break;
      this.buckets.delete(k);
    }
  }
}
