import type { InventoryRepository } from './ledger/inventory.repository';
import type { LedgerRepository, ReapResult } from './ledger/ledger.repository';
import type { SchedulerLogger } from './scheduler.logger';
import type { SchedulerMetrics } from './scheduler.metrics';
import type { SchedulerOptions } from './scheduler.options';

/**
 * Reclaims what crashed processes leave behind: expired leases, revoked shares past their grace,
 * and every lease of a node that stopped heartbeating. Runs in every scheduler process; each step
 * is one atomic statement, so concurrent reapers never double-reclaim.
 */
export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly ledger: LedgerRepository,
    private readonly inventory: InventoryRepository,
    private readonly metrics: SchedulerMetrics,
    private readonly opts: SchedulerOptions,
    private readonly logger: SchedulerLogger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.reaperMs);
    this.timer.unref();
  }

  async tick(): Promise<ReapResult | null> {
    if (this.running) return null;
    this.running = true;
    try {
      const r = await this.ledger.reap(this.opts.nodeTimeoutMs);
      if (r.expired.length) this.metrics.leaseExpiries.inc({ reason: 'expired' }, r.expired.length);
      if (r.lostNodeLeases.length) this.metrics.leaseExpiries.inc({ reason: 'node_lost' }, r.lostNodeLeases.length);
      if (r.forced.length) this.metrics.forcedReclaims.inc(r.forced.length);
      if (r.lostNodes.length) this.logger.warn({ nodes: r.lostNodes }, 'scheduler nodes stopped heartbeating: marked lost');
      if (r.expired.length || r.lostNodeLeases.length || r.forced.length) {
        this.logger.info({ expired: r.expired.length, nodeLost: r.lostNodeLeases.length, forced: r.forced.length }, 'scheduler reclaimed allocations');
      }
      this.metrics.snapshot(await this.inventory.listDevices());
      return r;
    } catch (err) {
      this.logger.warn({ err }, 'scheduler reaper pass failed');
      return null;
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
