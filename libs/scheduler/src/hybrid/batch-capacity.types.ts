import type { DevicePlacement } from '@tandem/inference';
import type { Lease } from '../lease/lease';

/** A unit handed to one inference run; give it back with `release` when the run ends. */
export interface UnitSlot {
  /** Stable small index of the unit the run holds now (-1 while suspended). */
  readonly unit: number;
  /** The unit's identity for its lifetime (its allocation; indices are reused): see BatchCapacity.onUnitGone. */
  readonly unitId: string;
  readonly placement: DevicePlacement;
  readonly borrowed: boolean;
}

/**
 * Device time a batch's runs held units, split by share (cost attribution). BatchCapacity adds a
 * run's seat time when it leaves its unit (release, or suspension on a revoked unit), so time a
 * suspended run waits is not counted.
 */
export class UnitUsage {
  ownedMs = 0;
  borrowedMs = 0;
  add(borrowed: boolean, ms: number): void {
    if (borrowed) this.borrowedMs += ms;
    else this.ownedMs += ms;
  }
  get totalMs(): number {
    return this.ownedMs + this.borrowedMs;
  }
}

/** What a run asks of BatchCapacity.acquire. */
export interface AcquireRequest {
  mayBorrow: boolean;
  /** Higher first (0..100 from the API; an urgent run is raised above that). */
  priority: number;
  signal?: AbortSignal;
  preempt?: Preemptible;
  /** Epoch ms of the batch's deadline: within a priority, earlier deadlines are served first (EDF). */
  deadline?: number;
  /** Take an owned unit when one is free, a borrowed one only otherwise (a batch near its deadline). */
  preferOwned?: boolean;
  /** Where the run's seat time is added. */
  usage?: UnitUsage;
  /** GPU: device memory the run's model needs, MiB (its `device.memory_mib`); default `gpuMemoryMiB`. */
  memoryMiB?: number;
}

/**
 * A run that can be taken off its CPU share at once (its process stopped) and continued later.
 * When its unit is revoked, BatchCapacity calls `suspend`, gives the share back right away and
 * queues the run ahead of new work; `resume` is called when it holds a unit again.
 */
export interface Preemptible {
  suspend(): void;
  resume(): void;
  /** The CPU unit slot the run holds now, or null when it holds none (for the revocation fast path). */
  seated?(slot: number | null): void;
}

/** A run's hold on capacity: the unit it runs on now, or its place in the queue while suspended. */
export class Ticket implements UnitSlot {
  unit = -1;
  unitId = '';
  placement: DevicePlacement = { kind: 'cpu', intraOpThreads: 1 };
  borrowed = false;
  /** The waiter that puts a suspended run back on a unit; null while it runs. */
  requeued: Waiter | null = null;
  /** performance.now() when it took its current unit. */
  seatedAt = 0;
  constructor(
    readonly mayBorrow: boolean,
    readonly priority: number,
    readonly preempt: Preemptible | undefined,
    readonly order: WaitOrder = {},
  ) {}
}

export interface BatchCapacityOptions {
  /** `ledger`: units are batch allocations (CPU cores or GPUs of this node); `fixed`: no ledger. */
  mode: 'ledger' | 'fixed';
  deviceKind: 'cpu' | 'gpu';
  /** Most units held at once (CPU: cores; GPU: devices). */
  maxUnits: number;
  /** After a revocation, no borrowing for this long: online load that just rose tends to stay. */
  borrowHoldDownMs: number;
  /** How often to look for more capacity while work waits and fewer than maxUnits are held. */
  retryMs: number;
  /** Units are given back after this long without work. */
  idleReleaseMs: number;
  /** Device memory asked per GPU unit when the run names none (AcquireRequest.memoryMiB). */
  gpuMemoryMiB: number;
}

export interface Unit {
  index: number;
  /** The allocation id (ledger), or `fixed-<n>`. */
  id: string;
  lease: Lease | null;
  placement: DevicePlacement;
  borrowed: boolean;
  busy: boolean;
  holder: Ticket | null;
  revokedAt: number | null;
  /** The ledger's instant of the revocation (epoch ms), when the notice carried it. */
  revokedAtMs?: number;
  /** Its cores are free since the revocation: the run suspended, ended, or there was none. */
  freed?: boolean;
  /** The revocation fast path stopped its process: when the thread got the notice (or the online-demand hint) and when kill() returned (epoch ms). */
  fastStop?: { receivedAtMs: number; stoppedAtMs: number; hint?: boolean };
  /** Stopped on an online-demand hint: continued when no revocation follows in time. */
  holdTimer?: NodeJS.Timeout;
}

/** A unit fits a run if it holds at least the memory the run's model needs (a CPU unit always). */
export function unitFits(u: Unit, memoryMiB: number): boolean {
  return u.placement.kind !== 'cuda' || u.placement.memoryMiB >= memoryMiB;
}

/** EDF and placement preferences a run keeps through suspension. */
export interface WaitOrder {
  deadline?: number;
  preferOwned?: boolean;
  usage?: UnitUsage;
  /** GPU memory the run needs (resolved against the default when it was queued). */
  memoryMiB?: number;
}

export interface Waiter extends WaitOrder {
  mayBorrow: boolean;
  priority: number;
  /** A suspended run waiting to continue: served before new runs of its priority. */
  resumes: boolean;
  resolve: (u: Unit) => void;
  reject: (e: unknown) => void;
}

/** What the admin API and metrics show of one worker. */
export interface BatchCapacitySnapshot {
  mode: 'ledger' | 'fixed';
  owned: number;
  borrowed: number;
  busy: number;
  revoking: number;
  waiting: number;
  /** Runs stopped on a revoked unit, waiting for a unit to continue on. */
  suspended: number;
  borrowHeldDownUntil: string | null;
  revocations: number;
}
