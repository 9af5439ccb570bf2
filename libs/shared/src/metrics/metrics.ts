import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  register,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from 'prom-client';

/** Every Tandem metric lives in prom-client's default registry under this prefix. */
export const METRIC_PREFIX = 'tandem_';

type Named<C> = Omit<C, 'name'> & { name: string };

function prefixed(name: string): string {
  return name.startsWith(METRIC_PREFIX) ? name : `${METRIC_PREFIX}${name}`;
}

/**
 * Get-or-create against the global registry: several app instances in one process (e2e
 * tests, the launcher, several schedulers in a test) would otherwise throw "metric already
 * registered". The one such helper: use counter/gauge/histogram below, this only for another
 * metric type.
 */
export function getOrCreateMetric<M>(name: string, make: () => M): M {
  const existing = register.getSingleMetric(prefixed(name));
  return existing ? (existing as unknown as M) : make();
}

export function counter<L extends string>(cfg: Named<CounterConfiguration<L>>): Counter<L> {
  return getOrCreateMetric(cfg.name, () => new Counter<L>({ ...cfg, name: prefixed(cfg.name) }));
}

export function gauge<L extends string>(cfg: Named<GaugeConfiguration<L>>): Gauge<L> {
  return getOrCreateMetric(cfg.name, () => new Gauge<L>({ ...cfg, name: prefixed(cfg.name) }));
}

export function histogram<L extends string>(cfg: Named<HistogramConfiguration<L>>): Histogram<L> {
  return getOrCreateMetric(cfg.name, () => new Histogram<L>({ ...cfg, name: prefixed(cfg.name) }));
}

/** Seconds buckets from 100 µs to 10 s, for queue and compute times. */
export const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

/**
 * Removes every series of `metric` whose labels include all of `match` (e.g. one model's series
 * when it is unloaded), whatever its other labels. Returns how many label sets were removed.
 */
export async function removeSeries(metric: AnyMetric, match: Record<string, string>): Promise<number> {
  const sets = new Map<string, Record<string, string | number>>();
  for (const v of (await metric.get()).values) {
    // A histogram reports each bucket under an extra `le` label that is not part of the series.
    const { le: _le, ...labels } = v.labels as Record<string, string | number>;
    if (Object.entries(match).every(([k, want]) => String(labels[k]) === want)) sets.set(JSON.stringify(labels), labels);
  }
  for (const labels of sets.values()) metric.remove(labels);
  return sets.size;
}

/** The Prometheus text exposition of the default registry. */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: register.contentType, body: await register.metrics() };
}

/**
 * Process metrics under their conventional names (process_resident_memory_bytes,
 * nodejs_heap_size_used_bytes, nodejs_eventloop_lag_seconds, ...): memory and event-loop lag
 * are what an operator checks first on a long-running node. Once per process.
 */
export function collectProcessMetrics(): void {
  if (register.getSingleMetric('process_resident_memory_bytes')) return;
  collectDefaultMetrics({ register });
}
