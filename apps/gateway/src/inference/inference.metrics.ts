import { ErrorCode, DomainException, counter, gauge, histogram, LATENCY_BUCKETS_S, removeSeries } from '@tandem/shared';
import type { InferenceObserver, RejectReason, ReplicaRestartReason } from '@tandem/inference';

const requests = counter({ name: 'inference_requests_total', help: 'Infer requests answered, by model and outcome', labelNames: ['model', 'outcome'] });
const failures = counter({
  name: 'inference_failures_total',
  help: 'Infer requests that failed, by model and reason',
  labelNames: ['model', 'reason'],
});
const queueTime = histogram({
  name: 'inference_queue_seconds',
  help: 'Time a request waited in the batcher queue',
  labelNames: ['model'],
  buckets: LATENCY_BUCKETS_S,
});
const computeTime = histogram({
  name: 'inference_compute_seconds',
  help: 'Time one merged batch ran on a replica',
  labelNames: ['model'],
  buckets: LATENCY_BUCKETS_S,
});
// The two gauges that move on every request are kept in plain maps and published when scraped
// (`collect`): prom-client's labelled set/inc hashes the labels each time (~1 µs, four per request).
const depths = new Map<string, { model: string; version: string; depth: number }>();
const ongoingNow = new Map<string, number>();
const queueDepth = gauge({
  name: 'inference_queue_depth',
  help: 'Requests waiting in the batcher queue',
  labelNames: ['model', 'version'],
  collect() {
    for (const d of depths.values()) this.set({ model: d.model, version: d.version }, d.depth);
  },
});
const batchSize = histogram({
  name: 'inference_batch_size',
  help: 'Rows per merged batch sent to a replica',
  labelNames: ['model'],
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
});
const replicas = gauge({ name: 'inference_replicas', help: 'Replicas serving a model version', labelNames: ['model', 'version'] });
const ongoing = gauge({
  name: 'inference_ongoing_requests',
  help: 'Infer requests queued or running, by model',
  labelNames: ['model'],
  collect() {
    for (const [model, n] of ongoingNow) this.set({ model }, n);
  },
});
const restarts = counter({
  name: 'inference_replica_restarts_total',
  help: 'Replica threads replaced because the model crashed, ran out of memory or hung past a deadline (node models)',
  labelNames: ['model', 'version', 'reason'],
});

/** Every metric with a `model` label: what `forget` clears when a model goes away. */
const PER_MODEL = [requests, failures, queueTime, computeTime, queueDepth, batchSize, replicas, ongoing, restarts];

/** Failure reason label for an error thrown on the infer path. */
export function reasonOf(e: unknown): string {
  if (e instanceof DomainException) {
    if (e.code === ErrorCode.Unavailable) return /overloaded/.test(e.message) ? 'queue_full' : 'unavailable';
    return e.code;
  }
  return 'internal';
}

/**
 * Prometheus side of the inference path (prom-client default registry, `tandem_` prefix). Callers
 * pass only names of models in the repository, so the label values stay a bounded set.
 */
export class InferenceMetrics implements InferenceObserver {
  queueDepth(model: string, version: string, depth: number): void {
    const key = `${model}\0${version}`;
    const d = depths.get(key);
    if (d) d.depth = depth;
    else depths.set(key, { model, version, depth });
  }

  dequeued(model: string, _version: string, queueMs: number): void {
    queueTime.observe({ model }, queueMs / 1000);
  }

  batch(model: string, _version: string, items: number, _requests: number, computeMs: number): void {
    batchSize.observe({ model }, items);
    computeTime.observe({ model }, computeMs / 1000);
  }

  // Failures are counted once per request in `failed` (the batcher's reasons are all covered there).
  rejected(_model: string, _version: string, _reason: RejectReason): void {}

  succeeded(model: string): void {
    requests.inc({ model, outcome: 'success' });
  }

  failed(model: string, e: unknown): void {
    const reason = reasonOf(e);
    requests.inc({ model, outcome: 'failure' });
    failures.inc({ model, reason });
  }

  replicaRestarted(model: string, version: string, reason: ReplicaRestartReason): void {
    restarts.inc({ model, version, reason });
  }

  replicas(model: string, version: string, n: number): void {
    replicas.set({ model, version }, n);
  }

  /** +1 when a request starts, -1 when it is answered. */
  ongoing(model: string, delta: 1 | -1): void {
    ongoingNow.set(model, (ongoingNow.get(model) ?? 0) + delta);
  }

  /** Drops every series of a model (it was unloaded), so /metrics shows only models being served. */
  async forget(model: string): Promise<void> {
    ongoingNow.delete(model);
    for (const [key, d] of depths) if (d.model === model) depths.delete(key);
    await Promise.all(PER_MODEL.map((m) => removeSeries(m, { model })));
  }
}
