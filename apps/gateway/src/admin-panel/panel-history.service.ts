import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { register } from 'prom-client';
import { METRIC_PREFIX } from '@tandem/shared';
import { DeviceLedgerService, RevocationListener } from '@tandem/scheduler';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway.config';
import { InferenceService } from '../inference/inference.service';
import { BatchProgressRepository, type BatchProgressRow } from './batch-progress.repository';
import { ModelsAdminService } from './models-admin.service';
import type { BatchHistory, DeviceHistory, HistoryView, ModelHistory, RevocationMark } from './panel-history.types';
import { Ring } from './ring';

/** Seconds between samples, and the longest window kept (the panel's charts show 15 minutes). */
export const HISTORY_SAMPLE_S = 3;
export const HISTORY_WINDOW_S = 900;
const CAPACITY = Math.ceil(HISTORY_WINDOW_S / HISTORY_SAMPLE_S) + 1;
/** Batches charted at once (the newest; a busy cluster's older ones drop off the panel). */
const MAX_BATCHES = 20;
/** ETA from the settle rate over this many samples (one interval alone is too jumpy). */
const ETA_SAMPLES = 10;

type DeviceSample = { t: number; online: number; borrowed: number; batch: number; memoryUsedMiB: number };
type ModelSample = { t: number; requests: number; requestsPerS: number; p99Ms: number | null; queueDepth: number; replicas: number };
type BatchSample = { t: number; settled: number; itemsPerS: number; etaS: number | null; ownedS: number; borrowedS: number };
interface Series<M, S> {
  meta: M;
  ring: Ring<S>;
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;
const nowS = (): number => Date.now() / 1000;

/**
 * Samples devices, models and batches every few seconds into per-entity rings, so the panel's
 * charts show the last 15 minutes as soon as it opens; records revocations as they are announced.
 */
@Injectable()
export class PanelHistoryService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly devices = new Map<string, Series<Omit<DeviceHistory, 't' | 'online' | 'borrowed' | 'batch' | 'memoryUsedMiB'>, DeviceSample>>();
  private readonly models = new Map<string, Series<{ name: string }, ModelSample>>();
  private readonly batches = new Map<string, Series<Omit<BatchProgressRow, 'settled' | 'ownedS' | 'borrowedS'>, BatchSample>>();
  private readonly revocations = new Ring<RevocationMark>(1000);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private unsubscribe: (() => void) | null = null;
  private sampleError: string | null = null;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly cfg: GatewayConfig,
    @Inject(DeviceLedgerService) private readonly ledger: DeviceLedgerService,
    @Inject(RevocationListener) private readonly revocationEvents: RevocationListener,
    @Inject(ModelsAdminService) private readonly modelsAdmin: ModelsAdminService,
    @Inject(InferenceService) private readonly inference: InferenceService,
    @Inject(BatchProgressRepository) private readonly batchRows: BatchProgressRepository,
  ) {}

  onApplicationBootstrap(): void {
    this.unsubscribe = this.revocationEvents.onRevoke((n) => this.revocations.push({ t: round(nowS()), deviceId: n.deviceId, holder: n.holder }));
    this.tick();
    this.timer = setInterval(() => this.tick(), HISTORY_SAMPLE_S * 1000);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    await this.running;
  }

  /** One sample at a time: a slow database skips ticks rather than piling them up. */
  private tick(): void {
    if (this.running) return;
    this.running = this.sample()
      .then(() => {
        this.sampleError = null;
      })
      .catch((e: unknown) => {
        this.sampleError = e instanceof Error ? e.message : String(e);
      })
      .finally(() => {
        this.running = null;
      });
  }

  /** Takes one sample of everything now (the timer calls it; tests may too). */
  async sample(): Promise<void> {
    const t = round(nowS());
    let batchError: unknown = null;
    const [devices, models, requests, batches] = await Promise.all([
      this.ledger.listDevices(),
      this.modelsAdmin.list(),
      requestsByModel(),
      // The batch table may be missing (a gateway without the batch app): devices and models still chart.
      this.batchRows.recent(HISTORY_WINDOW_S, MAX_BATCHES).catch((e: unknown) => {
        batchError = e;
        return [];
      }),
    ]);
    for (const d of devices) {
      const s = series(this.devices, d.id, { id: d.id, kind: d.kind, model: d.model, memoryMiB: d.memoryMiB });
      s.meta.memoryMiB = d.memoryMiB;
      const borrowed = Math.min(d.partition.online, Math.max(0, d.used.batch - d.partition.batch));
      s.ring.push({ t, online: round(d.used.online), borrowed: round(borrowed), batch: round(d.used.batch), memoryUsedMiB: d.used.memoryMiB });
    }
    for (const m of models) {
      const s = series(this.models, m.name, { name: m.name });
      const prev = s.ring.last();
      const total = requests.get(m.name) ?? 0;
      const dt = prev ? t - prev.t : 0;
      const q = this.inference.latencies.quantile(m.name, 0.99, HISTORY_SAMPLE_S * 1000);
      s.ring.push({
        t,
        requests: total,
        requestsPerS: prev && dt > 0 ? round(Math.max(0, total - prev.requests) / dt, 2) : 0,
        p99Ms: q.count > 0 ? round(q.value, 2) : null,
        queueDepth: m.queueDepth,
        replicas: m.replicas,
      });
    }
    for (const b of batches) {
      const s = series(this.batches, b.id, { id: b.id, task: b.task, state: b.state, items: b.items });
      s.meta.state = b.state;
      const prev = s.ring.last();
      const dt = prev ? t - prev.t : 0;
      const past = s.ring.toArray().slice(-ETA_SAMPLES)[0];
      const rate = past && t > past.t ? (b.settled - past.settled) / (t - past.t) : 0;
      s.ring.push({
        t,
        settled: b.settled,
        itemsPerS: prev && dt > 0 ? round(Math.max(0, b.settled - prev.settled) / dt, 2) : 0,
        etaS: b.state === 'running' && rate > 0 ? Math.round((b.items - b.settled) / rate) : null,
        ownedS: round(b.ownedS),
        borrowedS: round(b.borrowedS),
      });
    }
    this.forgetStale(t);
    if (batchError) throw batchError;
  }

  /** Entities without a sample in the whole window (a device removed, a batch long finished). */
  private forgetStale(t: number): void {
    for (const map of [this.devices, this.models, this.batches] as Map<string, Series<unknown, { t: number }>>[]) {
      for (const [k, s] of map) if ((s.ring.last()?.t ?? 0) < t - HISTORY_WINDOW_S) map.delete(k);
    }
  }

  view(windowS = HISTORY_WINDOW_S): HistoryView {
    const now = round(nowS());
    const from = now - windowS;
    const recent = <S extends { t: number }>(r: Ring<S>): S[] => r.toArray().filter((x) => x.t >= from);
    const devices = [...this.devices.values()].map(({ meta, ring }): DeviceHistory => {
      const xs = recent(ring);
      return {
        ...meta,
        t: xs.map((x) => x.t),
        online: xs.map((x) => x.online),
        borrowed: xs.map((x) => x.borrowed),
        batch: xs.map((x) => x.batch),
        memoryUsedMiB: xs.map((x) => x.memoryUsedMiB),
      };
    });
    const models = [...this.models.values()].map(({ meta, ring }): ModelHistory => {
      const xs = recent(ring);
      return {
        ...meta,
        t: xs.map((x) => x.t),
        requestsPerS: xs.map((x) => x.requestsPerS),
        p99Ms: xs.map((x) => x.p99Ms),
        queueDepth: xs.map((x) => x.queueDepth),
        replicas: xs.map((x) => x.replicas),
      };
    });
    const batches = [...this.batches.values()].map(({ meta, ring }): BatchHistory => {
      const xs = recent(ring);
      return {
        ...meta,
        t: xs.map((x) => x.t),
        settled: xs.map((x) => x.settled),
        itemsPerS: xs.map((x) => x.itemsPerS),
        etaS: xs.map((x) => x.etaS),
        ownedS: xs.map((x) => x.ownedS),
        borrowedS: xs.map((x) => x.borrowedS),
      };
    });
    const slo = this.cfg.hybrid.p99TargetMs;
    return {
      windowS,
      sampleS: HISTORY_SAMPLE_S,
      now,
      sloP99Ms: slo > 0 ? slo : null,
      devices: devices.filter((d) => d.t.length > 0).sort((a, b) => a.id.localeCompare(b.id)),
      revocations: this.revocations.toArray().filter((r) => r.t >= from),
      models: models.filter((m) => m.t.length > 0).sort((a, b) => a.name.localeCompare(b.name)),
      batches: batches.filter((b) => b.t.length > 0),
      sampleError: this.sampleError,
    };
  }
}

function series<M, S>(map: Map<string, Series<M, S>>, key: string, meta: M): Series<M, S> {
  let s = map.get(key);
  if (!s) {
    s = { meta, ring: new Ring<S>(CAPACITY) };
    map.set(key, s);
  }
  return s;
}

/** Requests answered so far per model, every outcome (the process-lifetime counter). */
async function requestsByModel(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const m = register.getSingleMetric(`${METRIC_PREFIX}inference_requests_total`);
  if (!m) return out;
  for (const v of (await m.get()).values) {
    const model = String(v.labels.model ?? '');
    out.set(model, (out.get(model) ?? 0) + v.value);
  }
  return out;
}
