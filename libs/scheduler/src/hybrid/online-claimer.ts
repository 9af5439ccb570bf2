import { DomainException } from '@tandem/shared';
import type { Lease } from '../lease/lease';
import type { SchedulerLogger } from '../scheduler.logger';
import type { DeviceView } from '../scheduler.types';
import type { HybridMetrics } from './hybrid.metrics';
import type { NodeLedger } from '../node-ledger';

export interface OnlineClaimerOptions {
  /** How often demand is sampled (ms): the reaction time to online load rising from zero. */
  tickMs: number;
  /** Claimed units are kept this long after demand falls, so batch does not flap in and out. */
  holdDownMs: number;
  /** After the ledger refused a claim (online partition full), wait this long before asking again. */
  retryMs: number;
}

/** Units (CPU cores of this node) each key (a model) wants now; 0 or absent when idle. */
export type OnlineDemand = () => ReadonlyMap<string, number>;

interface KeyState {
  leases: Lease[];
  wanted: number;
  lastWantedAt: number;
  shortUntil: number;
  claiming: boolean;
}

export interface OnlineClaimView {
  key: string;
  wanted: number;
  held: number;
  allocationGroups: string[];
}

/**
 * The gateway side of co-location: a model's replicas hold online allocations (one per core of
 * this node's CPU device) while the model has work, and give them back after a hold-down once it
 * is idle. Claiming an online share revokes borrowed batch units, which is how rising online load
 * takes capacity back; releasing lets batch borrow again.
 */
export class OnlineClaimer {
  private readonly keys = new Map<string, KeyState>();
  private timer: NodeJS.Timeout | null = null;
  private device: { view: DeviceView; at: number } | null = null;
  private stopped = false;
  /** When a claim last revoked batch units (performance.now()), null if never. */
  lastPreemptionAt: number | null = null;

  constructor(
    private readonly deps: NodeLedger,
    private readonly opts: OnlineClaimerOptions,
    private readonly logger: SchedulerLogger,
    private readonly metrics?: HybridMetrics,
  ) {}

  start(demand: OnlineDemand): void {
    this.stopped = false;
    let busy = false;
    this.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void this.tick(demand())
        .catch((err: unknown) => this.logger.warn({ err }, 'online claim tick failed'))
        .finally(() => (busy = false));
    }, this.opts.tickMs);
    this.timer.unref();
  }

  /** One pass: claim what is wanted and not held; release what is held and unwanted past the hold-down. */
  async tick(demand: ReadonlyMap<string, number>): Promise<void> {
    if (this.stopped) return;
    const cpu = await this.cpuDevice();
    const cap = cpu ? Math.floor(cpu.partition.online * (cpu.cores ?? 1) + 1e-9) : 0;
    const t = performance.now();
    for (const key of new Set([...demand.keys(), ...this.keys.keys()])) {
      const st = this.state(key);
      st.wanted = Math.min(cap, Math.max(0, Math.floor(demand.get(key) ?? 0)));
      const held = st.leases.filter((l) => l.state === 'active' || l.state === 'revoking');
      st.leases = held;
      if (st.wanted > 0 && st.wanted >= held.length) st.lastWantedAt = t;
      if (st.wanted > held.length && !st.claiming && t >= st.shortUntil && cpu) void this.claim(key, st, cpu, st.wanted - held.length);
      else if (st.wanted < held.length && t - st.lastWantedAt >= this.opts.holdDownMs) {
        const surplus = st.leases.splice(st.wanted);
        await Promise.all(surplus.map((l) => l.release().catch((err: unknown) => this.logger.warn({ err, key }, 'online release failed'))));
        this.logger.info({ key, released: surplus.length, held: st.leases.length }, 'online share released after hold-down');
      }
      this.metrics?.onlineUnits.set({ model: key, kind: 'held' }, st.leases.length);
      this.metrics?.onlineUnits.set({ model: key, kind: 'wanted' }, st.wanted);
    }
  }

  private async claim(key: string, st: KeyState, cpu: DeviceView, n: number): Promise<void> {
    st.claiming = true;
    const t0 = performance.now();
    try {
      const share = 1 / Math.max(1, cpu.cores ?? 1);
      const holder = `${this.deps.allocations.defaultHolder}/online:${key}`;
      const got = await Promise.allSettled(
        Array.from({ length: n }, () => this.deps.allocations.allocate({ kind: 'online', share, devices: [cpu.id], holder })),
      );
      let short = 0;
      for (const r of got) {
        if (r.status === 'fulfilled') {
          if (r.value.grant.preempted > 0) this.lastPreemptionAt = performance.now();
          if (this.stopped) void r.value.release();
          else st.leases.push(r.value);
        } else if (r.reason instanceof DomainException) short++;
        else this.logger.warn({ err: r.reason, key }, 'online claim failed');
      }
      if (short > 0) {
        st.shortUntil = performance.now() + this.opts.retryMs;
        this.metrics?.onlineShort.inc({ model: key }, short);
        this.device = null; // partition may have changed
      }
      this.logger.info({ key, claimed: n - short, short, held: st.leases.length, ms: Math.round(performance.now() - t0) }, 'online share claimed');
    } finally {
      st.claiming = false;
    }
  }

  private async cpuDevice(): Promise<DeviceView | null> {
    if (this.device && performance.now() - this.device.at < 5_000) return this.device.view;
    const view = (await this.deps.ledger.usableDevices(this.deps.nodeName, 'cpu'))[0] ?? null;
    this.device = view ? { view, at: performance.now() } : null;
    return view;
  }

  private state(key: string): KeyState {
    let st = this.keys.get(key);
    if (!st) {
      st = { leases: [], wanted: 0, lastWantedAt: 0, shortUntil: 0, claiming: false };
      this.keys.set(key, st);
    }
    return st;
  }

  snapshot(): OnlineClaimView[] {
    return [...this.keys.entries()].map(([key, st]) => ({ key, wanted: st.wanted, held: st.leases.length, allocationGroups: st.leases.map((l) => l.id) }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.keys.values()].flatMap((st) => st.leases.splice(0).map((l) => l.release().catch(() => undefined))));
  }
}
