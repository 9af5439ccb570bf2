import { randomUUID } from 'node:crypto';
import { DomainException, ErrorCode } from '@tandem/shared';
import type { RevocationListener } from './events/revocation.listener';
import type { InventoryRepository } from './ledger/inventory.repository';
import type { LedgerRepository } from './ledger/ledger.repository';
import type { CandidateDevice, NewAllocation, RevokedRow } from './ledger/rows';
import { choose, emptyUsage, fitOnDevice, summarize } from './ledger/placement';
import { Lease } from './lease/lease';
import type { LeaseKeeper } from './lease/lease-keeper';
import type { SchedulerLogger } from './scheduler.logger';
import type { SchedulerMetrics } from './scheduler.metrics';
import type { SchedulerOptions } from './scheduler.options';
import { MILLI, type AllocationGrant, type AllocationRequest, type GrantedDevice } from './scheduler.types';

interface Normalized {
  shareMilli: number;
  count: number;
  memoryMiB: number;
}

const MAX_LIST = 64;

/** Validates a request's shape; the device count check needs the ledger and comes later. */
export function normalizeRequest(req: AllocationRequest): Normalized {
  if (req.kind !== 'online' && req.kind !== 'batch') throw DomainException.invalid('kind must be "online" or "batch"');
  const s = req.share;
  if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) throw DomainException.invalid('share must be a number > 0');
  if (s > 1 && !Number.isInteger(s)) throw DomainException.invalid('a share above 1 must be a whole number of devices');
  const mem = req.memoryMiB ?? 0;
  if (!Number.isInteger(mem) || mem < 0) throw DomainException.invalid('memoryMiB must be an integer ≥ 0');
  for (const [k, v] of [
    ['nodes', req.nodes],
    ['devices', req.devices],
  ] as const) {
    if (v !== undefined && (!Array.isArray(v) || v.length === 0 || v.length > MAX_LIST)) {
      throw DomainException.invalid(`${k} must be a non-empty list of at most ${MAX_LIST}`);
    }
  }
  // An empty `gpus` list is meaningful (a process that sees no GPU: nothing qualifies).
  if (req.gpus !== undefined && (!Array.isArray(req.gpus) || req.gpus.length > MAX_LIST || req.gpus.some((g) => typeof g !== 'string'))) {
    throw DomainException.invalid(`gpus must be a list of at most ${MAX_LIST} GPU indices or UUIDs`);
  }
  if (req.mig !== undefined && req.mig !== 'exclude' && req.mig !== 'only' && req.mig !== 'allow')
    throw DomainException.invalid('mig must be "exclude", "only" or "allow"');
  if (s <= 1) {
    const milli = Math.round(s * MILLI);
    if (milli < 1) throw DomainException.invalid(`share must be at least ${1 / MILLI}`);
    return { shareMilli: milli, count: 1, memoryMiB: mem };
  }
  return { shareMilli: MILLI, count: s, memoryMiB: mem };
}

/**
 * Takes and gives back device shares. Each placement is one transaction holding row locks on
 * the candidate devices, so concurrent allocators (any number of processes) serialize per device
 * and the sum of shares and memory on a device never exceeds it.
 */
export class AllocationService {
  constructor(
    private readonly ledger: LedgerRepository,
    private readonly inventory: InventoryRepository,
    private readonly keeper: LeaseKeeper,
    private readonly listener: RevocationListener,
    private readonly metrics: SchedulerMetrics,
    private readonly opts: SchedulerOptions,
    private readonly logger: SchedulerLogger,
  ) {}

  /** The default lease holder for this process. */
  get defaultHolder(): string {
    return `${this.opts.nodeName}#${process.pid}`;
  }

  /** Borrowed allocations revoked for online work since this process started (the preemptions counter). */
  async preemptions(): Promise<number> {
    return (await this.metrics.preemptions.get()).values.reduce((n, v) => n + v.value, 0);
  }

