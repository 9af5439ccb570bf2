import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scheduler } from '@tandem/scheduler';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { schedulerHarness, type Harness } from './support/scheduler-harness';

describe('the capacity provider the gateway autoscaler uses', () => {
  let db: TestDatabase;
  let h: Harness;
  let s: Scheduler;

  beforeAll(async () => {
    db = await createTestDatabase();
    h = await schedulerHarness(db.url);
    s = await h.make({
      nodeName: 'gw',
      declaredDevices: [
        { kind: 'cpu', cores: 8, memoryMiB: 16_384, name: 'CPU' },
        { kind: 'gpu', index: 3, uuid: 'GPU-sim-3', name: 'Simulated H100', memoryMiB: 81_559 },
      ],
    });
  });

  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('grants CPU replicas as online shares of the node CPU, fewer when the online partition is full', async () => {
    // Online partition 0.5 of 8 cores = 4 threads: two 2-thread replicas fit, the third does not.
    const got = await s.capacity.acquire({ model: 'm', version: '1', count: 3, device: { kind: 'cpu', threadsPerReplica: 2 } });
    expect(got.map((l) => l.placement)).toEqual([
      { kind: 'cpu', intraOpThreads: 2 },
      { kind: 'cpu', intraOpThreads: 2 },
    ]);
    const dev = await s.ledger.getDevice('gw/cpu');
    expect(dev.used.online).toBe(0.5);
    for (const l of got) s.capacity.release(l);
    await Promise.all(got.map((l) => l.lease.release()));
    expect((await s.ledger.getDevice('gw/cpu')).used.online).toBe(0);
  });

  it('grants GPU replicas with the CUDA device id', async () => {
    await s.ledger.setPartition('gw/gpu3', { online: 1, batch: 0 }, 'test');
    const got = await s.capacity.acquire({ model: 'm', version: '1', count: 2, device: { kind: 'gpu', threadsPerReplica: 1 } });
    expect(got.map((l) => l.placement)).toEqual([{ kind: 'cuda', deviceId: 3, uuid: 'GPU-sim-3', memoryMiB: 0 }]);
    expect(got[0]!.lease.grant.cudaVisibleDevices).toBe('GPU-sim-3');
    await got[0]!.lease.release();
  });
});
