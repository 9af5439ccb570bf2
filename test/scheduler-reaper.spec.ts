import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scheduler } from '@tandem/scheduler';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { schedulerHarness, type Harness } from './support/scheduler-harness';

describe('several reapers at once', () => {
  let db: TestDatabase;
  let h: Harness;
  const reapers: Scheduler[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    h = await schedulerHarness(db.url);
    // Timers effectively off: the test drives every reaper pass itself.
    const quiet = { reaperMs: 600_000, heartbeatMs: 600_000, nodeTimeoutMs: 600_000 };
    reapers.push(
      await h.make({ ...quiet, nodeName: 'r', declaredDevices: [{ kind: 'cpu', cores: 8, memoryMiB: 1024, name: 'CPU' }] }),
      await h.make({ ...quiet, nodeName: 'r', agentEnabled: false }),
      await h.make({ ...quiet, nodeName: 'r', agentEnabled: false }),
    );
  });

  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('reclaim each expired lease exactly once', async () => {
    const holder = await h.make({ nodeName: 'r', agentEnabled: false, reaperMs: 600_000, leaseTtlMs: 200, heartbeatMs: 600_000 });
    const leases = [];
    for (let i = 0; i < 6; i++) leases.push(await holder.allocations.allocate({ kind: 'batch', share: 0.1, devices: ['r/cpu'] }));
    holder.keeper.stop();
    // Let the 200 ms leases lapse (waiting, not asserting on time).
    await new Promise((r) => setTimeout(r, 600));
    const passes = await Promise.all([...reapers, ...reapers].map((s) => s.reaper.tick()));
    const reclaimed = passes
      .flatMap((p) => p?.expired ?? [])
      .map((x) => x.id)
      .sort();
    expect(reclaimed).toEqual(leases.flatMap((l) => l.allocationIds).sort());
    expect(await reapers[0]!.ledger.listAllocations()).toEqual([]);
  });
});
