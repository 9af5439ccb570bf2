import { DomainException } from '@tandem/shared';
import type { Lease } from '../lease/lease';
import type { SchedulerLogger } from '../scheduler.logger';
import type { DeviceView } from '../scheduler.types';
import type { HybridMetrics } from './hybrid.metrics';
import type { NodeLedger } from '../node-ledger';
import { LocalDemandHint } from '../events/local-demand-hint';

/** A hint holds the units for 500 ms and the claim follows it: at most one per second (one per idle → busy). */
const HINT_INTERVAL_MS = 1_000;

export interface OnlineClaimerOptions {
  /** How often demand is sampled (ms): the reaction time to online load rising from zero. */
  tickMs: number;
  /** Claimed units are kept this long after demand falls, so batch does not flap in and out. */
  holdDownMs: number;
  /** After the ledger refused a claim (online partition full), wait this long before asking again. */
  retryMs: number;
  /**
   * After an online-demand hint, claim this much later (ms; default 0). The hint has already
   * stopped the node's borrowed units; the claim's transaction, the revocation and the workers'
   * releases then run after the first requests instead of beside them (the first 100 ms after
   * idle is where online's tail was made). The hint holds the units for 500 ms.
   */
  claimAfterHintMs?: number;
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
  private refreshing = false;
  private stopped = false;
  private busy = false;
  private lastRunAt = Number.NEGATIVE_INFINITY;
  /** When the last online-demand hint went out (performance.now()); no claim before claimAfterHintMs after it. */
  private lastHintAt = Number.NEGATIVE_INFINITY;
  private demand: OnlineDemand | null = null;
  private readonly localHint: LocalDemandHint | null;
  /** When a claim last revoked batch units (performance.now()), null if never. */
  lastPreemptionAt: number | null = null;

  constructor(
    private readonly deps: NodeLedger,
    private readonly opts: OnlineClaimerOptions,
    private readonly logger: SchedulerLogger,
    private readonly metrics?: HybridMetrics,
  ) {
    this.localHint = deps.hintDir ? new LocalDemandHint(deps.hintDir, deps.nodeName) : null;
  }

  start(demand: OnlineDemand): void {
    this.stopped = false;
    this.demand = demand;
    this.timer = setInterval(() => this.run(), this.opts.tickMs);
    this.timer.unref();
    this.localHint?.prepare();
    void this.deps.ledger.openDemandChannel().catch((err: unknown) => this.logger.warn({ err }, 'online demand channel: cannot connect (hints use the pool)'));
  }

  /**
   * Traffic may have started: look now rather than at the next tick, unless every key already
   * holds a share (the common case under load: O(keys), no ledger call).
   */
  nudge(): void {
    const states = [...this.keys.values()];
    if (states.length > 0 && states.every((st) => st.leases.length > 0)) return;
    // Nothing held at all: traffic after idle. Borrowed batch units on this node stop at this
    // hint (their worker's fast path), before the claim's transaction revokes them (measured:
    // the units kept running 50-200 ms into the traffic, and the first requests paid 40-80 ms).
    // At most one hint per HINT_INTERVAL_MS: requests nudge at admission and as they start, and
    // a hint must not push back the claim that follows it.
    const at = performance.now();
    if (states.every((st) => st.leases.length === 0 && !st.claiming) && at - this.lastHintAt >= HINT_INTERVAL_MS) {
      this.lastHintAt = at;
      this.localHint?.raise(); // this node's workers, at once; the NOTIFY below reaches every other
      const later = this.opts.claimAfterHintMs ?? 0;
      if (later > 0) setTimeout(() => this.run(), later + 1).unref();
      void this.deps.ledger.announceOnlineDemand(this.deps.nodeName).then(
        () => this.logger.info({ ms: Math.round((performance.now() - at) * 10) / 10 }, 'online demand announced'),
        (err: unknown) => this.logger.warn({ err }, 'online demand hint failed'),
      );
    }
    // At most one look per ms, whatever the request rate. After the hint: a tick (every 10 ms)
    // that ran just before the first request must not swallow it, or that tick's successor
    // claims with no hint and the units run on until the ledger revokes them (seen in 1 of 26
    // bench:hybrid rounds: stopped at +53 ms instead of +16).
    if (at - this.lastRunAt < 1) return;
    this.run();
  }

  private run(): void {
    if (this.busy || !this.demand) return;
    this.busy = true;
    this.lastRunAt = performance.now();
    void this.tick(this.demand())
      .catch((err: unknown) => this.logger.warn({ err }, 'online claim tick failed'))
      .finally(() => (this.busy = false));
  }

