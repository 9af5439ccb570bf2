import { DomainException } from '@tandem/shared';
import type { FastHold, FastStop, RevocationFastPath, UnitPidSlots } from '../events/revocation-fast-path';
import type { Lease } from '../lease/lease';
import type { NodeLedger } from '../node-ledger';
import type { SchedulerLogger } from '../scheduler.logger';
import { cudaPlacement, type DevicePlacement } from '@tandem/inference';
import type { DeviceView } from '../scheduler.types';
import type { HybridMetrics } from './hybrid.metrics';
import {
  Ticket,
  unitFits,
  type AcquireRequest,
  type BatchCapacityOptions,
  type BatchCapacitySnapshot,
  type Preemptible,
  type Unit,
  type UnitSlot,
  type Waiter,
} from './batch-capacity.types';

export type { AcquireRequest, BatchCapacityOptions, BatchCapacitySnapshot, Preemptible, UnitSlot } from './batch-capacity.types';
export { UnitUsage } from './batch-capacity.types';

const now = (): number => performance.now();
/**
 * A borrowed unit stopped on an online-demand hint is continued if no revocation reaches it
 * within this long (the claim was refused, or did not need it). Claims revoke 10-100 ms after the
 * hint here; a wrong hold costs the batch this much once.
 */
const HINT_HOLD_MS = 500;
/** whenRunnable: how often a waiting chunk looks again. */
const RUNNABLE_POLL_MS = 25;

/**
 * A batch worker's device capacity, in units it can run inference on. In `ledger` mode every
 * unit is its own batch allocation (one core's share of the node's CPU, or one GPU), so online
 * work can revoke borrowed units one at a time. A GPU unit holds the device memory of the run it
 * was taken for (the model's `device.memory_mib`, AcquireRequest.memoryMiB) and later serves only
 * runs that fit in it. A revoked unit is not used for any new run. A
 * preemptible run on a CPU unit is suspended on the spot and the share released at once; any
 * other run (GPU, or a caller without `preempt`) finishes first (the safe point is between
 * inference batches), then the unit's lease is released.
 */
export class BatchCapacity {
  private readonly units = new Map<number, Unit>();
  private readonly waiters: Waiter[] = [];
  private filling = false;
  private fillTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private holdDownUntil = 0;
  private stopped = false;
  private revocations = 0;
  private readonly revokeMs: number[] = [];
  private warnedNoDevice = false;
  private fixedSeq = 0;
  private readonly goneListeners: ((unitId: string) => Promise<void> | void)[] = [];
  private fastPath: RevocationFastPath | null = null;
  /** performance.now() until which no run is seated on a borrowed unit (an online-demand hint). */
  private hintUntil = 0;
  /** Units this worker may own on its node's devices (the partition's batch share), as last read; null before. */
  private ownedCap: number | null = null;
  private readonly fastStopListeners: ((pid: number) => void)[] = [];

  constructor(
    private readonly opts: BatchCapacityOptions,
    private readonly logger: SchedulerLogger,
    private readonly deps: NodeLedger | null,
    private readonly metrics?: HybridMetrics,
  ) {
    if (opts.mode === 'ledger' && !deps) throw new Error('BatchCapacity: ledger mode needs the scheduler');
  }

  /**
   * Called when a unit goes (revoked, idle, stopping), before its share and memory go back to the
   * ledger: whatever runs on the unit's device for it (a GPU unit's process) must end first.
   */
  onUnitGone(fn: (unitId: string) => Promise<void> | void): void {
    this.goneListeners.push(fn);
  }

  /**
   * Revoked CPU units' processes are stopped by `fp`'s thread, not when this thread gets to the
   * notice; the stop then counts as the revocation here. Units taken before this call are not watched.
   */
  useFastPath(fp: RevocationFastPath): void {
    this.fastPath = fp;
    fp.onStopped((s) => this.fastStopped(s));
    fp.onHeld((h) => this.fastHeld(h));
    fp.onHint(() => this.hinted());
  }

