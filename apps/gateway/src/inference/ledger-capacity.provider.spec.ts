import { describe, expect, it } from 'vitest';
import { configureGpuProcess, LocalCapacityProvider, type ReplicaRequest } from '@tandem/inference';
import type { SchedulerCapacityProvider } from '@tandem/scheduler';
import { LedgerCapacityProvider } from './ledger-capacity.provider';

/** A ledger that has one GPU (index 2) to give. */
function oneGpuLedger(): { ledger: SchedulerCapacityProvider; released: string[] } {
  const released: string[] = [];
  let free = 1;
  const ledger = {
    acquire: async (req: ReplicaRequest) => {
      const n = Math.min(free, req.count);
      free -= n;
      return Array.from({ length: n }, (_, i) => ({ id: `g${i}`, placement: { kind: 'cuda' as const, deviceId: 2, uuid: null, memoryMiB: 0 }, lease: {} }));
    },
    release: (l: { id: string }) => void released.push(l.id),
  } as unknown as SchedulerCapacityProvider;
  return { ledger, released };
}

describe('LedgerCapacityProvider', () => {
  const req = (kind: 'cpu' | 'gpu', count: number): ReplicaRequest => ({ model: 'm', version: '1', count, device: { kind, threadsPerReplica: 1 } });

  it('places GPU replicas only where the ledger grants a GPU (never a CPU share in their place); releases each to its source', async () => {
    const { ledger, released } = oneGpuLedger();
    const local = new LocalCapacityProvider({ cpuThreads: 2 });
    const p = new LedgerCapacityProvider(ledger, local);
    const leases = await p.acquire(req('gpu', 2));
    expect(leases.map((l) => l.placement)).toEqual([{ kind: 'cuda', deviceId: 2, uuid: null, memoryMiB: 0 }]);
    expect(local.held).toBe(0);
    expect(await p.acquire(req('gpu', 1))).toEqual([]);
    for (const l of leases) p.release(l);
    expect(released).toEqual(['g0']);
  });

  it('CPU replicas never touch the ledger', async () => {
    const { ledger } = oneGpuLedger();
    const p = new LedgerCapacityProvider(ledger, new LocalCapacityProvider({ cpuThreads: 2 }));
    expect((await p.acquire(req('cpu', 1)))[0]!.placement).toEqual({ kind: 'cpu', intraOpThreads: 1 });
    expect((await p.acquire(req('gpu', 1)))[0]!.placement).toEqual({ kind: 'cuda', deviceId: 2, uuid: null, memoryMiB: 0 }); // still free
  });

  it('asks the ledger only for GPUs this process can address: no MIG instance, unless the gateway is pinned to that one', async () => {
    const asked: unknown[] = [];
    const ledger = { acquire: async (_r: ReplicaRequest, gpus: unknown) => (asked.push(gpus), []) } as unknown as SchedulerCapacityProvider;
    configureGpuProcess({});
    await new LedgerCapacityProvider(ledger, new LocalCapacityProvider({ cpuThreads: 2 })).acquire(req('gpu', 1));
    configureGpuProcess({ visibleDevices: 'MIG-9e80e24b-6f5d-4c2e-9a7b-0d1e2f7a4b5c' });
    await new LedgerCapacityProvider(ledger, new LocalCapacityProvider({ cpuThreads: 2 })).acquire(req('gpu', 1));
    configureGpuProcess({ visibleDevices: '1,2' });
    await new LedgerCapacityProvider(ledger, new LocalCapacityProvider({ cpuThreads: 2 })).acquire(req('gpu', 1));
    configureGpuProcess({});
    expect(asked).toEqual([{ mig: 'exclude' }, { mig: 'allow', gpus: ['MIG-9e80e24b-6f5d-4c2e-9a7b-0d1e2f7a4b5c'] }, { mig: 'exclude', gpus: ['1', '2'] }]);
  });
});
