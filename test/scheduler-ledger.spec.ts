import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainException, ErrorCode } from '@tandem/shared';
import { AuditLogRepository } from '@tandem/persistence';
import type { RevocationNotice, Scheduler } from '@tandem/scheduler';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { schedulerHarness, waitFor, type Harness } from './support/scheduler-harness';

const H100 = readFileSync(join(process.cwd(), 'test/fixtures/nvidia-smi/h100x4.csv'), 'utf8');

/** A prom-client counter's total over all label sets. */
async function counter(m: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await m.get()).values.reduce((s, v) => s + v.value, 0);
}

async function code(p: Promise<unknown>): Promise<ErrorCode> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DomainException) return e.code;
    throw e;
  }
  throw new Error('expected a DomainException');
}

describe('device ledger against real Postgres', () => {
  let db: TestDatabase;
  let h: Harness;
  let a: Scheduler; // node-a: 4 discovered H100s (fixture) + a declared 8-core CPU
  let b: Scheduler; // a second process on node-a (batch worker role)

  beforeAll(async () => {
    db = await createTestDatabase();
    h = await schedulerHarness(db.url);
    a = await h.make({ nodeName: 'node-a', declaredDevices: [{ kind: 'cpu', cores: 8, memoryMiB: 16_384, name: 'Declared CPU' }] }, H100);
    b = await h.make({ nodeName: 'node-a', agentEnabled: false, heartbeatMs: 60_000, leaseTtlMs: 120_000 });
  });

  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('registers discovered GPUs and the declared CPU, labelled by source', async () => {
    const devices = await a.ledger.listDevices();
    expect(devices.map((d) => [d.id, d.kind, d.source])).toEqual([
      ['node-a/cpu', 'cpu', 'declared'],
      ['node-a/gpu0', 'gpu', 'discovered'],
      ['node-a/gpu1', 'gpu', 'discovered'],
      ['node-a/gpu2', 'gpu', 'discovered'],
      ['node-a/gpu3', 'gpu', 'discovered'],
    ]);
    const g1 = devices[2]!;
    expect(g1).toMatchObject({ model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, gpuIndex: 1, gpuUuid: 'GPU-7b4d0f1c-8e2a-4d3f-8b6c-1e2f3a4b5c6d' });
    expect(g1.partition).toEqual({ deviceId: 'node-a/gpu1', online: 0.5, batch: 0.5, batchMayBorrow: true });
    expect((await a.ledger.listNodes()).map((n) => [n.name, n.status])).toEqual([['node-a', 'alive']]);
  });

  it('gives a GPU grant its index, UUID and CUDA_VISIBLE_DEVICES, and a CPU grant its threads', async () => {
    const g = await a.allocations.allocate({ kind: 'online', share: 0.25, memoryMiB: 1000, deviceKind: 'gpu', devices: ['node-a/gpu2'] });
    expect(g.grant.devices).toEqual([
      expect.objectContaining({
        deviceId: 'node-a/gpu2',
        share: 0.25,
        memoryMiB: 1000,
        gpuIndex: 2,
        gpuUuid: 'GPU-9c5e1a2d-0f3b-4e4a-9c7d-2f3a4b5c6d7e',
        threads: null,
      }),
    ]);
    expect(g.grant.cudaVisibleDevices).toBe('GPU-9c5e1a2d-0f3b-4e4a-9c7d-2f3a4b5c6d7e');
    const c = await a.allocations.allocate({ kind: 'batch', share: 0.25, deviceKind: 'cpu' });
    expect(c.grant.threads).toBe(2);
    expect(c.grant.cudaVisibleDevices).toBe('');
    await g.release();
    await c.release();
    expect(await a.ledger.listAllocations()).toEqual([]);
  });

  it('packs fractional shares onto one device, or spreads them', async () => {
    const packed = [];
    for (let i = 0; i < 3; i++) packed.push(await a.allocations.allocate({ kind: 'batch', share: 0.125, deviceKind: 'gpu', placement: 'pack' }));
    expect(new Set(packed.map((l) => l.grant.devices[0]!.deviceId)).size).toBe(1);
    const spread = [];
    for (let i = 0; i < 3; i++) spread.push(await a.allocations.allocate({ kind: 'batch', share: 0.125, deviceKind: 'gpu', placement: 'spread' }));
    expect(new Set(spread.map((l) => l.grant.devices[0]!.deviceId)).size).toBe(3);
    await Promise.all([...packed, ...spread].map((l) => l.release()));
  });

  it('takes whole devices as N allocations in one group and never exceeds a device', async () => {
    await a.ledger.setPartition('node-a/gpu0', { online: 1, batch: 0 }, 'test');
    await a.ledger.setPartition('node-a/gpu1', { online: 1, batch: 0 }, 'test');
    const two = await a.allocations.allocate({ kind: 'online', share: 2, deviceKind: 'gpu' });
    expect(two.grant.devices.map((d) => d.deviceId).sort()).toEqual(['node-a/gpu0', 'node-a/gpu1']);
    expect(two.grant.cudaVisibleDevices.split(',')).toHaveLength(2);
    // Both are full now: a further online share has nowhere to go on them.
    expect(await code(a.allocations.allocate({ kind: 'online', share: 0.1, devices: ['node-a/gpu0', 'node-a/gpu1'] }))).toBe(ErrorCode.Unavailable);
    // Memory is enforced too: more than any device has is a conflict, not a wait.
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 0.1, memoryMiB: 90_000, deviceKind: 'gpu' }))).toBe(ErrorCode.Conflict);
    await two.release();
    await a.ledger.setPartition('node-a/gpu0', { online: 0.5, batch: 0.5 }, 'test');
    await a.ledger.setPartition('node-a/gpu1', { online: 0.5, batch: 0.5 }, 'test');
    expect(await a.ledger.violations()).toEqual([]);
  });

  it('memory is a hard limit: refused (Conflict) while share is free; online revokes borrowed batch memory', async () => {
    const dev = 'node-a/gpu2'; // 81 559 MiB, partition online 0.5 / batch 0.5
    const owned = await b.allocations.allocate({ kind: 'batch', share: 0.25, memoryMiB: 60_000, devices: [dev], holder: 'worker-m' });
    // Online share is free, but owned batch memory is not revocable: 60 000 + 30 000 > 81 559.
    const refused = a.allocations.allocate({ kind: 'online', share: 0.25, memoryMiB: 30_000, devices: [dev] });
    await expect(refused).rejects.toThrow(/memory over-commit refused for online share 0.25 with 30000 MiB: node-a\/gpu2: needs 30000 MiB, 21559 MiB free/);
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 0.25, memoryMiB: 30_000, devices: [dev] }))).toBe(ErrorCode.Conflict);
    // Share still full is a wait (503), whatever the memory.
    expect(await code(a.allocations.allocate({ kind: 'online', share: 0.6, memoryMiB: 1, devices: [dev] }))).toBe(ErrorCode.Unavailable);
    const fits = await a.allocations.allocate({ kind: 'online', share: 0.25, memoryMiB: 21_559, devices: [dev] });
    expect((await a.ledger.getDevice(dev)).used.memoryMiB).toBe(81_559);
    await fits.release();
    await owned.release();

    // A borrowed batch unit holds memory like any other; online memory pressure alone revokes it.
    const own = await b.allocations.allocate({ kind: 'batch', share: 0.5, devices: [dev], holder: 'worker-m' });
    const lent = await b.allocations.allocate({ kind: 'batch', share: 0.25, memoryMiB: 70_000, devices: [dev], holder: 'worker-m' });
    expect(lent.grant.borrowed).toBe(true);
    lent.onRevoke(() => void lent.release());
    const online = await a.allocations.allocate({ kind: 'online', share: 0.1, memoryMiB: 20_000, devices: [dev] });
    expect(online.grant.preempted).toBe(1);
    expect(lent.state).toBe('released');
    expect((await a.ledger.getDevice(dev)).used).toMatchObject({ online: 0.1, batch: 0.5, borrowed: 0, memoryMiB: 20_000 });
    expect(await a.ledger.violations()).toEqual([]);
    await online.release();
    await own.release();
  });

  it('rejects bad requests with 4xx codes', async () => {
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 0 }))).toBe(ErrorCode.InvalidArgument);
    expect(await code(a.allocations.allocate({ kind: 'batch', share: -1 }))).toBe(ErrorCode.InvalidArgument);
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 1.5 }))).toBe(ErrorCode.InvalidArgument);
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 5, deviceKind: 'gpu' }))).toBe(ErrorCode.InvalidArgument);
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 0.1, devices: ['node-a/gpu9'] }))).toBe(ErrorCode.NotFound);
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 0.1, nodes: ['nope'] }))).toBe(ErrorCode.NotFound);
    expect(await code(a.ledger.setPartition('node-a/gpu0', { online: 0.7, batch: 0.4 }, 'test'))).toBe(ErrorCode.InvalidArgument);
    expect(await code(a.ledger.setPartition('node-a/zzz', { online: 0.5, batch: 0.5 }, 'test'))).toBe(ErrorCode.NotFound);
  });

  it('audits a partition change in the same transaction', async () => {
    const before = (await new AuditLogRepository(h.ds).list(1000)).length;
    const p = await a.ledger.setPartition('node-a/gpu3', { online: 0.6, batch: 0.3, batchMayBorrow: false }, 'alice');
    expect(p).toEqual({ deviceId: 'node-a/gpu3', online: 0.6, batch: 0.3, batchMayBorrow: false });
    const log = await a.ledger.auditLog(1);
    expect(log.entries[0]).toMatchObject({
      actor: 'alice',
      action: 'partition.update',
      target: 'device:node-a/gpu3',
      details: { before: { online: 0.5, batch: 0.5, batchMayBorrow: true }, after: { online: 0.6, batch: 0.3, batchMayBorrow: false } },
    });
    expect((await new AuditLogRepository(h.ds).list(1000)).length).toBe(before + 1);
    // With borrowing off, batch stops at its 0.3 partition.
    const l = await a.allocations.allocate({ kind: 'batch', share: 0.3, devices: ['node-a/gpu3'] });
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 0.01, devices: ['node-a/gpu3'] }))).toBe(ErrorCode.Unavailable);
    await l.release();
  });

  it('a drained device takes no new allocations until undrained', async () => {
    const d = await a.ledger.setDrained('node-a/gpu3', true, 'bob');
    expect(d.drained).toBe(true);
    expect(await code(a.allocations.allocate({ kind: 'batch', share: 0.1, devices: ['node-a/gpu3'] }))).toBe(ErrorCode.Unavailable);
    await a.ledger.setDrained('node-a/gpu3', false, 'bob');
    const l = await a.allocations.allocate({ kind: 'batch', share: 0.1, devices: ['node-a/gpu3'] });
    await l.release();
    expect((await a.ledger.auditLog(2)).entries.map((e) => e.action)).toEqual(['device.undrain', 'device.drain']);
  });

  it('preempts borrowed batch share: the holder hears it via NOTIFY, releases, and the share moves to online', async () => {
    const dev = 'node-a/gpu0';
    // b renews only every 60 s, so a revocation it sees within the test can only have come by NOTIFY.
    const owned = await b.allocations.allocate({ kind: 'batch', share: 0.5, devices: [dev], holder: 'worker-1' });
    const borrowed = await b.allocations.allocate({ kind: 'batch', share: 0.5, devices: [dev], holder: 'worker-1' });
    expect([owned.grant.borrowed, borrowed.grant.borrowed]).toEqual([false, true]);
    const preemptionsBefore = await counter(a.metrics.preemptions);
    const heard: RevocationNotice[] = [];
    borrowed.onRevoke((n) => {
      heard.push(n);
      void borrowed.release(); // the worker finishes its unit of work and gives the share back
    });
    owned.onRevoke(() => heard.push({} as RevocationNotice));
    const online = await a.allocations.allocate({ kind: 'online', share: 0.4, devices: [dev], holder: 'replica-1' });
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ allocationId: borrowed.allocationIds[0], deviceId: dev, holder: 'worker-1', reason: 'preempted' });
    expect(borrowed.signal.aborted).toBe(true);
    expect(owned.signal.aborted).toBe(false);
    expect(await counter(a.metrics.preemptions)).toBe(preemptionsBefore + 1);
    const d = await a.ledger.getDevice(dev);
    expect(d.used).toMatchObject({ online: 0.4, batch: 0.5, borrowed: 0, pendingOnline: 0 });
    expect((await a.ledger.listAllocations({ deviceId: dev })).map((x) => [x.holder, x.state]).sort()).toEqual([
      ['replica-1', 'active'],
      ['worker-1', 'active'],
    ]);
    await online.release();
    await owned.release();
  });

  it('force-reclaims a revoked share whose holder ignores the revocation past the grace', async () => {
    const dev = 'node-a/gpu1';
    const owned = await b.allocations.allocate({ kind: 'batch', share: 0.5, devices: [dev], holder: 'stubborn' });
    const borrowed = await b.allocations.allocate({ kind: 'batch', share: 0.5, devices: [dev], holder: 'stubborn' });
    const online = await a.allocations.allocate({ kind: 'online', share: 0.5, devices: [dev], holder: 'replica-2' });
    expect(borrowed.signal.aborted).toBe(true);
    const rows = await a.ledger.listAllocations({ deviceId: dev });
    expect(rows.map((x) => [x.holder, x.kind, x.share, x.state]).sort()).toEqual([
      ['replica-2', 'online', 0.5, 'active'],
      ['stubborn', 'batch', 0.5, 'active'],
    ]);
    expect(rows.find((x) => x.holder === 'stubborn')!.id).toBe(owned.allocationIds[0]);
    await b.keeper.renewAll();
    expect(borrowed.state).toBe('lost');
    await Promise.all([online.release(), owned.release(), borrowed.release()]);
  });

  it('reclaims an expired lease (a holder that stopped renewing)', async () => {
    const c = await h.make({ nodeName: 'node-a', agentEnabled: false });
    const l = await c.allocations.allocate({ kind: 'batch', share: 0.2, devices: ['node-a/gpu2'], holder: 'crashy' });
    const expiredBefore = await counter(a.metrics.leaseExpiries);
    c.keeper.stop(); // as if the process froze: no more renewals
    const id = l.allocationIds[0]!;
    await waitFor(async () => !(await a.ledger.listAllocations({ holder: 'crashy' })).some((x) => x.id === id), 'lease expiry');
    // The reaper counts after its DELETE commits; wait for that, then check it counted exactly one.
    await waitFor(async () => (await counter(a.metrics.leaseExpiries)) > expiredBefore, 'expiry counted');
    expect(await counter(a.metrics.leaseExpiries)).toBe(expiredBefore + 1);
    expect(await a.ledger.violations()).toEqual([]);
  });
});