  async allocate(req: AllocationRequest): Promise<Lease> {
    const n = normalizeRequest(req);
    if (n.count > 1) await this.checkConstraints(req, n);
    const holder = req.holder ?? this.defaultHolder;
    const groupId = randomUUID();
    // Fast path: lock only the best-looking free device(s) no one else is placing on; if the fresh
    // read says no, look again waiting for every candidate (a fresh transaction, locks in id order).
    // One named device has no alternative to skip to: straight to the full view (an online claim
    // that revokes borrowed batch units saves a transaction on its way to the NOTIFY).
    const oneDevice = n.count === 1 && req.devices?.length === 1;
    let out = oneDevice ? null : await this.place(req, n, holder, groupId, true);
    if (!out?.ok) out = await this.place(req, n, holder, groupId, false);
    if (!out.ok) {
      // Unknown devices/nodes are the caller's error (4xx), not a capacity shortage.
      await this.checkConstraints(req, n);
      this.metrics.allocations.inc({ kind: req.kind, outcome: out.memory ? 'memory' : 'unavailable' });
      // Memory is a hard limit, not a queue to wait in: the share would fit but the memory does not.
      if (out.memory)
        throw new DomainException(ErrorCode.Conflict, `memory over-commit refused for ${req.kind} share ${req.share} with ${n.memoryMiB} MiB: ${out.why}`);
      throw DomainException.unavailable(`no capacity for ${req.kind} share ${req.share}: ${out.why}`);
    }
    const lease = new Lease(this.grant(groupId, req.kind, holder, out.rows, out.devices, out.revoked.length), (l) => this.releaseLease(l));
    this.keeper.track(lease);
    if (out.revoked.length > 0) this.metrics.preemptions.inc(out.revoked.length);
    if (out.wait) await this.awaitActivation(lease, out.revoked);
    this.metrics.allocations.inc({ kind: req.kind, outcome: out.revoked.length > 0 ? 'preempted' : 'granted' });
    return lease;
  }

  private place(req: AllocationRequest, n: Normalized, holder: string, groupId: string, skipLocked: boolean) {
    const placement = req.placement ?? this.opts.placement;
    return this.ledger.placement(async (tx) => {
      const { devices, allocations } = await tx.lockAndRead(
        { deviceKind: req.deviceKind, nodes: req.nodes, devices: req.devices, mig: req.mig, gpus: req.gpus },
        skipLocked ? { shareMilli: n.shareMilli, memoryMiB: n.memoryMiB, count: n.count, placement } : null,
      );
      const usage = summarize(allocations);
      const fits = devices.map((d) => fitOnDevice(d, usage.get(d.id) ?? emptyUsage(), { kind: req.kind, ...n }));
      const chosen = choose(fits, n.count, placement);
      if (!chosen) {
        const why = fits
          .map((f) => (f.ok ? `${f.deviceId}: fits` : `${f.deviceId}: ${f.reason}`))
          .slice(0, 8)
          .join('; ');
        // Refused for memory when enough devices would take the share if they had the memory.
        const memory = devices.length >= n.count && fits.filter((f) => f.ok || f.memory).length >= n.count;
        return { ok: false as const, memory, why: devices.length < n.count ? `only ${devices.length} device(s) available` : why };
      }
      const wait = chosen.some((f) => f.wait);
      // Preempting is decided with the full view only (a locked device may fit without it).
      if (skipLocked && wait) return { ok: false as const, memory: false, why: 'needs preemption' };
      const rows: NewAllocation[] = chosen.map((f) => ({
        id: randomUUID(),
        groupId,
        deviceId: f.deviceId,
        kind: req.kind,
        state: wait ? 'pending' : 'active',
        shareMilli: n.shareMilli,
        memoryMiB: n.memoryMiB,
        borrowed: f.borrowed,
      }));
      const revokeIds = chosen.flatMap((f) => f.revoke.map((a) => a.id));
      const revoked = await tx.commit(rows, holder, this.opts.nodeName, this.opts.leaseTtlMs, revokeIds, this.opts.preemptGraceMs);
      const byId = new Map(devices.map((d) => [d.id, d]));
      return { ok: true as const, rows, wait, revoked, devices: rows.map((r) => byId.get(r.deviceId)!) };
    });
  }

  /** Rejects constraints naming devices or nodes that do not exist, and shares above the device count. */
  private async checkConstraints(req: AllocationRequest, n: Normalized): Promise<void> {
    if (req.devices) {
      const known = await this.inventory.existingDeviceIds(req.devices);
      const unknown = req.devices.filter((d) => !known.has(d));
      if (unknown.length > 0) throw DomainException.notFound(`unknown device(s): ${unknown.join(', ')}`);
    }
    if (req.nodes) {
      const known = await this.inventory.existingNodes(req.nodes);
      const unknown = req.nodes.filter((x) => !known.has(x));
      if (unknown.length > 0) throw DomainException.notFound(`unknown node(s): ${unknown.join(', ')}`);
    }
    if (n.count > 1) {
      const total = await this.inventory.countMatching({ deviceKind: req.deviceKind, nodes: req.nodes, devices: req.devices, mig: req.mig, gpus: req.gpus });
      if (n.count > total) throw DomainException.invalid(`share ${req.share} exceeds the ${total} device(s) matching the request`);
    }
  }

