import { describe, expect, it } from 'vitest';
import { choose, emptyUsage, fitOnDevice, overCapacity, summarize, type LedgerAllocation, type LedgerDevice } from './placement';

const dev = (id: string, p: Partial<LedgerDevice> = {}): LedgerDevice => ({
  id,
  memoryMiB: 1000,
  onlineMilli: 500,
  batchMilli: 500,
  batchMayBorrow: true,
  ...p,
});
let seq = 0;
const alloc = (deviceId: string, kind: 'online' | 'batch', share: number, p: Partial<LedgerAllocation> = {}): LedgerAllocation => ({
  id: `a${++seq}`,
  deviceId,
  kind,
  state: 'active',
  shareMilli: share,
  memoryMiB: 0,
  borrowed: false,
  createdAtMs: seq,
  ...p,
});
const usage = (allocs: LedgerAllocation[]) => summarize(allocs).get('d')!;
const none = () => emptyUsage();

describe('placement rules', () => {
  it('batch fits its partition, then borrows idle online share (flagged), then stops', () => {
    const d = dev('d');
    expect(fitOnDevice(d, none(), { kind: 'batch', shareMilli: 500, memoryMiB: 0 })).toMatchObject({ ok: true, borrowed: false });
    const owned = [alloc('d', 'batch', 500)];
    expect(fitOnDevice(d, usage(owned), { kind: 'batch', shareMilli: 300, memoryMiB: 0 })).toMatchObject({ ok: true, borrowed: true });
    const full = [...owned, alloc('d', 'online', 300)];
    expect(fitOnDevice(d, usage(full), { kind: 'batch', shareMilli: 300, memoryMiB: 0 })).toMatchObject({ ok: false });
    expect(fitOnDevice(dev('d', { batchMayBorrow: false }), usage(owned), { kind: 'batch', shareMilli: 1, memoryMiB: 0 }).ok).toBe(false);
  });

  it('online is capped by its partition and revokes newest borrowed batch first', () => {
    const d = dev('d');
    const older = alloc('d', 'batch', 250, { borrowed: true });
    const newer = alloc('d', 'batch', 250, { borrowed: true });
    const u = usage([alloc('d', 'batch', 500), older, newer]);
    const f = fitOnDevice(d, u, { kind: 'online', shareMilli: 200, memoryMiB: 0 });
    expect(f).toMatchObject({ ok: true, wait: true });
    expect(f.ok && f.revoke.map((a) => a.id)).toEqual([newer.id]);
    expect(fitOnDevice(d, u, { kind: 'online', shareMilli: 600, memoryMiB: 0 }).ok).toBe(false);
  });

  it('counts shares already being revoked as about to be free, and pending online against batch', () => {
    const d = dev('d');
    const u = usage([
      alloc('d', 'batch', 500),
      alloc('d', 'batch', 500, { borrowed: true, state: 'revoking' }),
      alloc('d', 'online', 300, { state: 'pending' }),
    ]);
    expect(fitOnDevice(d, u, { kind: 'online', shareMilli: 200, memoryMiB: 0 })).toMatchObject({ ok: true, revoke: [], wait: true });
    expect(fitOnDevice(d, u, { kind: 'batch', shareMilli: 1, memoryMiB: 0 }).ok).toBe(false);
  });

  it('enforces memory', () => {
    const d = dev('d');
    expect(fitOnDevice(d, usage([alloc('d', 'batch', 100, { memoryMiB: 900 })]), { kind: 'batch', shareMilli: 100, memoryMiB: 200 }).ok).toBe(false);
    expect(fitOnDevice(d, none(), { kind: 'batch', shareMilli: 100, memoryMiB: 1001 }).ok).toBe(false);
  });

  it('pack prefers the fullest device, spread the emptiest, and both avoid preempting', () => {
    const fits = [
      { ok: true as const, deviceId: 'x', borrowed: false, revoke: [], wait: false, freeAfter: 100 },
      { ok: true as const, deviceId: 'y', borrowed: false, revoke: [], wait: false, freeAfter: 800 },
      { ok: true as const, deviceId: 'z', borrowed: false, revoke: [alloc('z', 'batch', 1)], wait: true, freeAfter: 0 },
    ];
    expect(choose(fits, 1, 'pack')!.map((f) => f.deviceId)).toEqual(['x']);
    expect(choose(fits, 1, 'spread')!.map((f) => f.deviceId)).toEqual(['y']);
    expect(choose(fits, 3, 'pack')!.map((f) => f.deviceId)).toEqual(['x', 'y', 'z']);
    expect(choose(fits, 4, 'pack')).toBeNull();
  });

  it('overCapacity ignores pending rows and reports share or memory overflow', () => {
    const d = dev('d');
    expect(overCapacity(d, [alloc('d', 'batch', 600), alloc('d', 'online', 500, { state: 'pending' })])).toBeNull();
    expect(overCapacity(d, [alloc('d', 'batch', 600), alloc('d', 'online', 500)])).toMatch(/share 1.1/);
    expect(overCapacity(d, [alloc('d', 'batch', 1, { memoryMiB: 1001 })])).toMatch(/memory/);
  });
});
