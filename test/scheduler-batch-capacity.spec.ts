import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchCapacity, HybridMetrics, silentLogger, type BatchCapacityOptions, type Scheduler } from '@tandem/scheduler';
import { schedulerHarness, waitFor, type Harness } from './support/scheduler-harness';
import { createTestDatabase, type TestDatabase } from './support/test-env';

const OPTS: BatchCapacityOptions = {
  mode: 'ledger',
  deviceKind: 'cpu',
  maxUnits: 4,
  borrowHoldDownMs: 300,
  retryMs: 20,
  idleReleaseMs: 60_000,
  gpuMemoryMiB: 0,
};

/** BatchCapacity against the real ledger: units as batch allocations, owned before borrowed. */
describe('BatchCapacity (batch worker units from the ledger)', () => {
  let db: TestDatabase;
  let h: Harness;
  let batchSide: Scheduler;
  let onlineSide: Scheduler;
  let seq = 0;
  const node = (): string => `bc${++seq}`;
  const capacity = (s: Scheduler, o: Partial<BatchCapacityOptions> = {}, metrics?: HybridMetrics): BatchCapacity =>
    new BatchCapacity({ ...OPTS, ...o }, silentLogger, { allocations: s.allocations, ledger: s.ledger, nodeName: s.options.nodeName }, metrics);

  async function pair(devices: string, partition = { online: 0.5, batch: 0.5, batchMayBorrow: true }): Promise<void> {
    const name = node();
    const declared = JSON.parse(devices) as never[];
    batchSide = await h.make({ nodeName: name, declaredDevices: declared, defaultPartition: partition });
    onlineSide = await h.make({ nodeName: name, declaredDevices: declared, defaultPartition: partition });
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    h = await schedulerHarness(db.url);
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('takes owned cores first, then borrows idle online cores; a no-borrow batch only gets owned ones', async () => {
    await pair('[{"kind":"cpu","cores":4,"memoryMiB":1024,"name":"Declared CPU"}]');
    const cap = capacity(batchSide);
    const slots = await Promise.all([0, 1, 2, 3].map(() => cap.acquire({ mayBorrow: true, priority: 50 })));
    expect(slots.map((s) => s.placement)).toEqual(Array(4).fill({ kind: 'cpu', intraOpThreads: 1 }));
    expect(slots.filter((s) => s.borrowed)).toHaveLength(2);
    expect(cap.snapshot()).toMatchObject({ owned: 2, borrowed: 2, busy: 4 });
    const [dev] = await batchSide.ledger.listDevices({ node: batchSide.options.nodeName });
    expect(dev!.used).toMatchObject({ batch: 1, borrowed: 0.5 });

    for (const s of slots) cap.release(s);
    const owned = await cap.acquire({ mayBorrow: false, priority: 50 });
    expect(owned.borrowed).toBe(false);
    cap.release(owned);
    await cap.stop();
    const [after] = await batchSide.ledger.listDevices({ node: batchSide.options.nodeName });
    expect(after!.used.batch).toBe(0);
  });

  it('a revoked unit is released only when the run on it reaches its safe point; no borrowing during the hold-down', async () => {
    await pair('[{"kind":"cpu","cores":2,"memoryMiB":1024,"name":"Declared CPU"}]');
    const cap = capacity(batchSide, { maxUnits: 2, borrowHoldDownMs: 2_000 });
    const [a, b] = await Promise.all([cap.acquire({ mayBorrow: true, priority: 50 }), cap.acquire({ mayBorrow: true, priority: 50 })]);
    const borrowed = [a!, b!].find((s) => s.borrowed)!;
    const id = onlineSide.options.nodeName;
    const online = onlineSide.allocations.allocate({ kind: 'online', share: 0.5, devices: [`${id}/cpu`] });
    await waitFor(async () => cap.snapshot().revoking === 1, 'the revocation notice');
    // Still busy: nothing released yet, the online grant waits.
    const racing = await Promise.race([online.then(() => 'granted'), new Promise((r) => setTimeout(() => r('waiting'), 150))]);
    expect(racing).toBe('waiting');
    cap.release(borrowed);
    const lease = await online;
    expect(lease.grant.preempted).toBe(1);
    expect(cap.revokeReleaseMs()).toHaveLength(1);
    expect(cap.snapshot()).toMatchObject({ owned: 1, borrowed: 0, revoking: 0 });

    // Online gives its share back, but the worker does not borrow again inside the hold-down.
    await lease.release();
    const waiting = cap.acquire({ mayBorrow: true, priority: 50 });
    await new Promise((r) => setTimeout(r, 300));
    expect(cap.snapshot().borrowed).toBe(0);
    const again = await waiting; // after the 2 s hold-down the idle online core is borrowed again
    expect(again.borrowed).toBe(true);
    cap.release(again);
    cap.release([a!, b!].find((s) => !s.borrowed)!);
    await cap.stop();
  });

  it('a preemptible run on a revoked unit is suspended at once, its share freed, and it continues first when a unit comes back', async () => {
    await pair('[{"kind":"cpu","cores":2,"memoryMiB":1024,"name":"Declared CPU"}]', { online: 1, batch: 0, batchMayBorrow: true });
    const metrics = new HybridMetrics();
    const fromLedger0 = (await metrics.revokeFromLedger.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const cap = capacity(batchSide, { maxUnits: 2, borrowHoldDownMs: 400 }, metrics);
    const events: string[] = [];
    const preempt = (name: string): { suspend(): void; resume(): void } => ({
      suspend: () => events.push(`${name} stopped`),
      resume: () => events.push(`${name} continued`),
    });
    const [a, b] = await Promise.all([
      cap.acquire({ mayBorrow: true, priority: 50, preempt: preempt('a') }),
      cap.acquire({ mayBorrow: true, priority: 50, preempt: preempt('b') }),
    ]);
    expect([a!.borrowed, b!.borrowed]).toEqual([true, true]);
    // Online takes one core: the run holding the revoked unit is stopped and the share released
    // without waiting for the run to end, so the online grant does not wait either.
    const lease = await onlineSide.allocations.allocate({ kind: 'online', share: 0.5, devices: [`${onlineSide.options.nodeName}/cpu`] });
    expect(lease.grant.preempted).toBe(1);
    const stopped = events[0]!.split(' ')[0]!;
    expect(events).toEqual([`${stopped} stopped`]);
    const [victim, other] = stopped === 'a' ? [a!, b!] : [b!, a!];
    expect(victim.unit).toBe(-1);
    expect(cap.snapshot()).toMatchObject({ borrowed: 1, busy: 1, suspended: 1, waiting: 0 });
    expect(cap.revokeReleaseMs()).toHaveLength(1);
    expect(cap.revokeReleaseMs()[0]!).toBeLessThan(5); // suspend + release call: no run to wait for
    // The NOTIFY carried the ledger's instant of revocation: the end-to-end time was observed too.
    const fromLedger = (await metrics.revokeFromLedger.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    expect(fromLedger - fromLedger0).toBe(1);

    // A new run queued meanwhile does not overtake the suspended one.
    const fresh = cap.acquire({ mayBorrow: true, priority: 50 });
    const freed = other.unit;
    cap.release(other); // its unit is free: the suspended run continues on it
    expect(events).toEqual([`${stopped} stopped`, `${stopped} continued`]);
    expect(victim.unit).toBe(freed);
    expect(cap.snapshot()).toMatchObject({ suspended: 0, waiting: 1 });
    cap.release(victim);
    cap.release(await fresh);
    await lease.release();
    await cap.stop();
  });

  it('with every unit revoked and no owned share, chunks wait out the borrowing hold-down before reading payloads; with owned share they go on', async () => {
    // No owned share (the shipped partition): nothing could run until borrowing is allowed again.
    await pair('[{"kind":"cpu","cores":1,"memoryMiB":1024,"name":"Declared CPU"}]', { online: 1, batch: 0, batchMayBorrow: true });
    const cap = capacity(batchSide, { maxUnits: 1, borrowHoldDownMs: 1_500 });
    const slot = await cap.acquire({ mayBorrow: true, priority: 50, preempt: { suspend: () => undefined, resume: () => undefined } });
    expect(slot.borrowed).toBe(true);
    await cap.whenRunnable(); // holding a unit: at once
    const lease = await onlineSide.allocations.allocate({ kind: 'online', share: 1, devices: [`${onlineSide.options.nodeName}/cpu`] });
    expect(lease.grant.preempted).toBe(1);
    await waitFor(async () => cap.snapshot().borrowHeldDownUntil !== null, 'the revocation and its hold-down');
    const until = Date.parse(cap.snapshot().borrowHeldDownUntil!);
    let openedAt = 0;
    const gate = cap.whenRunnable().then(() => (openedAt = Date.now()));
    await new Promise((r) => setTimeout(r, 50));
    expect(openedAt).toBe(0);
    await gate;
    expect(openedAt).toBeGreaterThanOrEqual(until - 5); // when borrowing may resume, not before
    cap.release(slot);
    await lease.release();
    await cap.stop();

    // Owned share left to take: the same state (no unit held, borrowing held down) does not hold chunks back.
    await pair('[{"kind":"cpu","cores":2,"memoryMiB":1024,"name":"Declared CPU"}]', { online: 0.5, batch: 0.5, batchMayBorrow: true });
    const cap2 = capacity(batchSide, { maxUnits: 2, borrowHoldDownMs: 60_000, idleReleaseMs: 50 });
    const [a, b] = await Promise.all(
      [0, 1].map(() => cap2.acquire({ mayBorrow: true, priority: 50, preempt: { suspend: () => undefined, resume: () => undefined } })),
    );
    const lease2 = await onlineSide.allocations.allocate({ kind: 'online', share: 0.5, devices: [`${onlineSide.options.nodeName}/cpu`] });
    expect(lease2.grant.preempted).toBe(1);
    cap2.release(a!);
    cap2.release(b!);
    await waitFor(async () => cap2.snapshot().owned + cap2.snapshot().borrowed === 0, 'the idle units given back');
    expect(cap2.snapshot().borrowHeldDownUntil).not.toBeNull();
    const open = await Promise.race([cap2.whenRunnable().then(() => 'open'), new Promise((r) => setTimeout(() => r('held'), 1_000))]);
    expect(open).toBe('open');
    await lease2.release();
    await cap2.stop();
  });

  it('a run aborted while suspended leaves the queue and is never continued', async () => {
    await pair('[{"kind":"cpu","cores":2,"memoryMiB":1024,"name":"Declared CPU"}]', { online: 1, batch: 0, batchMayBorrow: true });
    const cap = capacity(batchSide, { maxUnits: 1, borrowHoldDownMs: 60_000 });
    const events: string[] = [];
    const slot = await cap.acquire({ mayBorrow: true, priority: 50, preempt: { suspend: () => events.push('stop'), resume: () => events.push('cont') } });
    const lease = await onlineSide.allocations.allocate({ kind: 'online', share: 1, devices: [`${onlineSide.options.nodeName}/cpu`] });
    expect(events).toEqual(['stop']);
    expect(cap.snapshot()).toMatchObject({ owned: 0, borrowed: 0, suspended: 1 });
    cap.release(slot); // the caller killed the run (cancel): it gives up its place
    expect(cap.snapshot()).toMatchObject({ suspended: 0, waiting: 0 });
    await lease.release();
    await cap.stop();
    expect(events).toEqual(['stop']);
  });

  it('serves higher priority first when units are scarce', async () => {
    await pair('[{"kind":"cpu","cores":2,"memoryMiB":1024,"name":"Declared CPU"}]', { online: 0.5, batch: 0.5, batchMayBorrow: false });
    const cap = capacity(batchSide, { maxUnits: 1 });
    const first = await cap.acquire({ mayBorrow: true, priority: 50 });
    const order: string[] = [];
    const low = cap.acquire({ mayBorrow: true, priority: 10 }).then((s) => (order.push('low'), s));
    const high = cap.acquire({ mayBorrow: true, priority: 90 }).then((s) => (order.push('high'), s));
    cap.release(first);
    cap.release(await high);
    cap.release(await low);
    expect(order).toEqual(['high', 'low']);
    await cap.stop();
  });

  it('GPU units come from the ledger with the CUDA device index to run on', async () => {
    await pair('[{"kind":"gpu","index":3,"uuid":"GPU-test-3","name":"Declared GPU","memoryMiB":16000}]', { online: 0, batch: 1, batchMayBorrow: true });
    const cap = capacity(batchSide, { deviceKind: 'gpu', maxUnits: 1, gpuMemoryMiB: 2000 });
    const slot = await cap.acquire({ mayBorrow: true, priority: 50 });
    expect(slot.placement).toEqual({ kind: 'cuda', deviceId: 3, uuid: 'GPU-test-3', memoryMiB: 2000 });
    const allocs = await batchSide.ledger.listAllocations({ kind: 'batch' });
    expect(allocs.filter((x) => x.deviceId.startsWith(batchSide.options.nodeName))).toMatchObject([{ memoryMiB: 2000, share: 1 }]);
    cap.release(slot);
    await cap.stop();
  });

  it('a borrowed GPU unit holds its memory until its run reaches the safe point; then online gets share and memory', async () => {
    await pair('[{"kind":"gpu","index":0,"uuid":"MIG-test-0","name":"Declared GPU","memoryMiB":16000}]', { online: 1, batch: 0, batchMayBorrow: true });
    const dev = `${batchSide.options.nodeName}/gpu0`;
    const cap = capacity(batchSide, { deviceKind: 'gpu', maxUnits: 1, gpuMemoryMiB: 12_000 });
    const slot = await cap.acquire({ mayBorrow: true, priority: 50 });
    expect([slot.borrowed, slot.placement]).toEqual([true, { kind: 'cuda', deviceId: 0, uuid: 'MIG-test-0', memoryMiB: 12_000 }]);
    expect((await onlineSide.ledger.getDevice(dev)).used).toMatchObject({ borrowed: 1, memoryMiB: 12_000, memoryFreeMiB: 4_000 });
    // Online needs 8 000 MiB: only revoking the unit makes room; it waits for the run's safe point.
    const online = onlineSide.allocations.allocate({ kind: 'online', share: 0.5, memoryMiB: 8_000, devices: [dev] });
    await waitFor(async () => cap.snapshot().revoking === 1, 'the unit revoked');
    expect((await onlineSide.ledger.getDevice(dev)).used).toMatchObject({ memoryMiB: 12_000, pendingOnline: 0.5 });
    cap.release(slot); // the run's model batch ended
    const lease = await online;
    expect(lease.grant.preempted).toBe(1);
    expect((await onlineSide.ledger.getDevice(dev)).used).toMatchObject({ online: 0.5, batch: 0, memoryMiB: 8_000, memoryFreeMiB: 8_000 });
    await lease.release();
    await cap.stop();
  });

  it("a GPU unit holds the memory of its run's model; a run needing more gets a new unit, the small one given back after its process ended", async () => {
    await pair('[{"kind":"gpu","index":3,"uuid":"GPU-test-3","name":"Declared GPU","memoryMiB":16000}]', { online: 0, batch: 1, batchMayBorrow: true });
    const cap = capacity(batchSide, { deviceKind: 'gpu', maxUnits: 1, gpuMemoryMiB: 2000 });
    const mine = async (): Promise<{ id: string; memoryMiB: number }[]> =>
      (await batchSide.ledger.listAllocations({ kind: 'batch' })).filter((x) => x.deviceId.startsWith(batchSide.options.nodeName));
    const gone: { unitId: string; heldInLedger: number[] }[] = [];
    cap.onUnitGone(async (unitId) => void gone.push({ unitId, heldInLedger: (await mine()).map((a) => a.memoryMiB) }));

    const first = await cap.acquire({ mayBorrow: true, priority: 50, memoryMiB: 4000 });
    expect(first.placement).toEqual({ kind: 'cuda', deviceId: 3, uuid: 'GPU-test-3', memoryMiB: 4000 });
    expect(await mine()).toMatchObject([{ memoryMiB: 4000 }]);
    const unit = first.unitId;
    cap.release(first);
    // A model without a declared figure (the default 2 000 MiB) fits in the 4 000 MiB unit: same unit.
    const second = await cap.acquire({ mayBorrow: true, priority: 50 });
    expect(second.unitId).toBe(unit);
    cap.release(second);
    // 10 000 MiB does not fit: the free 4 000 MiB unit goes back (its process first: the ledger still
    // held it while the listener ran), and a 10 000 MiB unit is taken.
    const third = await cap.acquire({ mayBorrow: true, priority: 50, memoryMiB: 10_000 });
    expect(third.placement).toMatchObject({ kind: 'cuda', memoryMiB: 10_000 });
    expect(third.unitId).not.toBe(unit);
    expect(gone).toEqual([{ unitId: unit, heldInLedger: [4000] }]);
    expect(await mine()).toMatchObject([{ memoryMiB: 10_000 }]);
    cap.release(third);
    // More than any GPU of the node has: the run fails instead of waiting forever.
    await expect(cap.acquire({ mayBorrow: true, priority: 50, memoryMiB: 20_000 })).rejects.toThrow(
      `the model needs 20000 MiB of GPU memory; the largest GPU device of node ${batchSide.options.nodeName} has 16000 MiB`,
    );
    await cap.stop();
    expect(gone).toEqual([
      { unitId: unit, heldInLedger: [4000] },
      { unitId: third.unitId, heldInLedger: [10_000] },
    ]);
    expect(await mine()).toEqual([]);
  });

  it('fixed mode never touches the ledger', async () => {
    const cap = new BatchCapacity({ ...OPTS, mode: 'fixed', maxUnits: 2 }, silentLogger, null);
    const s = await Promise.all([cap.acquire({ mayBorrow: true, priority: 1 }), cap.acquire({ mayBorrow: true, priority: 1 })]);
    expect(s.map((x) => x.unit).sort()).toEqual([0, 1]);
    expect(cap.snapshot()).toMatchObject({ mode: 'fixed', owned: 2, borrowed: 0 });
    for (const x of s) cap.release(x);
    await cap.stop();
  });
});