  /**
   * An online request that revoked borrowed batch shares waits for their holders to release
   * (woken by the release NOTIFY), but never past the preemption grace: then the revoked rows are
   * force-reclaimed inside the activation transaction.
   */
  private async awaitActivation(lease: Lease, revoked: RevokedRow[]): Promise<void> {
    const started = Date.now();
    const deadline = started + this.opts.preemptGraceMs + 50;
    const devices = new Set(lease.grant.devices.map((d) => d.deviceId));
    let wake: (() => void) | null = null;
    const off = this.listener.onRelease((e) => {
      if (devices.has(e.deviceId)) wake?.();
    });
    try {
      for (;;) {
        const r = await this.tryActivate(lease.id);
        if (r === 'active') break;
        if (r === 'gone') {
          this.keeper.untrack(lease);
          throw DomainException.unavailable('allocation was reclaimed while waiting for preempted shares');
        }
        const now = Date.now();
        if (now > deadline + 1_000) {
          await this.ledger.release(lease.allocationIds, 'gave-up');
          this.keeper.untrack(lease);
          throw DomainException.unavailable('revoked shares were not freed in time');
        }
        // Woken by a release on one of our devices; the timer is a fallback (missed NOTIFY, grace end).
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(5, Math.min(100, deadline - now)));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = null;
      }
    } finally {
      off();
    }
    this.metrics.preemptWait.observe((Date.now() - started) / 1000);
    if (revoked.length > 0) this.logger.info({ group: lease.id, revoked: revoked.map((r) => r.id), waitedMs: Date.now() - started }, 'preemption completed');
  }

  private tryActivate(groupId: string): Promise<'active' | 'waiting' | 'gone'> {
    return this.ledger.transaction(async (tx) => {
      const mine = await tx.groupRows(groupId);
      if (mine.length === 0) return 'gone';
      if (mine.every((a) => a.state !== 'pending')) return 'active';
      const devices = await tx.lockDevices(mine.map((a) => a.deviceId));
      const ids = devices.map((d) => d.id);
      const forced = await tx.forceReclaim(ids);
      if (forced.length > 0) this.metrics.forcedReclaims.inc(forced.length);
      const all = await tx.allocationsOn(ids);
      for (const d of devices) {
        let share = 0;
        let mem = 0;
        for (const a of all) {
          if (a.deviceId !== d.id) continue;
          if (a.state !== 'pending' || mine.some((m) => m.id === a.id)) {
            share += a.shareMilli;
            mem += a.memoryMiB;
          }
        }
        if (share > MILLI || mem > d.memoryMiB) return 'waiting';
      }
      await tx.activate(groupId, this.opts.leaseTtlMs);
      return 'active';
    });
  }

  private grant(
    groupId: string,
    kind: AllocationRequest['kind'],
    holder: string,
    rows: NewAllocation[],
    devices: CandidateDevice[],
    preempted: number,
  ): AllocationGrant {
    const granted: GrantedDevice[] = rows.map((r, i) => {
      const d = devices[i]!;
      return {
        allocationId: r.id,
        deviceId: d.id,
        node: d.nodeName,
        kind: d.kind,
        source: d.source,
        share: r.shareMilli / MILLI,
        memoryMiB: r.memoryMiB,
        threads: d.kind === 'cpu' ? Math.max(1, Math.floor(((d.cores ?? 1) * r.shareMilli) / MILLI)) : null,
        gpuIndex: d.gpuIndex,
        gpuUuid: d.gpuUuid,
      };
    });
    const gpus = granted.filter((g) => g.kind === 'gpu');
    return {
      groupId,
      kind,
      holder,
      borrowed: rows.some((r) => r.borrowed),
      devices: granted,
      // UUIDs survive re-enumeration (and name MIG instances); the index is the fallback.
      cudaVisibleDevices: gpus.map((g) => g.gpuUuid ?? String(g.gpuIndex ?? '')).join(','),
      threads: granted.reduce((s, g) => s + (g.threads ?? 0), 0),
      preempted,
    };
  }

  private async releaseLease(lease: Lease): Promise<void> {
    this.keeper.untrack(lease);
    await this.ledger.release(lease.allocationIds);
    lease.markReleased();
  }

  /** Releases an allocation group by id (admin, or a holder that lost its handle). */
  async releaseGroup(groupOrAllocationId: string): Promise<number> {
    const held = this.keeper.held.find((l) => l.id === groupOrAllocationId || l.allocationIds.includes(groupOrAllocationId));
    if (held) {
      const n = held.allocationIds.length;
      await held.release();
      return n;
    }
    return (await this.ledger.releaseGroup(groupOrAllocationId)).length;
  }

  /** Releases everything this process holds (shutdown). */
  async releaseAll(): Promise<void> {
    await Promise.all(this.keeper.held.map((l) => l.release().catch(() => undefined)));
  }
}