  /** Cores the leases hold (a whole-partition claim is one lease of several). */
  private heldCores(leases: readonly Lease[]): number {
    return leases.reduce((n, l) => n + l.grant.threads, 0);
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
      st.leases = st.leases.filter((l) => l.state === 'active' || l.state === 'revoking');
      const held = this.heldCores(st.leases);
      if (st.wanted > 0 && st.wanted >= held) st.lastWantedAt = t;
      if (st.wanted > held && !st.claiming && t >= st.shortUntil && t >= this.lastHintAt + (this.opts.claimAfterHintMs ?? 0) && cpu)
        void this.claim(key, st, cpu, st.wanted - held, held === 0 && st.wanted === cap);
      else if (st.wanted < held && t - st.lastWantedAt >= this.opts.holdDownMs) {
        // Whole leases from the newest; a multi-core one may take the count below `wanted` (the next tick claims the difference).
        let keep = st.leases.length;
        for (let h = held; keep > 0 && h > st.wanted; keep--) h -= st.leases[keep - 1]!.grant.threads;
        const surplus = st.leases.splice(keep);
        await Promise.all(surplus.map((l) => l.release().catch((err: unknown) => this.logger.warn({ err, key }, 'online release failed'))));
        this.logger.info({ key, released: surplus.length, held: this.heldCores(st.leases) }, 'online share released after hold-down');
      }
      this.metrics?.onlineUnits.set({ model: key, kind: 'held' }, this.heldCores(st.leases));
      this.metrics?.onlineUnits.set({ model: key, kind: 'wanted' }, st.wanted);
    }
  }

  /**
   * `whole`: the whole partition from nothing (the first request after idle, under `partition`):
   * one allocation of `n` cores, so every borrowed unit is revoked by one ledger transaction and
   * one NOTIFY (per-core claims queue on the device's row lock and stop the units one after the
   * other: measured 24–141 ms to the second grant).
   */
  private async claim(key: string, st: KeyState, cpu: DeviceView, n: number, whole = false): Promise<void> {
    st.claiming = true;
    const t0 = performance.now();
    try {
      const core = 1 / Math.max(1, cpu.cores ?? 1);
      const holder = `${this.deps.allocations.defaultHolder}/online:${key}`;
      const sizes = whole && n > 1 ? [n] : Array.from({ length: n }, () => 1);
      const got = await Promise.allSettled(
        sizes.map((c) => this.deps.allocations.allocate({ kind: 'online', share: Math.min(1, c * core), devices: [cpu.id], holder })),
      );
      let short = 0;
      for (const [i, r] of got.entries()) {
        if (r.status === 'fulfilled') {
          if (r.value.grant.preempted > 0) this.lastPreemptionAt = performance.now();
          if (this.stopped) void r.value.release();
          else st.leases.push(r.value);
        } else if (r.reason instanceof DomainException) short += sizes[i]!;
        else this.logger.warn({ err: r.reason, key }, 'online claim failed');
      }
      if (short > 0) {
        st.shortUntil = performance.now() + this.opts.retryMs;
        this.metrics?.onlineShort.inc({ model: key }, short);
        this.device = null; // partition may have changed
      }
      this.logger.info({ key, claimed: n - short, short, held: this.heldCores(st.leases), ms: Math.round(performance.now() - t0) }, 'online share claimed');
    } finally {
      st.claiming = false;
    }
  }

  /**
   * This node's CPU device. A view older than 5 s is refreshed in the background and used
   * meanwhile: the claim at the first request after idle goes to the ledger without waiting for a
   * read first (a partition changed meanwhile is what a refused claim finds, and it reloads).
   */
  private async cpuDevice(): Promise<DeviceView | null> {
    if (this.device) {
      if (performance.now() - this.device.at >= 5_000 && !this.refreshing) {
        this.refreshing = true;
        void this.loadDevice()
          .catch((err: unknown) => this.logger.warn({ err }, 'online claim: device refresh failed'))
          .finally(() => (this.refreshing = false));
      }
      return this.device.view;
    }
    return this.loadDevice();
  }

  private async loadDevice(): Promise<DeviceView | null> {
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
    return [...this.keys.entries()].map(([key, st]) => ({
      key,
      wanted: st.wanted,
      held: this.heldCores(st.leases),
      allocationGroups: st.leases.map((l) => l.id),
    }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.deps.ledger.closeDemandChannel();
    await Promise.all([...this.keys.values()].flatMap((st) => st.leases.splice(0).map((l) => l.release().catch(() => undefined))));
  }
}
