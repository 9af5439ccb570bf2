import { describe, expect, it } from 'vitest';
import { unitCallRanges } from './unit-calls';

describe('unitCallRanges', () => {
  it('cuts calls of `per` lines and lets a small remainder ride with the last one', () => {
    expect(unitCallRanges(65, 32)).toEqual([
      [0, 32],
      [32, 65],
    ]);
    expect(unitCallRanges(72, 32)).toEqual([
      [0, 32],
      [32, 72],
    ]); // 8 left = a quarter of 32: folded
    expect(unitCallRanges(73, 32)).toEqual([
      [0, 32],
      [32, 64],
      [64, 73],
    ]); // 9 left: a call of its own
  });

  it('covers every line exactly once, in order, for any size', () => {
    for (const per of [1, 3, 16, 32]) {
      for (let n = 0; n <= 140; n++) {
        const r = unitCallRanges(n, per);
        const lines = r.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i));
        expect(lines).toEqual(Array.from({ length: n }, (_, i) => i));
        for (const [a, b] of r) expect(b - a).toBeLessThanOrEqual(per + Math.floor(per / 4));
        expect(r.every(([a, b]) => b > a)).toBe(true);
      }
    }
  });

  it('one call for a chunk that fits', () => {
    expect(unitCallRanges(10, 32)).toEqual([[0, 10]]);
    expect(unitCallRanges(0, 32)).toEqual([]);
  });
});
