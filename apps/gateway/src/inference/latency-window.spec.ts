import { describe, expect, it } from 'vitest';
import { LatencyWindow } from './latency-window';

describe('LatencyWindow', () => {
  it('reports the quantile of the window only, per model', () => {
    const w = new LatencyWindow(1000);
    for (let i = 1; i <= 100; i++) w.record('a', i, 1_000); // old
    for (let i = 1; i <= 100; i++) w.record('a', i / 10, 5_000);
    w.record('b', 500, 5_000);
    expect(w.quantile('a', 0.99, 1_000, 5_500)).toEqual({ value: 10, count: 100 });
    expect(w.quantile('a', 0.5, 10_000, 5_500).count).toBe(200);
    expect(w.quantile('b', 0.99, 1_000, 5_500)).toEqual({ value: 500, count: 1 });
    expect(w.quantile('c', 0.99, 1_000, 5_500).count).toBe(0);
  });

  it('keeps at most its capacity (newest win)', () => {
    const w = new LatencyWindow(10);
    for (let i = 0; i < 25; i++) w.record('a', i, i);
    expect(w.quantile('a', 0, 1_000, 30)).toEqual({ value: 15, count: 10 });
  });
});
