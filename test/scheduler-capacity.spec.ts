import { InferenceSession } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelInstance, NOOP_OBSERVER, parseModelConfig, type CapacityProvider, type SessionFactory } from '@tandem/inference';
import { SchedulerCapacityProvider, silentLogger, type Scheduler } from '@tandem/scheduler';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { schedulerHarness, waitFor, type Harness } from './support/scheduler-harness';

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

  it('places GPU replicas by the memory the request names: fewer replicas when the device memory is full', async () => {
    await s.ledger.setPartition('gw/gpu3', { online: 1, batch: 0 }, 'test');
    const cap = new SchedulerCapacityProvider(s.allocations, s.ledger, 'gw', silentLogger, { gpuSharePerReplica: 0.25 });
    // Share would take 4 replicas; 81 559 MiB takes only 2 of 30 000 MiB.
    const got = await cap.acquire({ model: 'big', version: '1', count: 4, device: { kind: 'gpu', threadsPerReplica: 1, memoryMiB: 30_000 } });
    expect(got.map((l) => l.placement)).toEqual([
      { kind: 'cuda', deviceId: 3, uuid: 'GPU-sim-3', memoryMiB: 30_000 },
      { kind: 'cuda', deviceId: 3, uuid: 'GPU-sim-3', memoryMiB: 30_000 },
    ]);
    expect((await s.ledger.getDevice('gw/gpu3')).used).toMatchObject({ online: 0.5, memoryMiB: 60_000 });
    await Promise.all(got.map((l) => l.lease.release()));
    expect((await s.ledger.getDevice('gw/gpu3')).used).toMatchObject({ online: 0, memoryMiB: 0 });
  });

  it('a model load that fails on its second replica leaves no lease behind (none of the scale-up)', async () => {
    await s.ledger.setPartition('gw/gpu3', { online: 1, batch: 0 }, 'test');
    const cap = new SchedulerCapacityProvider(s.allocations, s.ledger, 'gw', silentLogger, { gpuSharePerReplica: 0.25 });
    let cudaSessions = 0;
    const factory: SessionFactory = {
      // The probe session is a CPU one; the second replica's session fails (as a CUDA OOM would).
      async create(path, placement) {
        if (placement.kind === 'cuda' && ++cudaSessions === 2) throw new Error('CUDA out of memory (simulated)');
        return InferenceSession.create(path);
      },
    };
    const provider: CapacityProvider = { acquire: (r) => cap.acquire(r), release: (l) => cap.release(l as Parameters<typeof cap.release>[0]) };
    const config = parseModelConfig({ max_batch_size: 4, replicas: 3, device: { kind: 'gpu' }, inputs: [{ name: 'x', shape: [-1, 3, 48, 192] }] }, 'test');
    const load = ModelInstance.load('ppocr_cls', '1', 'models/ppocr_cls/1/model.onnx', config, provider, NOOP_OBSERVER, factory);
    await expect(load).rejects.toThrow(/CUDA out of memory/);
    expect(cudaSessions).toBe(2);
    // Releases are fire-and-forget in the provider: wait for the ledger to see all three go.
    await waitFor(async () => (await s.ledger.listAllocations()).length === 0, 'every lease of the failed load released');
    expect(s.keeper.held).toEqual([]);
  });

  it('an acquire that fails part-way (not for capacity) gives back the leases it already took', async () => {
    await s.ledger.setPartition('gw/gpu3', { online: 1, batch: 0 }, 'test');
    let calls = 0;
    // The second allocation fails the way a lost database connection would.
    const flaky = Object.create(s.allocations) as typeof s.allocations;
    flaky.allocate = (req) => (++calls === 2 ? Promise.reject(new Error('connection terminated')) : s.allocations.allocate(req));
    const cap = new SchedulerCapacityProvider(flaky, s.ledger, 'gw', silentLogger, { gpuSharePerReplica: 0.25 });
    await expect(cap.acquire({ model: 'm', version: '1', count: 3, device: { kind: 'gpu', threadsPerReplica: 1, memoryMiB: 1000 } })).rejects.toThrow(
      'connection terminated',
    );
    expect(calls).toBe(2);
    expect(await s.ledger.listAllocations()).toEqual([]);
    expect(s.keeper.held).toEqual([]);
  });
});
