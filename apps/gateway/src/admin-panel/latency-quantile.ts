import { register } from 'prom-client';

interface BucketSample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * Upper bound of the bucket holding the q-quantile of a prom-client histogram, per `model`
 * label (a histogram quantile, as Prometheus' histogram_quantile reports without interpolation).
 * Counts are since the process started. null when a model has no observations.
 */
export async function histogramQuantileByModel(metric: string, q: number): Promise<Map<string, number | null>> {
  const m = register.getSingleMetric(metric);
  const out = new Map<string, number | null>();
  if (!m) return out;
  const values = ((await m.get()).values as BucketSample[]).filter((v) => v.metricName?.endsWith('_bucket'));
  const byModel = new Map<string, { le: number; count: number }[]>();
  for (const v of values) {
    const model = String(v.labels.model ?? '');
    const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
    byModel.set(model, [...(byModel.get(model) ?? []), { le, count: v.value }]);
  }
  for (const [model, buckets] of byModel) {
    buckets.sort((a, b) => a.le - b.le);
    const total = buckets.at(-1)?.count ?? 0;
    if (total === 0) {
      out.set(model, null);
      continue;
    }
    const hit = buckets.find((b) => b.count >= q * total);
    // Beyond the last finite bucket: report that bound (the true value is larger).
    const finite = buckets.filter((b) => Number.isFinite(b.le)).at(-1)?.le ?? null;
    out.set(model, hit && Number.isFinite(hit.le) ? hit.le : finite);
  }
  return out;
}
