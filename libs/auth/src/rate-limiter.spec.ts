import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter';

describe('RateLimiter', () => {
  it('allows the burst, then answers the wait, and refills at rps', () => {
    let t = 0;
    const l = new RateLimiter(2, 3, () => t);
    expect([l.take('a'), l.take('a'), l.take('a')]).toEqual([0, 0, 0]);
    expect(l.take('a')).toBeCloseTo(0.5);
    expect(l.wait('a')).toBeCloseTo(0.5);
    expect(l.take('b')).toBe(0); // other keys have their own bucket
    t = 500;
    expect(l.wait('a')).toBe(0);
    expect(l.take('a')).toBe(0);
    expect(l.take('a')).toBeCloseTo(0.5);
  });

  it('wait() takes nothing, and rps 0 means unlimited', () => {
    const l = new RateLimiter(1, 1, () => 0);
    expect(l.wait('x')).toBe(0);
    expect(l.size).toBe(0);
    expect(l.take('x')).toBe(0);
    expect(l.wait('x')).toBe(1);
    const off = new RateLimiter(0, 0);
    for (let i = 0; i < 100; i++) expect(off.take('k')).toBe(0);
    expect(off.size).toBe(0);
  });

  it('stays within its cap under a flood of new keys, dropping refilled buckets first, then the least recent', () => {
    let t = 0;
    const l = new RateLimiter(1, 2, () => t, 100);
    l.take('busy');
    l.take('busy'); // empty: a bucket worth keeping
    t = 100;
    for (let i = 0; i < 10_000; i++) {
      l.take(`random-${i}`);
      expect(l.size).toBeLessThanOrEqual(100);
    }
    // 'busy' was the least recently used, so the flood pushed it out: it starts full again.
    expect(l.wait('busy')).toBe(0);

    // Refilled buckets go before recent ones: after 10 s every random bucket is full again.
    const m = new RateLimiter(1, 2, () => t, 100);
    for (let i = 0; i < 99; i++) m.take(`old-${i}`);
    t += 10_000;
    m.take('hot');
    m.take('hot');
    m.take('new'); // the map is full (100): the 99 refilled ones are swept, 'hot' stays
    expect(m.size).toBe(2);
    expect(m.wait('hot')).toBeGreaterThan(0);
  });
});
