/**
 * `GET /admin/api/history`: the last minutes of the system as the gateway sampled them, columnar
 * (one `t` array per entity, value arrays aligned with it) so the panel hands them to its charts
 * as they are. Times are unix seconds. Shared by the sampler, its controller and the panel.
 */
export interface HistoryView {
  windowS: number;
  /** Seconds between samples. */
  sampleS: number;
  /** When this answer was made (unix seconds). */
  now: number;
  /** The online p99 target (HYBRID_ONLINE_P99_TARGET_MS); null when none is set. */
  sloP99Ms: number | null;
  devices: DeviceHistory[];
  /** Revocations of borrowed batch shares seen cluster-wide (the charts' markers). */
  revocations: RevocationMark[];
  models: ModelHistory[];
  batches: BatchHistory[];
  /** The last sampling failure (e.g. the database was unreachable), null when the last one worked. */
  sampleError: string | null;
}

export interface DeviceHistory {
  id: string;
  kind: string;
  model: string;
  memoryMiB: number;
  t: number[];
  /** Shares of the device in use (0–1): online, batch on online's idle share, batch in all. */
  online: number[];
  borrowed: number[];
  batch: number[];
  memoryUsedMiB: number[];
}

export interface RevocationMark {
  t: number;
  deviceId: string;
  holder: string;
}

export interface ModelHistory {
  name: string;
  t: number[];
  /** Answered requests per second over the sample interval. */
  requestsPerS: number[];
  /** End-to-end p99 over the sample interval, ms (null: no request in it). */
  p99Ms: (number | null)[];
  queueDepth: number[];
  replicas: number[];
}

export interface BatchHistory {
  id: string;
  task: string;
  state: string;
  items: number;
  t: number[];
  /** Items done or failed so far. */
  settled: number[];
  /** Items settled per second over the sample interval. */
  itemsPerS: number[];
  /** Seconds to go at the recent rate (null: not running or no progress yet). */
  etaS: (number | null)[];
  /** Device-seconds held so far, on owned and on borrowed (revocable) share. */
  ownedS: number[];
  borrowedS: number[];
}
