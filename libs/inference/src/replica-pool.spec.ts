import { describe, expect, it } from 'vitest';
import { LocalCapacityProvider } from './capacity-provider';
import { InferenceEngine } from './inference-engine';
import { ModelRepository } from './model-repository';
import type { InferenceRunner } from './model-runner';
import { ReplicaPool } from './replica-pool';

const fakeRunner = {} as InferenceRunner;
const lease = (id: string) => ({ id, placement: { kind: 'cpu' as const, intraOpThreads: 1 } });

describe('ReplicaPool', () => {
  it('routes by power-of-two-choices to the less loaded of two sampled replicas, honouring caps', () => {
    // Deterministic "random": always samples replicas 0 and 1.
    const pool = new ReplicaPool(() => 0);
    const a = pool.add(fakeRunner, lease('a'), 2);
    const b = pool.add(fakeRunner, lease('b'), 2);
    expect(pool.acquire()).toBe(a);
    expect(pool.acquire()).toBe(b); // a has 1 in flight, b 0
    expect(pool.acquire()).toBe(a);
    expect(pool.acquire()).toBe(b);
    expect(pool.acquire()).toBeUndefined(); // both at their cap of 2
    expect(pool.inflight).toBe(4);
    pool.release(a);
    expect(pool.hasCapacity()).toBe(true);
  });

  it('drains a removed replica: no new work, resolves once its in-flight work is released', async () => {
    const pool = new ReplicaPool(() => 0);
    const a = pool.add(fakeRunner, lease('a'), 1);
    pool.add(fakeRunner, lease('b'), 1);
    expect(pool.acquire()).toBe(a);
    let drained = false;
    const removal = pool.remove('a').then(() => (drained = true));
    expect(pool.size).toBe(1);
    await Promise.resolve();
    expect(drained).toBe(false);
    pool.release(a);
    await removal;
    expect(drained).toBe(true);
  });
});

describe('replica scaling through the capacity provider', () => {
  it('adds and removes worker replicas at runtime and returns their leases', async () => {
    const capacity = new LocalCapacityProvider({ cpuThreads: 2 });
    const engine = new InferenceEngine({ repository: new ModelRepository('models'), capacity, defaultTimeoutMs: 5_000 });
    try {
      const inst = await engine.load('scorer');
      expect(inst.replicas).toBe(1);
      await inst.scaleTo(3);
      expect(inst.replicas).toBe(3);
      expect(capacity.held).toBe(3);
      const results = await Promise.all(
        [0.1, 0.2, 0.3, 0.4].map((v) => engine.infer({ model: 'scorer', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(v) }] })),
      );
      results.forEach((r, i) => expect((r.outputs[0]!.data as Float32Array)[0]).toBeCloseTo(Math.tanh([0.1, 0.2, 0.3, 0.4][i]!), 6));
      await inst.scaleTo(1);
      expect(inst.replicas).toBe(1);
      expect(capacity.held).toBe(1);
    } finally {
      await engine.close();
    }
    expect(capacity.held).toBe(0);
  });

  it('clamps CPU threads per replica to the provider budget; grants GPU requests only GPUs, none without', async () => {
    const p = new LocalCapacityProvider({ cpuThreads: 2 });
    const [cpu] = await p.acquire({ model: 'm', version: '1', count: 1, device: { kind: 'cpu', threadsPerReplica: 8 } });
    expect(cpu!.placement).toEqual({ kind: 'cpu', intraOpThreads: 2 });
    expect(await p.acquire({ model: 'm', version: '1', count: 1, device: { kind: 'gpu', threadsPerReplica: 1 } })).toEqual([]);
    expect(p.held).toBe(1);
    const withGpu = new LocalCapacityProvider({ gpuDeviceIds: [3] });
    const [g] = await withGpu.acquire({ model: 'm', version: '1', count: 1, device: { kind: 'gpu', threadsPerReplica: 1, memoryMiB: 512 } });
    expect(g!.placement).toEqual({ kind: 'cuda', deviceId: 3, uuid: null, memoryMiB: 512 });
  });
});
