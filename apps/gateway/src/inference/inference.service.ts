import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { DomainException } from '@tandem/shared';
import {
  configureGpuProcess,
  InferenceEngine,
  LocalCapacityProvider,
  ModelRepository,
  type AdmissionHold,
  type GpuProcessSettings,
  type InferRequest,
  type InferResult,
  type KeepWarmOptions,
  type ModelMetadata,
  type RepositoryIndexEntry,
} from '@tandem/inference';
import { InferenceMetrics } from './inference.metrics';
import { LatencyWindow } from './latency-window';
import { LedgerCapacityProvider } from './ledger-capacity.provider';
import type { AutoscalingConfig, ServingVersion, VersionStatus } from './model-views';
import { SchedulerCapacityProvider } from '@tandem/scheduler';

export const INFERENCE_OPTIONS = Symbol('INFERENCE_OPTIONS');

export interface InferenceOptions {
  modelRepository: string;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  cpuThreads: number | undefined;
  /** Simulated CUDA, CUDA_VISIBLE_DEVICES (set for the whole process before any session opens). */
  gpu?: GpuProcessSettings;
  /** Idle CPU replicas of models in use kept warm (INFERENCE_KEEP_WARM_MS); absent = off. */
  keepWarm?: KeepWarmOptions;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/**
 * Transport-independent inference service: REST (and later gRPC) decode into domain
 * requests, call this, and encode what it returns. Owns the engine (private: the autoscaler,
 * co-location, model control and the panel use the purpose-named methods below) and its metrics.
 */
@Injectable()
export class InferenceService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('InferenceService');
  /** Node models' ctx.log and their replicas' restarts (fields carry model and version). */
  private readonly modelLogger = new Logger('NodeModel');
  private readonly engine: InferenceEngine;
  readonly metrics = new InferenceMetrics();
  private readonly ongoingByModel = new Map<string, number>();
  private readonly startedByModel = new Map<string, number>();
  /** Models that may have Prometheus series (a subset of the repository's names). */
  private readonly withSeries = new Set<string>();
  /** Recent end-to-end latencies per model (the co-location SLO check reads them). */
  readonly latencies = new LatencyWindow();
  private readonly afterIdle: (() => void)[] = [];

  constructor(@Inject(INFERENCE_OPTIONS) opts: InferenceOptions, @Optional() @Inject(SchedulerCapacityProvider) ledger?: SchedulerCapacityProvider) {
    configureGpuProcess(opts.gpu ?? {});
    const local = new LocalCapacityProvider({ cpuThreads: opts.cpuThreads });
    this.engine = new InferenceEngine({
      repository: new ModelRepository(opts.modelRepository),
      capacity: ledger ? new LedgerCapacityProvider(ledger, local) : local,
      observer: this.metrics,
      defaultTimeoutMs: opts.defaultTimeoutMs,
      maxTimeoutMs: opts.maxTimeoutMs,
      ...(opts.keepWarm ? { keepWarm: opts.keepWarm } : {}),
      node: {
        // A node model's ctx.infer is a request like any other: counted, timed, autoscaled on.
        infer: (req) => this.infer(req),
        log: (level, msg, fields) => {
          if (level === 'info') this.modelLogger.log(fields, msg);
          else this.modelLogger[level](fields, msg);
        },
      },
    });
  }

  async onModuleInit(): Promise<void> {
    await this.engine.loadAll();
    for (const s of this.engine.states()) {
      if (s.state === 'failed') this.logger.error(`model ${s.model}/${s.version} failed to load: ${s.error}`);
      else this.logger.log(`model ${s.model}/${s.version} ready`);
    }
    this.refreshReplicaGauge();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.engine.close();
  }

  serverMetadata(): ServerMetadata {
    return { name: 'tandem', version: '0.1.0', extensions: ['binary_tensor_data'] };
  }

  modelMetadata(model: string, version?: string): ModelMetadata {
    return this.engine.metadata(model, version);
  }

  /** True/false for a known model version; throws 404 for an unknown one. */
  modelReady(model: string, version?: string): boolean {
    return this.engine.isReady(model, version);
  }

  /** Ready or not, with the load error of a version that failed; throws 404 for an unknown one. */
  modelReadiness(model: string, version?: string): { ready: boolean; reason?: string } {
    return this.engine.readiness(model, version);
  }

  /**
   * Admission before the body is read: undefined to go ahead (synchronously in the common case),
   * else the 503 the request gets, counted as a failure. `hold` gets the function that gives the
   * request's place back once its body is read or abandoned (AdmissionGate).
   */
  admit(model: string, version?: string, hold?: AdmissionHold): DomainException | undefined | Promise<DomainException | undefined> {
    // Traffic after idle is known here, before the body is read (REST's onRequest, after auth):
    // the co-location hint goes out now rather than once the request is decoded.
    if (!this.ongoingByModel.get(model) && this.engine.repository.has(model, version)) for (const fn of this.afterIdle) fn();
    const r = this.engine.admit(model, version, hold);
    if (r === undefined) return undefined;
    if (r instanceof Promise) return r.then((e) => this.countRefusal(model, e));
    return this.countRefusal(model, r);
  }

  private countRefusal(model: string, e: DomainException | undefined): DomainException | undefined {
    if (e) {
      this.withSeries.add(model);
      this.metrics.failed(model, e);
    }
    return e;
  }

  /** Called when a request arrives for a model with none in flight (at admission, and again as it starts): co-location hints and claims at once, not at its next tick. */
  onRequestAfterIdle(fn: () => void): void {
    this.afterIdle.push(fn);
  }

