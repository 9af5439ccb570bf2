import { MILLI, type AllocationKind } from '../scheduler.types';

/** Pure admission and placement rules of the ledger; the repository feeds it locked rows. */

export interface LedgerDevice {
  id: string;
  memoryMiB: number;
  onlineMilli: number;
  batchMilli: number;
  batchMayBorrow: boolean;
}

export interface LedgerAllocation {
  id: string;
  deviceId: string;
  kind: AllocationKind;
  state: 'pending' | 'active' | 'revoking';
  shareMilli: number;
  memoryMiB: number;
  borrowed: boolean;
  /** Epoch ms; newer borrowed shares are revoked first (they have done the least work). */
  createdAtMs: number;
}

export interface DeviceUsage {
  onlineActive: number;
  onlinePending: number;
  batch: number;
  batchBorrowed: number;
  revoking: number;
  memActive: number;
  memPending: number;
  memRevoking: number;
  /** Borrowed batch allocations still `active`: what online may revoke. Newest first. */
  revocable: LedgerAllocation[];
}

export function emptyUsage(): DeviceUsage {
  return { onlineActive: 0, onlinePending: 0, batch: 0, batchBorrowed: 0, revoking: 0, memActive: 0, memPending: 0, memRevoking: 0, revocable: [] };
}

export function summarize(allocs: readonly LedgerAllocation[]): Map<string, DeviceUsage> {
  const out = new Map<string, DeviceUsage>();
  for (const a of allocs) {
    let u = out.get(a.deviceId);
    if (!u) {
      u = emptyUsage();
      out.set(a.deviceId, u);
    }
    if (a.state === 'pending') {
      u.onlinePending += a.shareMilli;
      u.memPending += a.memoryMiB;
      continue;
    }
    u.memActive += a.memoryMiB;
    if (a.kind === 'online') u.onlineActive += a.shareMilli;
    else {
      u.batch += a.shareMilli;
      if (a.borrowed) u.batchBorrowed += a.shareMilli;
      if (a.borrowed && a.state === 'active') u.revocable.push(a);
    }
    if (a.state === 'revoking') {
      u.revoking += a.shareMilli;
      u.memRevoking += a.memoryMiB;
    }
  }
  for (const u of out.values()) u.revocable.sort((x, y) => y.createdAtMs - x.createdAtMs || (x.id < y.id ? 1 : -1));
  return out;
}

export type Fit =
  | {
      ok: true;
      deviceId: string;
      borrowed: boolean;
      /** Borrowed batch allocations to revoke so this request fits. */
      revoke: LedgerAllocation[];
      /** The share only becomes usable once revoked shares are gone (state `pending`). */
      wait: boolean;
      /** Share left on the device after this placement (ranking). */
      freeAfter: number;
    }
  /** `memory`: the share would fit, the memory does not (the request is refused with 409, not 503). */
  | { ok: false; deviceId: string; reason: string; memory: boolean };

export interface FitRequest {
  kind: AllocationKind;
  shareMilli: number;
  memoryMiB: number;
}

/**
 * Online: capped by its partition; may revoke borrowed batch shares to fit.
 * Batch: its own partition, plus (if allowed) the online partition's idle share, flagged `borrowed`.
 * Everyone: active + revoking + pending never exceed the device (share and memory).
 */
export function fitOnDevice(dev: LedgerDevice, u: DeviceUsage, req: FitRequest): Fit {
  const s = req.shareMilli;
  const m = req.memoryMiB;
  const no = (reason: string, memory = false): Fit => ({ ok: false, deviceId: dev.id, reason, memory });
  if (m > dev.memoryMiB) return no(`needs ${m} MiB, device has ${dev.memoryMiB} MiB in all`, true);
  const onlineUsed = u.onlineActive + u.onlinePending;
  const total = onlineUsed + u.batch;
  const mem = u.memActive + u.memPending;
  if (req.kind === 'online') {
    if (onlineUsed + s > dev.onlineMilli) return no(`online partition ${dev.onlineMilli / MILLI} has ${(dev.onlineMilli - onlineUsed) / MILLI} free`);
    // Shares already being revoked will be freed; count them as gone for admission.
    let deficitS = total - u.revoking + s - MILLI;
    let deficitM = mem - u.memRevoking + m - dev.memoryMiB;
    const revoke: LedgerAllocation[] = [];
    for (const a of u.revocable) {
      if (deficitS <= 0 && deficitM <= 0) break;
      revoke.push(a);
      deficitS -= a.shareMilli;
      deficitM -= a.memoryMiB;
    }
    if (deficitS > 0) return no('device full (not enough borrowed batch share to revoke)');
    if (deficitM > 0) return no(`needs ${m} MiB, ${dev.memoryMiB - (mem - u.memRevoking)} MiB free even after revoking borrowed batch memory`, true);
    const wait = revoke.length > 0 || total + s > MILLI || mem + m > dev.memoryMiB;
    return { ok: true, deviceId: dev.id, borrowed: false, revoke, wait, freeAfter: MILLI - (total - u.revoking + s) };
  }
  if (total + s > MILLI) return no(`device has ${(MILLI - total) / MILLI} free`);
  const owned = u.batch - u.batchBorrowed;
  const idleOnline = dev.batchMayBorrow ? Math.max(0, dev.onlineMilli - onlineUsed) : 0;
  const borrowed = owned + s > dev.batchMilli;
  if (borrowed && u.batch + s > dev.batchMilli + idleOnline) {
    return no(dev.batchMayBorrow ? 'batch partition and idle online share exhausted' : 'batch partition exhausted (borrowing disabled)');
  }
  // Borrowed or owned, batch memory is held memory: it counts against the device like any other.
  if (mem + m > dev.memoryMiB) return no(`needs ${m} MiB, ${dev.memoryMiB - mem} MiB free`, true);
  return { ok: true, deviceId: dev.id, borrowed, revoke: [], wait: false, freeAfter: MILLI - total - s };
}

/**
 * Picks `count` devices: those that fit without revoking anything first (preempting is the last
 * resort), then pack (least free share left, to keep whole devices free) or spread (most free).
 */
export function choose(fits: readonly Fit[], count: number, placement: 'pack' | 'spread'): Extract<Fit, { ok: true }>[] | null {
  const ok = fits.filter((f): f is Extract<Fit, { ok: true }> => f.ok);
  if (ok.length < count) return null;
  ok.sort((a, b) => {
    const ra = a.revoke.length > 0 ? 1 : 0;
    const rb = b.revoke.length > 0 ? 1 : 0;
    if (ra !== rb) return ra - rb;
    const byFree = placement === 'pack' ? a.freeAfter - b.freeAfter : b.freeAfter - a.freeAfter;
    return byFree !== 0 ? byFree : a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0;
  });
  return ok.slice(0, count);
}

/** The invariant the ledger guarantees: what is held (active + revoking) fits the device. */
export function overCapacity(dev: LedgerDevice, allocs: readonly LedgerAllocation[]): string | null {
  let share = 0;
  let mem = 0;
  for (const a of allocs) {
    if (a.deviceId !== dev.id || a.state === 'pending') continue;
    share += a.shareMilli;
    mem += a.memoryMiB;
  }
  if (share > MILLI) return `${dev.id}: share ${share / MILLI} > 1`;
  if (mem > dev.memoryMiB) return `${dev.id}: memory ${mem} > ${dev.memoryMiB} MiB`;
  return null;
}
