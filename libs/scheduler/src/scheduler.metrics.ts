import { counter, gauge, histogram } from '@tandem/shared';
import type { DeviceView } from './scheduler.types';

/** @deprecated Use counter/gauge/histogram from `@tandem/shared` (kept while the gateway's batch-cost gauges call it). */

/** Scheduler metrics on prom-client's default registry (the gateway's /metrics exposes them). */
export class SchedulerMetrics {
  readonly shareUsed = gauge({
    name: 'tandem_scheduler_device_share_used',
    help: 'Share of each device held, by kind (online, batch, of which borrowed); 1 = a whole device',
    labelNames: ['device', 'node', 'kind'] as const,
  });
  readonly partition = gauge({
    name: 'tandem_scheduler_device_partition',
    help: 'Share of each device reserved per kind',
    labelNames: ['device', 'node', 'kind'] as const,
  });
  readonly preemptions = counter({ name: 'tandem_scheduler_preemptions_total', help: 'Borrowed batch allocations revoked for online work' });
  readonly forcedReclaims = counter({
    name: 'tandem_scheduler_forced_reclaims_total',
    help: 'Revoked allocations force-reclaimed after the preemption grace',
  });
  readonly leaseExpiries = counter({
    name: 'tandem_scheduler_lease_expiries_total',
    help: 'Allocations reclaimed because their lease expired or their node was lost',
    labelNames: ['reason'] as const,
  });
  readonly allocations = counter({
    name: 'tandem_scheduler_allocations_total',
    help: 'Allocation requests by kind and outcome',
    labelNames: ['kind', 'outcome'] as const,
  });
  readonly preemptWait = histogram({
    name: 'tandem_scheduler_preemption_wait_seconds',
    help: 'Time an online request waited for revoked batch shares to be released',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });

  /** Refreshes the per-device gauges from a ledger snapshot (the reaper does this each pass). */
  snapshot(devices: readonly DeviceView[]): void {
    this.shareUsed.reset();
    this.partition.reset();
    for (const d of devices) {
      this.shareUsed.set({ device: d.id, node: d.node, kind: 'online' }, d.used.online);
      this.shareUsed.set({ device: d.id, node: d.node, kind: 'batch' }, d.used.batch);
      this.shareUsed.set({ device: d.id, node: d.node, kind: 'borrowed' }, d.used.borrowed);
      this.partition.set({ device: d.id, node: d.node, kind: 'online' }, d.partition.online);
      this.partition.set({ device: d.id, node: d.node, kind: 'batch' }, d.partition.batch);
    }
  }
}
