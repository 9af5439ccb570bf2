import { describe, expect, it } from 'vitest';
import { LocalCapacityProvider } from './capacity-provider';
import { cudaPlacement, replicaThreads } from './placement';

describe('placement', () => {
  it("a CPU replica's threads: what the model asks, capped by the machine's cores, at least one", () => {
    expect(replicaThreads(4, 8)).toBe(4);
    expect(replicaThreads(16, 8)).toBe(8);
    expect(replicaThreads(0, 8)).toBe(1);
    expect(replicaThreads(2, 0)).toBe(1);
  });

  it('the local provider and the ledger provider use the same rule', async () => {
    const [lease] = await new LocalCapacityProvider({ cpuThreads: 3 }).acquire({
      model: 'm',
      version: '1',
      count: 1,
      device: { kind: 'cpu', threadsPerReplica: 5 },
    });
    expect(lease!.placement).toEqual({ kind: 'cpu', intraOpThreads: replicaThreads(5, 3) });
    expect(replicaThreads(5, 3)).toBe(3);
  });

  it('a GPU grant becomes a CUDA placement pinned by its UUID (a MIG instance too)', () => {
    expect(cudaPlacement({ gpuIndex: 2, gpuUuid: 'MIG-abc', memoryMiB: 12_000 })).toEqual({ kind: 'cuda', deviceId: 2, uuid: 'MIG-abc', memoryMiB: 12_000 });
    expect(cudaPlacement({ gpuIndex: null, gpuUuid: null, memoryMiB: 0 })).toEqual({ kind: 'cuda', deviceId: 0, uuid: null, memoryMiB: 0 });
  });
});