  async infer(req: InferRequest): Promise<InferResult> {
    // Resolve first: an unknown model or version is a 404 before any per-model state (maps,
    // latency windows, Prometheus series) exists for it, so random names cost nothing.
    this.engine.repository.resolve(req.model, req.version);
    const before = this.ongoingByModel.get(req.model) ?? 0;
    this.ongoingByModel.set(req.model, before + 1);
    if (before === 0) for (const fn of this.afterIdle) fn();
    this.startedByModel.set(req.model, (this.startedByModel.get(req.model) ?? 0) + 1);
    this.withSeries.add(req.model);
    this.metrics.ongoing(req.model, 1);
    const t0 = performance.now();
    try {
      const r = await this.engine.infer(req);
      this.metrics.succeeded(req.model);
      return r;
    } catch (e) {
      this.metrics.failed(req.model, e);
      throw e;
    } finally {
      this.latencies.record(req.model, performance.now() - t0);
      this.ongoingByModel.set(req.model, this.ongoingByModel.get(req.model)! - 1);
      this.metrics.ongoing(req.model, -1);
    }
  }

  /** Requests of a model queued or running right now (the autoscaler's signal). */
  ongoing(model: string): number {
    return this.ongoingByModel.get(model) ?? 0;
  }

  /** Requests of a model started since boot (co-location reads it to see activity between samples). */
  startedCount(model: string): number {
    return this.startedByModel.get(model) ?? 0;
  }

  /** Counts a request the transport rejected before it reached the service (bad encoding); only for models in the repository. */
  recordRejected(model: string, e: unknown): void {
    if (!this.inRepository(model)) return;
    this.withSeries.add(model);
    this.metrics.failed(model, e);
  }

  /** How many models have per-model state in this service (bounded by the repository). */
  trackedModels(): number {
    return new Set([...this.ongoingByModel.keys(), ...this.startedByModel.keys(), ...this.latencies.models()]).size;
  }

  private inRepository(model: string): boolean {
    return this.engine.repository.find(model) !== undefined;
  }

  /** Names of model versions not ready, with why (for the readiness check). */
  notReady(): string[] {
    return this.versions()
      .filter((v) => v.state !== 'ready')
      .map((v) => `${v.model}/${v.version} ${v.state}${v.error ? `: ${v.error}` : ''}`);
  }

  /** Every ready version with its replicas, queue and scaling settings. */
  serving(): ServingVersion[] {
    const out: ServingVersion[] = [];
    for (const s of this.engine.states()) {
      if (s.state !== 'ready') continue;
      const inst = this.engine.instance(s.model, s.version);
      const device = inst.config.device;
      out.push({
        model: s.model,
        version: s.version,
        device: device.kind,
        threadsPerReplica: device.kind === 'cpu' ? device.threads_per_replica : 0,
        autoscaling: inst.config.autoscaling,
        replicas: inst.replicas,
        queueDepth: inst.batcher.queueDepth,
      });
    }
    return out;
  }

  /** Every version on disk, loaded or not, with its state (the panel's model table, readiness). */
  versions(): VersionStatus[] {
    const known = new Map(this.engine.states().map((s) => [`${s.model}/${s.version}`, s]));
    const out: VersionStatus[] = [];
    for (const m of this.engine.repository.list()) {
      for (const v of m.versions) {
        const s = known.get(`${m.name}/${v.version}`);
        const inst = s?.state === 'ready' ? this.engine.instance(m.name, v.version) : undefined;
        out.push({
          model: m.name,
          version: v.version,
          state: s?.state ?? 'not loaded',
          ...(s?.error ? { error: s.error } : {}),
          replicas: inst?.replicas ?? 0,
          queueDepth: inst?.batcher.queueDepth ?? 0,
        });
      }
    }
    return out;
  }

  /** Versions of a model this process holds (loading, ready or failed). */
  loadedVersions(model: string): string[] {
    return this.engine
      .states()
      .filter((s) => s.model === model)
      .map((s) => s.version);
  }

  /** Replicas of a loaded version (latest by default); 404 unknown, 503 not loaded. */
  replicas(model: string, version?: string): number {
    return this.engine.instance(model, version).replicas;
  }

  /** Rescales a loaded version (the autoscaler's actuator); replicas come from the capacity provider. */
  scaleTo(model: string, version: string, replicas: number): Promise<void> {
    return this.engine.instance(model, version).scaleTo(replicas);
  }

  /** The autoscaling block of a model's config on disk; throws 404 for an unknown model. */
  configuredAutoscaling(model: string): AutoscalingConfig | undefined {
    return this.engine.repository.get(model).config.autoscaling;
  }

  /** Triton's repository index: every version on disk with its state. */
  repositoryIndex(): RepositoryIndexEntry[] {
    return this.engine.index();
  }

  /** Re-reads a model from disk and hot-swaps its versions (model control's `load`). */
  reloadModel(model: string): Promise<void> {
    return this.engine.reload(model);
  }

  /** Drains and frees every version of a model (model control's `unload`). */
  unloadModel(model: string): Promise<void> {
    return this.engine.unload(model);
  }

  /**
   * Sets each loaded version's replica gauge and drops every series of a model no longer loaded
   * (unloaded), once its last request has been answered.
   */
  refreshReplicaGauge(): void {
    const loaded = new Set<string>();
    for (const s of this.engine.states()) {
      loaded.add(s.model);
      const n = s.state === 'ready' ? this.engine.instance(s.model, s.version).replicas : 0;
      this.metrics.replicas(s.model, s.version, n);
    }
    for (const model of this.withSeries) {
      if (loaded.has(model) || this.ongoing(model) > 0) continue;
      this.withSeries.delete(model);
      this.metrics.forget(model).catch((e: unknown) => this.logger.warn(`dropping the series of ${model} failed: ${(e as Error).message}`));
    }
    for (const model of loaded) this.withSeries.add(model);
  }
}