  /**
   * Online demand was announced for this node: no run is seated on a borrowed unit for a while,
   * and the runs on borrowed units are suspended here too (the thread stopped only processes it
   * knew: a run still taking its process escaped it). A run no revocation reaches in time goes on.
   */
  private hinted(): void {
    this.hintUntil = now() + HINT_HOLD_MS;
    setTimeout(() => this.dispatch(), HINT_HOLD_MS + 1).unref();
    for (const u of this.units.values()) {
      const preempt = u.holder?.preempt;
      if (!u.borrowed || u.revokedAt !== null || u.placement.kind !== 'cpu' || !preempt) continue;
      preempt.suspend();
      const wall = performance.timeOrigin + now();
      u.fastStop ??= { receivedAtMs: wall, stoppedAtMs: wall, hint: true }; // the thread had no process registered for it
      clearTimeout(u.holdTimer);
      u.holdTimer = setTimeout(() => {
        u.holdTimer = undefined;
        if (u.revokedAt !== null) return;
        u.fastStop = undefined; // not this unit's stop time for a later revocation
        if (u.holder?.preempt !== preempt) return; // that run ended meanwhile (its process was continued with it)
        preempt.resume();
        this.logger.info({ unit: u.index }, 'batch unit continued: no revocation followed the online-demand hint');
      }, HINT_HOLD_MS);
    }
  }

  /**
   * Resolves at once unless nothing this worker could take would run a chunk now: an
   * online-demand hint holds its borrowed units (HINT_HOLD_MS), or online revoked them and
   * borrowing is held down, with no unit left and no owned share to take. Chunks wait here
   * before they read their payload, and between the pieces of a read in flight: a chunk started
   * in that window would only keep Postgres and this thread busy beside online's first requests
   * (the trace: 7–69 ms of Postgres for the worker in the first 100 ms; 20–40 ms of both when
   * the hint's hold ended at +500 ms with every unit revoked) and then wait for a unit.
   */
  async whenRunnable(signal?: AbortSignal): Promise<void> {
    while (!this.stopped && !signal?.aborted && !this.runnable()) await new Promise((r) => setTimeout(r, RUNNABLE_POLL_MS));
  }

  private runnable(): boolean {
    let held = false;
    for (const u of this.units.values()) {
      if (u.revokedAt !== null) continue;
      if (!u.borrowed) return true;
      held = true;
    }
    const t = now();
    if (t < this.hintUntil) return false;
    // Unknown owned share (no allocation tried yet) or some: a chunk may run, as before.
    return held || t >= this.holdDownUntil || this.ownedCap !== 0;
  }

  /** Where preemptible runs register their process against their unit slot; null without a fast path. */
  pidSlots(): UnitPidSlots | null {
    return this.fastPath;
  }

  /** A process the fast path stopped, after this side handled it: its owner re-signals the state it holds (run or stopped). */
  onFastStop(fn: (pid: number) => void): void {
    this.fastStopListeners.push(fn);
  }

  private recheck(pid: number): void {
    for (const fn of this.fastStopListeners) fn(pid);
  }

  private fastHeld(h: FastHold): void {
    const u = this.units.get(h.slot);
    // No run of ours there (a registration gone stale): its owner continues it now.
    if (!u || u.id !== h.groupId || u.revokedAt !== null || !u.busy) return this.recheck(h.pid);
    // Its times; the 'hint' message that follows suspends the run here and times the hold.
    u.fastStop = { receivedAtMs: h.receivedAtMs, stoppedAtMs: h.stoppedAtMs, hint: true };
  }

  private fastStopped(s: FastStop): void {
    const u = this.units.get(s.slot);
    if (u && u.id === s.notice.groupId && u.lease && u.revokedAt === null) {
      u.fastStop ??= { receivedAtMs: s.receivedAtMs, stoppedAtMs: s.stoppedAtMs }; // a hint may have stopped it earlier
      u.lease.revoked(s.notice); // this unit's onRevoke below, as for a NOTIFY on this thread
    }
    this.recheck(s.pid);
  }

