import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from '@tandem/persistence';
import { defaultSchedulerOptions, Scheduler, StaticGpuProbe, type SchedulerOptions } from '@tandem/scheduler';

/** Sub-second timings so leases, heartbeats and grace run in test time. */
// Margins sized for a loaded 2-core box: a process may stall a few hundred ms without losing
// its leases (TTL = 10 heartbeats) or its node (timeout = 20 heartbeats).
export const FAST = { leaseTtlMs: 1500, heartbeatMs: 150, nodeTimeoutMs: 3000, preemptGraceMs: 400, reaperMs: 100 } as const;

export interface Harness {
  ds: DataSource;
  schedulers: Scheduler[];
  /** A started scheduler on its own DataSource-sharing instance (one per simulated process role). */
  make(opts: Partial<SchedulerOptions>, nvidiaSmi?: string): Promise<Scheduler>;
  close(): Promise<void>;
}

export async function schedulerHarness(url: string): Promise<Harness> {
  const ds = await new DataSource(buildDataSourceOptions({ url, poolSize: 8, applicationName: 'sched-test' })).initialize();
  const schedulers: Scheduler[] = [];
  return {
    ds,
    schedulers,
    async make(opts, nvidiaSmi = '') {
      const s = new Scheduler(ds, defaultSchedulerOptions({ discoverCpu: false, discoverGpus: nvidiaSmi !== '', ...FAST, ...opts }), {
        probe: new StaticGpuProbe(nvidiaSmi),
        databaseUrl: url,
      });
      await s.start();
      schedulers.push(s);
      return s;
    },
    async close() {
      for (const s of schedulers) await s.stop().catch(() => undefined);
      await ds.destroy();
    },
  };
}

/** Polls until `fn` returns a truthy value (no timing assertion: only a generous ceiling). */
export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
