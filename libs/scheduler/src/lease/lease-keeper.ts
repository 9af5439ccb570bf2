import type { RevocationListener } from '../events/revocation.listener';
import type { LedgerRepository } from '../ledger/ledger.repository';
import type { SchedulerLogger } from '../scheduler.logger';
import type { RevocationNotice } from '../scheduler.types';
import type { Lease } from './lease';

/**
 * Renews every lease this process holds on one timer (one UPDATE for all of them), and routes
 * revocations to them. A process that dies stops renewing, so its leases expire within the TTL.
 */
export class LeaseKeeper {
  private readonly byAllocation = new Map<string, Lease>();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private renewing = false;

  constructor(
    private readonly repo: LedgerRepository,
    private readonly listener: RevocationListener,
    private readonly opts: { leaseTtlMs: number; heartbeatMs: number },
    private readonly logger: SchedulerLogger,
  ) {}

  start(): void {
    this.unsubscribe = this.listener.onRevoke((n) => this.byAllocation.get(n.allocationId)?.revoked(n));
    this.timer = setInterval(() => void this.renewAll(), this.opts.heartbeatMs);
    this.timer.unref();
  }

  track(lease: Lease): void {
    for (const id of lease.allocationIds) this.byAllocation.set(id, lease);
  }

  untrack(lease: Lease): void {
    for (const id of lease.allocationIds) this.byAllocation.delete(id);
  }

  get held(): Lease[] {
    return [...new Set(this.byAllocation.values())];
  }

  async renewAll(): Promise<void> {
    if (this.renewing || this.byAllocation.size === 0) return;
    this.renewing = true;
    try {
      const ids = [...this.byAllocation.keys()];
      const alive = await this.repo.renew(ids, this.opts.leaseTtlMs);
      const state = new Map(alive.map((r) => [r.id, r.state]));
      for (const id of ids) {
        const lease = this.byAllocation.get(id);
        if (!lease) continue;
        const s = state.get(id);
        const notice = (reason: RevocationNotice['reason']): RevocationNotice => ({
          allocationId: id,
          groupId: lease.id,
          deviceId: lease.grant.devices.find((d) => d.allocationId === id)?.deviceId ?? '',
          holder: lease.grant.holder,
          deadline: new Date(),
          reason,
        });
        if (s === undefined) {
          lease.lost(notice('reclaimed'));
          this.untrack(lease);
        } else if (s === 'revoking') {
          lease.revoked(notice('preempted'));
        }
      }
    } catch (err) {
      this.logger.warn({ err }, 'lease renewal failed; retrying next heartbeat');
    } finally {
      this.renewing = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
  }
}