  /** Waits for a free unit this run may use (higher priority first, then earlier deadline). */
  acquire(req: AcquireRequest): Promise<UnitSlot> {
    if (this.stopped) return Promise.reject(new Error('batch capacity is stopped'));
    this.clearIdle();
    return new Promise<UnitSlot>((resolve, reject) => {
      const memoryMiB = this.opts.deviceKind === 'gpu' ? (req.memoryMiB ?? this.opts.gpuMemoryMiB) : 0;
      const order = { deadline: req.deadline, preferOwned: req.preferOwned, usage: req.usage, memoryMiB };
      const w: Waiter = { mayBorrow: req.mayBorrow, priority: req.priority, ...order, resumes: false, resolve: () => undefined, reject };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(req.signal?.reason ?? new Error('aborted'));
      };
      if (req.signal?.aborted) return onAbort();
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const ticket = new Ticket(req.mayBorrow, req.priority, req.preempt, order);
      w.resolve = (u) => {
        req.signal?.removeEventListener('abort', onAbort);
        this.seat(ticket, u);
        resolve(ticket);
      };
      this.enqueue(w);
    });
  }

  /** The run holding this slot ended: a revoked unit's share goes back now. */
  release(slot: UnitSlot): void {
    const t = slot as Ticket;
    if (t.requeued) {
      // Ended while suspended (aborted): it holds no unit, only its place in the queue.
      const i = this.waiters.indexOf(t.requeued);
      if (i >= 0) this.waiters.splice(i, 1);
      t.requeued = null;
      return;
    }
    const u = this.units.get(t.unit);
    if (!u || u.holder !== t) return;
    this.unseat(t, u);
    u.busy = false;
    u.holder = null;
    t.unit = -1;
    if (u.revokedAt !== null) void this.giveBack(u);
    this.dispatch();
    this.scheduleIdle();
  }

  private enqueue(w: Waiter): void {
    // Priority first; within it suspended runs go ahead of new ones, then earlier deadlines
    // (EDF; none = last); stable by arrival otherwise.
    const dl = (x: Waiter): number => x.deadline ?? Number.POSITIVE_INFINITY;
    const ahead = (x: Waiter): boolean =>
      x.priority < w.priority || (x.priority === w.priority && ((w.resumes && !x.resumes) || (w.resumes === x.resumes && dl(w) < dl(x))));
    let at = this.waiters.findIndex(ahead);
    if (at < 0) at = this.waiters.length;
    this.waiters.splice(at, 0, w);
    this.dispatch();
    if (this.waiters.includes(w)) this.fill();
  }

  private seat(t: Ticket, u: Unit): void {
    u.busy = true;
    u.holder = t;
    t.unit = u.index;
    t.unitId = u.id;
    t.placement = u.placement;
    t.borrowed = u.borrowed;
    t.seatedAt = now();
    t.preempt?.seated?.(u.placement.kind === 'cpu' ? u.index : null);
  }

  /** The run leaves its unit: its seat time is charged to the share the unit came from. */
  private unseat(t: Ticket, u: Unit): void {
    t.preempt?.seated?.(null);
    t.order.usage?.add(u.borrowed, now() - t.seatedAt);
  }

  /** Takes a revoked unit's run off the cores now (its process stops) and frees the share. */
  private suspendRun(u: Unit, t: Ticket, preempt: Preemptible): void {
    preempt.suspend();
    this.unseat(t, u);
    u.busy = false;
    u.holder = null;
    t.unit = -1;
    void this.giveBack(u);
    const w: Waiter = {
      mayBorrow: t.mayBorrow,
      priority: t.priority,
      ...t.order,
      resumes: true,
      resolve: (next) => {
        t.requeued = null;
        this.seat(t, next);
        preempt.resume();
      },
      // Capacity stopping: let the process run to its end rather than leave it stopped.
      reject: () => {
        t.requeued = null;
        preempt.resume();
      },
    };
    t.requeued = w;
    this.enqueue(w);
  }

  snapshot(): BatchCapacitySnapshot {
    const all = [...this.units.values()];
    return {
      mode: this.opts.mode,
      owned: all.filter((u) => !u.borrowed).length,
      borrowed: all.filter((u) => u.borrowed).length,
      busy: all.filter((u) => u.busy).length,
      revoking: all.filter((u) => u.revokedAt !== null).length,
      waiting: this.waiters.filter((w) => !w.resumes).length,
      suspended: this.waiters.filter((w) => w.resumes).length,
      borrowHeldDownUntil: this.holdDownUntil > now() ? new Date(Date.now() + (this.holdDownUntil - now())).toISOString() : null,
      revocations: this.revocations,
    };
  }

  /** Revocation-to-cores-free times (ms, from the notice reaching this worker) seen so far, oldest first (bench and tests). */
  revokeReleaseMs(): readonly number[] {
    return this.revokeMs;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearIdle();
    if (this.fillTimer) clearTimeout(this.fillTimer);
    for (const w of this.waiters.splice(0)) w.reject(new Error('batch capacity is stopping'));
    await Promise.all([...this.units.values()].map((u) => this.giveBack(u)));
  }

  private dispatch(): void {
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i]!;
      const borrow = w.mayBorrow && now() >= this.hintUntil;
      const free = [...this.units.values()].filter((x) => !x.busy && x.revokedAt === null && (borrow || !x.borrowed) && unitFits(x, w.memoryMiB ?? 0));
      // A run near its deadline takes owned share first: borrowed share can be revoked under it.
      const u = (w.preferOwned ? free.find((x) => !x.borrowed) : undefined) ?? free[0];
      if (!u) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      w.resolve(u);
    }
    this.publish();
  }

  /** Takes more units while work waits, one allocation per unit. */
  private fill(): void {
    if (this.filling || this.stopped || this.fillTimer) return;
    this.filling = true;
    void this.fillOnce()
      .catch((err: unknown) => this.logger.warn({ err }, 'batch capacity: allocation failed'))
      .finally(() => {
        this.filling = false;
        this.dispatch();
        if (this.waiters.length > 0 && !this.stopped && !this.fillTimer) {
          this.fillTimer = setTimeout(() => {
            this.fillTimer = null;
            this.fill();
          }, this.opts.retryMs);
          this.fillTimer.unref();
        }
      });
  }

  private async fillOnce(): Promise<void> {
    if (this.opts.mode === 'fixed') {
      while (this.units.size < this.opts.maxUnits) this.addUnit(`fixed-${++this.fixedSeq}`, null, { kind: 'cpu', intraOpThreads: 1 }, false);
      return;
    }
    const d = this.deps!;
    const usable = await d.ledger.usableDevices(d.nodeName, this.opts.deviceKind);
    if (usable.length === 0) {
      if (!this.warnedNoDevice)
        this.logger.warn({ node: d.nodeName, kind: this.opts.deviceKind }, 'batch capacity: no device of this kind registered on this node; waiting');
      this.warnedNoDevice = true;
      return;
    }
    this.ownedCap = this.ownedCapOf(usable);
    if (this.opts.deviceKind === 'gpu') this.refuseTooBig(usable);
    this.evictTooSmall();
    while (this.waiters.length > 0 && this.units.size < this.opts.maxUnits && !this.stopped) {
      const cpu = this.opts.deviceKind === 'cpu' ? usable[0]! : null;
      // A GPU unit is taken with the memory of the first run waiting (dispatch seated every run a free unit fits).
      const req = cpu
        ? { kind: 'batch' as const, share: 1 / Math.max(1, cpu.cores ?? 1), devices: [cpu.id] }
        : {
            kind: 'batch' as const,
            share: 1,
            memoryMiB: this.waiters[0]!.memoryMiB ?? this.opts.gpuMemoryMiB,
            deviceKind: 'gpu' as const,
            nodes: [d.nodeName],
          };
      if (this.holdDownUntil > now() && !this.ownedRoomLeft()) return;
      let lease: Lease;
      try {
        lease = await d.allocations.allocate({ ...req, holder: `${d.allocations.defaultHolder}/batch-unit` });
      } catch (e) {
        if (e instanceof DomainException) return; // full: try again later
        throw e;
      }
      if (lease.grant.borrowed && this.holdDownUntil > now()) {
        await lease.release();
        return;
      }
      const g = lease.grant.devices[0]!;
      const placement: DevicePlacement = g.kind === 'gpu' ? cudaPlacement(g) : { kind: 'cpu', intraOpThreads: g.threads ?? 1 };
      this.addUnit(lease.id, lease, placement, lease.grant.borrowed);
      this.dispatch();
    }
  }

  /** A run whose model needs more memory than any GPU device of this node has would wait forever: it fails instead. */
  private refuseTooBig(usable: DeviceView[]): void {
    const most = Math.max(...usable.map((x) => x.memoryMiB));
    for (const w of this.waiters.filter((x) => (x.memoryMiB ?? 0) > most && !x.resumes)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.reject(new Error(`the model needs ${w.memoryMiB} MiB of GPU memory; the largest GPU device of node ${this.deps!.nodeName} has ${most} MiB`));
    }
  }

  /**
   * All units held, none free that the first waiting run fits in (its model needs more memory
   * than they hold): give one free unit back, so a unit with that memory can be taken.
   */
  private evictTooSmall(): void {
    const need = this.waiters[0]?.memoryMiB ?? 0;
    if (need === 0 || this.units.size < this.opts.maxUnits) return;
    const free = [...this.units.values()].filter((u) => !u.busy && u.revokedAt === null);
    if (free.some((u) => unitFits(u, need))) return;
    const small = free.find((u) => !unitFits(u, need));
    if (small) void this.giveBack(small);
  }

  /** In hold-down only owned (unborrowed) units may be taken (up to ownedCap, read by this fill). */
  private ownedRoomLeft(): boolean {
    const owned = [...this.units.values()].filter((u) => !u.borrowed).length;
    return owned < (this.ownedCap ?? 0);
  }

  private ownedCapOf(devices: DeviceView[]): number {
    return devices.reduce(
      (s, x) => s + (this.opts.deviceKind === 'cpu' ? Math.floor(x.partition.batch * (x.cores ?? 1) + 1e-9) : Math.floor(x.partition.batch + 1e-9)),
      0,
    );
  }

  private addUnit(id: string, lease: Lease | null, placement: DevicePlacement, borrowed: boolean): void {
    let index = 0;
    while (this.units.has(index)) index++;
    const u: Unit = { index, id, lease, placement, borrowed, busy: false, holder: null, revokedAt: null };
    this.units.set(index, u);
    if (lease && placement.kind === 'cpu') this.fastPath?.watch(id, index, borrowed);
    lease?.onRevoke((n) => {
      if (this.units.get(index) !== u) return;
      u.revokedAt = now();
      u.revokedAtMs = n.revokedAtMs;
      clearTimeout(u.holdTimer);
      // The fast path's thread may have stopped it already (this thread got to its notice later).
      if (!u.fastStop && n.revokedAtMs !== undefined) u.fastStop = this.fastPath?.stoppedFor(index, n.revokedAtMs) ?? undefined;
      this.revocations++;
      this.metrics?.revocations.inc();
      this.holdDownUntil = now() + this.opts.borrowHoldDownMs;
      const t = u.holder;
      if (t?.preempt && u.placement.kind === 'cpu') {
        this.suspendRun(u, t, t.preempt);
        this.coresFree(u);
      } else if (!u.busy) {
        this.coresFree(u);
        void this.giveBack(u);
      }
      this.logger.info(
        { unit: index, reason: n.reason, busy: t !== null, suspended: t?.preempt !== undefined && u.placement.kind === 'cpu' },
        'batch unit revoked',
      );
      this.publish();
    });
  }

  private async giveBack(u: Unit): Promise<void> {
    if (this.units.get(u.index) !== u) return;
    this.units.delete(u.index);
    clearTimeout(u.holdTimer);
    if (u.lease && u.placement.kind === 'cpu') this.fastPath?.unwatch(u.id);
    this.publish();
    // Its process ends before the ledger gets the share and memory back (a session would still hold them).
    if (this.goneListeners.length > 0) await Promise.allSettled(this.goneListeners.map(async (fn) => fn(u.id)));
    this.coresFree(u); // a run that was not suspended ended (its safe point), or its process did
    await u.lease?.release().catch((err: unknown) => this.logger.warn({ err, unit: u.index }, 'batch unit release failed'));
    // Work still waiting: look for capacity again (owned units come back at once).
    if (this.waiters.length > 0) this.fill();
  }

  /**
   * A revoked unit's cores are free now (once per revocation): from the notice reaching this
   * worker, and from the ledger's revocation (NOTIFY delivery included) when the notice says when.
   */
  private coresFree(u: Unit): void {
    if (u.revokedAt === null || u.freed) return;
    u.freed = true;
    // Stopped by the fast path's thread: its own times (this thread got to the notice later).
    const wall = u.fastStop?.stoppedAtMs ?? performance.timeOrigin + now();
    const ms = u.fastStop ? u.fastStop.stoppedAtMs - u.fastStop.receivedAtMs : now() - u.revokedAt;
    this.revokeMs.push(ms);
    if (this.revokeMs.length > 10_000) this.revokeMs.shift();
    this.metrics?.revokeRelease.observe(ms / 1000);
    const fromLedger = u.revokedAtMs === undefined ? undefined : wall - u.revokedAtMs;
    if (fromLedger !== undefined) this.metrics?.revokeFromLedger.observe(Math.max(0, fromLedger) / 1000);
    const round = (x: number): number => Math.round(x * 100) / 100;
    this.logger.info(
      {
        unit: u.index,
        revokeToFreeMs: round(Math.max(0, ms)),
        fastPath: u.fastStop !== undefined,
        // With the hint, ledgerRevokeToFreeMs is negative: stopped before the ledger revoked it.
        hint: u.fastStop?.hint === true,
        stoppedAt: Math.round(wall), // epoch ms: when the process stopped
        ...(fromLedger !== undefined ? { ledgerRevokeToFreeMs: round(fromLedger) } : {}),
      },
      'revoked batch unit off the cores',
    );
  }

  private scheduleIdle(): void {
    if (this.idleTimer || this.waiters.length > 0 || [...this.units.values()].some((u) => u.busy)) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.waiters.length > 0 || [...this.units.values()].some((u) => u.busy)) return;
      for (const u of [...this.units.values()]) void this.giveBack(u);
    }, this.opts.idleReleaseMs);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private publish(): void {
    if (!this.metrics) return;
    const s = this.snapshot();
    this.metrics.batchUnits.set({ kind: 'owned' }, s.owned);
    this.metrics.batchUnits.set({ kind: 'borrowed' }, s.borrowed);
    this.metrics.batchUnits.set({ kind: 'busy' }, s.busy);
  }
}
