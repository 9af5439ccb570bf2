import { readFileSync } from 'node:fs';
import { InferenceSession } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelInstance, NOOP_OBSERVER, parseModelConfig, sharedProcessGpus, type CapacityProvider, type SessionFactory } from '@tandem/inference';
import { defaultSchedulerOptions, Scheduler, SchedulerCapacityProvider, silentLogger, StaticGpuProbe } from '@tandem/scheduler';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { FAST, schedulerHarness, waitFor, type Harness } from './support/scheduler-harness';

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

describe('replicas on a node with MIG instances (the 8×H100 fixture, MIG on GPU 0)', () => {
  let db: TestDatabase;
  let h: Harness;
  let s: Scheduler;
  const fixture = (f: string): string => readFileSync(`test/fixtures/nvidia-smi/${f}`, 'utf8');
  const MIG0 = 'MIG-9e80e24b-6f5d-4c2e-9a7b-0d1e2f7a4b5c';

  beforeAll(async () => {
    db = await createTestDatabase();
    h = await schedulerHarness(db.url);
    const probe = new StaticGpuProbe(fixture('h100x8-mig.query.csv'), fixture('h100x8-mig.list.txt'));
    s = new Scheduler(h.ds, defaultSchedulerOptions({ nodeName: 'mig', discoverCpu: false, discoverGpus: true, placement: 'pack', ...FAST }), {
      probe,
      databaseUrl: db.url,
    });
    await s.start();
    h.schedulers.push(s);
    // Only gpu0-mig0 and gpu1 stay schedulable: under pack with equal fits, gpu0-mig0 sorts first.
    for (const d of await s.ledger.listDevices({ node: 'mig' })) {
      if (d.id === 'mig/gpu0-mig0' || d.id === 'mig/gpu1') await s.ledger.setPartition(d.id, { online: 1, batch: 0 }, 'test');
      else await s.ledger.setDrained(d.id, true, 'test');
    }
  });

  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('a replica (a thread of this process) never gets a MIG instance: CUDA would not show it to this process', async () => {
    const got = await s.capacity.acquire({ model: 'm', version: '1', count: 2, device: { kind: 'gpu', threadsPerReplica: 1, memoryMiB: 10_000 } });
    expect(got.map((l) => l.lease.grant.devices[0]!.deviceId)).toEqual(['mig/gpu1']);
    expect(got.map((l) => l.placement)).toEqual([{ kind: 'cuda', deviceId: 1, uuid: 'GPU-5b4daf1c-6f1e-4c2e-9a7b-0d1e2f3b4b5c', memoryMiB: 10_000 }]);
    await Promise.all(got.map((l) => l.lease.release()));
    // The ledger itself would have chosen the MIG instance: the constraint is what keeps it off.
    const unconstrained = await s.allocations.allocate({ kind: 'online', share: 1, memoryMiB: 10_000, deviceKind: 'gpu', nodes: ['mig'] });
    expect(unconstrained.grant.devices[0]!.deviceId).toBe('mig/gpu0-mig0');
    await unconstrained.release();
  });

  it('a process pinned to one MIG instance gets exactly that instance, and one pinned to whole GPUs only those', async () => {
    const pinned = await s.capacity.acquire(
      { model: 'm', version: '1', count: 2, device: { kind: 'gpu', threadsPerReplica: 1, memoryMiB: 10_000 } },
      sharedProcessGpus(MIG0),
    );
    expect(pinned.map((l) => l.placement)).toEqual([{ kind: 'cuda', deviceId: 0, uuid: MIG0, memoryMiB: 10_000 }]);
    await Promise.all(pinned.map((l) => l.lease.release()));
    expect(await s.capacity.acquire({ model: 'm', version: '1', count: 1, device: { kind: 'gpu', threadsPerReplica: 1 } }, sharedProcessGpus('2,3'))).toEqual(
      [],
    );
    const byIndex = await s.capacity.acquire({ model: 'm', version: '1', count: 1, device: { kind: 'gpu', threadsPerReplica: 1 } }, sharedProcessGpus('0,1'));
    expect(byIndex.map((l) => l.lease.grant.devices[0]!.deviceId)).toEqual(['mig/gpu1']); // index 0 names the MIG-enabled GPU, not its instances
    await Promise.all(byIndex.map((l) => l.lease.release()));
  });

  it('mig "only" and a gpus list are checked as request fields', async () => {
    const only = await s.allocations.allocate({ kind: 'online', share: 1, deviceKind: 'gpu', mig: 'only', placement: 'spread' });
    expect(only.grant.devices[0]!.deviceId).toBe('mig/gpu0-mig0');
    await only.release();
    await expect(s.allocations.allocate({ kind: 'online', share: 1, mig: 'some' as never })).rejects.toThrow('mig must be "exclude", "only" or "allow"');
    await expect(s.allocations.allocate({ kind: 'online', share: 1, gpus: [] })).rejects.toThrow(/no capacity/);
  });
});
