import { describe, expect, it } from 'vitest';
import { BatchCapacity, silentLogger, UnitUsage, type BatchCapacityOptions, type UnitSlot } from '@tandem/scheduler';
import { estimateCompletion, isUrgent } from '../apps/batch/src/accounting/deadline-estimator';

const FIXED: BatchCapacityOptions = { mode: 'fixed', deviceKind: 'cpu', maxUnits: 1, borrowHoldDownMs: 0, retryMs: 10, idleReleaseMs: 60_000, gpuMemoryMiB: 0 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('deadlines in BatchCapacity and the estimator', () => {
  it('serves waiters of one priority earliest deadline first (none = last), a higher priority before any deadline', async () => {
    const cap = new BatchCapacity(FIXED, silentLogger, null);
    const first = await cap.acquire({ mayBorrow: true, priority: 50 });
    const order: string[] = [];
    const wait = (name: string, req: { priority: number; deadline?: number }): Promise<void> =>
      cap.acquire({ mayBorrow: true, ...req }).then((s: UnitSlot) => {
        order.push(name);
        cap.release(s);
      });
    const all = [
      wait('none', { priority: 50 }),
      wait('late', { priority: 50, deadline: 2_000 }),
      wait('early', { priority: 50, deadline: 1_000 }),
      wait('urgent', { priority: 151, deadline: 3_000 }),
    ];
    cap.release(first);
    await Promise.all(all);
    expect(order).toEqual(['urgent', 'early', 'late', 'none']);
    await cap.stop();
  });

  it('charges seat time to the run usage', async () => {
    const cap = new BatchCapacity(FIXED, silentLogger, null);
    const usage = new UnitUsage();
    const s = await cap.acquire({ mayBorrow: true, priority: 50, usage });
    await sleep(30);
    cap.release(s);
    expect(usage.ownedMs).toBeGreaterThanOrEqual(25); // fixed units are never borrowed
    expect(usage.borrowedMs).toBe(0);
    await cap.stop();
  });

  it('estimates EDF completion behind earlier deadlines and finds the earliest feasible one', () => {
    const now = 0;
    const admitted = [
      { deadline: new Date(100_000), remaining: 100, rate: 1 }, // 50 s on 2 units
      { deadline: new Date(1_000_000), remaining: 1000, rate: 1 }, // 500 s, later deadline: not ahead
    ];
    const ok = estimateCompletion({ now, deadline: 200_000, lines: 100, rate: 1, units: 2, admitted });
    expect(ok).toMatchObject({ feasible: true, ownSeconds: 50, aheadSeconds: 50, completionAt: 100_000 });
    // An earlier deadline goes ahead of the admitted batch: only its own 50 s count.
    expect(estimateCompletion({ now, deadline: 60_000, lines: 100, rate: 1, units: 2, admitted })).toMatchObject({ feasible: true, completionAt: 50_000 });
    expect(estimateCompletion({ now, deadline: 40_000, lines: 100, rate: 1, units: 2, admitted })).toMatchObject({ feasible: false, completionAt: 50_000 });
    // 150 s of its own: past the admitted deadline, so that batch's 50 s go first.
    expect(estimateCompletion({ now, deadline: 120_000, lines: 300, rate: 1, units: 2, admitted })).toMatchObject({ feasible: false, completionAt: 200_000 });
    expect(isUrgent({ deadline: new Date(Date.now() + 10_000), remaining: 9, rate: 1, units: 1 }, Date.now())).toBe(true);
    expect(isUrgent({ deadline: new Date(Date.now() + 10_000), remaining: 5, rate: 1, units: 1 }, Date.now())).toBe(false);
    expect(isUrgent({ deadline: new Date(Date.now() + 10_000), remaining: 5, rate: null, units: 1 }, Date.now())).toBe(false);
  });
});
