import { Counter, Gauge, Histogram, register, type Metric } from 'prom-client';
import type { DeviceView } from './scheduler.types';

/** The registered metric of that name, or a new one (several instances can live in one process). */
export function getOr<T extends Metric>(name: string, make: () => T): T {
  // Several scheduler instances can live in one process (tests, bench): share the metric.
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

/** Scheduler metrics on prom-client's default registry (the gateway's /metrics exposes them). */
export class SchedulerMetrics {
  readonly shareUsed = getOr(
    'tandem_scheduler_device_share_used',
    () =>
      new Gauge({
        name: 'tandem_scheduler_device_share_used',
        help: 'Share of each device held, by kind (online, batch, of which borrowed); 1 = a whole device',
        labelNames: ['device', 'node', 'kind'] as const,
      }),
  );
  readonly partition = getOr(
    'tandem_scheduler_device_partition',
    () =>
      new Gauge({
        name: 'tandem_scheduler_device_partition',
        help: 'Share of each device reserved per kind',
        labelNames: ['device', 'node', 'kind'] as const,
      }),
  );
  readonly preemptions = getOr(
    'tandem_scheduler_preemptions_total',
    () => new Counter({ name: 'tandem_scheduler_preemptions_total', help: 'Borrowed batch allocations revoked for online work' }),
  );
  readonly forcedReclaims = getOr(
    'tandem_scheduler_forced_reclaims_total',
    () =>
      new Counter({ name: 'tandem_scheduler_forced_reclaims_total', help: 'Revoked allocations force-reclaimed after the preemption grace' }),
  );
  readonly leaseExpiries = getOr(
    'tandem_scheduler_lease_expiries_total',
    () =>
      new Counter({
        name: 'tandem_scheduler_lease_expiries_total',
        help: 'Allocations reclaimed because their lease expired or their node was lost',
        labelNames: ['reason'] as const,
      }),
  );
  readonly allocations = getOr(
    'tandem_scheduler_allocations_total',
    () =>
      new Counter({
        name: 'tandem_scheduler_allocations_total',
        help: 'Allocation requests by kind and outcome',
        labelNames: ['kind', 'outcome'] as const,
      }),
  );
  readonly preemptWait = getOr(
    'tandem_scheduler_preemption_wait_seconds',
    () =>
      new Histogram({
        name: 'tandem_scheduler_preemption_wait_seconds',
        help: 'Time an online request waited for revoked batch shares to be released',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      }),
  );

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
