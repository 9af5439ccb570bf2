import { describe, expect, it } from 'vitest';
import { exitReason, RestartBackoff } from './supervisor';

describe('RestartBackoff', () => {
  it('doubles from 0.5 s to the 30 s cap while the app keeps crashing quickly', () => {
    const b = new RestartBackoff({ initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 });
    const delays = Array.from({ length: 9 }, () => b.next(100));
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(b.restarts).toBe(9);
  });

  it('starts over at 0.5 s after a run that lasted the reset period; the restart count keeps going', () => {
    const b = new RestartBackoff({ initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 });
    expect([b.next(10), b.next(10), b.next(10)]).toEqual([500, 1_000, 2_000]);
    expect(b.next(59_999)).toBe(4_000);
    expect(b.next(60_000)).toBe(500);
    expect(b.next(10)).toBe(1_000);
    expect(b.restarts).toBe(6);
  });
});

describe('exitReason', () => {
  it('names the signal when there is one, else the code', () => {
    expect(exitReason(1, null)).toBe('code 1');
    expect(exitReason(null, 'SIGKILL')).toBe('signal SIGKILL');
  });
});
