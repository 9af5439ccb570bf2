import type { CapacityProvider } from './placement';
import { DynamicBatcher } from './dynamic-batcher';
import type { InferenceObserver } from './inference-observer';
import type { ModelConfig } from './model-config';
import { NO_NODE_HOOKS, nodeReplicaSource, type NodeModelHooks } from './node-backend/node-model.backend';
import { KEEP_WARM_OFF, KeepWarm, type KeepWarmOptions } from './keep-warm';
import { ReplicaPool } from './replica-pool';
import { warmupInputs } from './replica-warmup';
import { onnxReplicaSource, type ReplicaSource } from './replica-source';
import type { SessionFactory } from './session-factory';
import type { ModelSignature } from './tensor';

/** One loaded model version: its replicas, its batcher, and the signature they share. */
export class ModelInstance {
  readonly pool = new ReplicaPool();
  readonly batcher: DynamicBatcher;
  private measuredMiB: number | undefined;
  private keepWarm: KeepWarm | undefined;

  private constructor(
    readonly name: string,
    readonly version: string,
    readonly path: string,
    readonly config: ModelConfig,
    private readonly source: ReplicaSource,
    private readonly capacity: CapacityProvider,
    observer: InferenceObserver,
  ) {
    this.batcher = new DynamicBatcher(
      this.pool,
      {
        model: name,
        version,
        maxBatchSize: config.max_batch_size,
        maxQueueDelayUs: config.dynamic_batching.max_queue_delay_us,
        maxQueueSize: config.dynamic_batching.max_queue_size,
        maxQueueTimeMs: config.dynamic_batching.max_queue_time_ms,
        preferredBatchSize: Math.max(0, ...(config.dynamic_batching.preferred_batch_size ?? [])),
      },
      observer,
    );
  }

  /**
   * Acquires `config.replicas` leases and opens one replica per lease: an onnxruntime session
   * (`factory`: in-process sessions, for tests) or a node model's thread (`node`: where its
   * ctx.infer and ctx.log go).
   */
  static async load(
    name: string,
    version: string,
    path: string,
    config: ModelConfig,
    capacity: CapacityProvider,
    observer: InferenceObserver,
    factory?: SessionFactory,
    node: NodeModelHooks = NO_NODE_HOOKS,
    keepWarm: KeepWarmOptions = KEEP_WARM_OFF,
  ): Promise<ModelInstance> {
    const source =
      config.backend === 'node'
        ? await nodeReplicaSource({ name, version, path, config }, node, observer)
        : await onnxReplicaSource(name, version, path, config, factory);
    const inst = new ModelInstance(name, version, path, config, source, capacity, observer);
    try {
      await inst.scaleTo(config.replicas);
    } catch (e) {
      // A failed load is never closed by anyone else: give back the replicas it did open.
      await inst.close().catch(() => undefined);
      throw e;
    }
    inst.startKeepWarm(keepWarm);
    return inst;
  }

  /**
   * onnxruntime CPU replicas of a model whose inputs have fixed dimensions besides the batch
   * (a zero batch of 1 can be built) are kept warm while the model is in use (keep-warm.ts).
   * Node models are not: their execute may do anything; the models they call are kept warm.
   */
  private startKeepWarm(opts: KeepWarmOptions): void {
    if (opts.periodMs <= 0 || this.config.backend === 'node') return;
    try {
      warmupInputs(this.signature, this.config, 1);
    } catch {
      return;
    }
    const kw = new KeepWarm(
      this.pool,
      () => warmupInputs(this.signature, this.config, 1),
      opts,
      (r) => r.lease.placement.kind === 'cpu',
    );
    this.batcher.onDispatch = (r, now) => kw.used(r, now);
    kw.start();
    this.keepWarm = kw;
  }

  get signature(): ModelSignature {
    return this.source.signature;
  }

  /** OIP metadata `platform`: onnxruntime_onnx or node. */
  get platform(): string {
    return this.source.platform;
  }

  get replicas(): number {
    return this.pool.size;
  }

  /**
   * Device memory one replica holds: config `device.memory_mib`, else what the first GPU replica
   * measured after its warm-up (undefined until then, and for CPU models).
   */
  get deviceMemoryMiB(): number | undefined {
    return this.config.device.memory_mib ?? this.measuredMiB;
  }

  /** Where deviceMemoryMiB comes from. */
  get deviceMemorySource(): 'declared' | 'measured' | undefined {
    return this.config.device.memory_mib !== undefined ? 'declared' : this.measuredMiB !== undefined ? 'measured' : undefined;
  }

  /**
   * Adds or drains replicas until `n` serve (autoscaling / admin hooks call this). A GPU model
   * takes only GPU leases: granted none while it serves nothing, it fails; with
   * `device.fallback: "cpu"` it takes CPU shares whenever no GPU is granted. Any failure gives
   * back every lease this call took that did not become a replica.
   */
  async scaleTo(n: number): Promise<void> {
    while (this.pool.size > n) {
      const last = this.pool.list().at(-1)!;
      const r = await this.pool.remove(last.id);
      if (r) {
        await r.runner.release();
        this.capacity.release(r.lease);
      }
    }
    if (this.pool.size >= n) return;
    const { device } = this.config;
    const memoryMiB = this.deviceMemoryMiB;
    const missing = n - this.pool.size;
    // GPU memory not known yet: one replica first (measured at load), so the rest ask for its figure.
    const want = device.kind === 'gpu' && memoryMiB === undefined ? 1 : missing;
    let leases = await this.capacity.acquire({
      model: this.name,
      version: this.version,
      count: want,
      device: { kind: device.kind, threadsPerReplica: device.threads_per_replica, ...(device.kind === 'gpu' && memoryMiB !== undefined ? { memoryMiB } : {}) },
    });
    if (device.kind === 'gpu' && leases.length === 0) {
      if (device.fallback === 'cpu') {
        leases = await this.capacity.acquire({
          model: this.name,
          version: this.version,
          count: missing,
          device: { kind: 'cpu', threadsPerReplica: device.threads_per_replica },
        });
      } else if (this.pool.size === 0) {
        throw new Error(
          `${this.name} v${this.version} needs a GPU (device.kind "gpu") and no GPU allocation is available on this node` +
            `${memoryMiB !== undefined ? ` with ${memoryMiB} MiB free` : ''}; set device.fallback "cpu" in its config.json to serve it on the CPU instead`,
        );
      }
    }
    let i = 0;
    try {
      for (; i < leases.length; i++) {
        const lease = leases[i]!;
        // Warmed up before it joins the pool (replica-warmup.ts).
        const runner = await this.source.open(lease.placement);
        if (lease.placement.kind === 'cuda' && this.measuredMiB === undefined && runner.deviceMemoryMiB !== undefined)
          this.measuredMiB = runner.deviceMemoryMiB;
        this.pool.add(runner, lease, device.max_inflight_per_replica);
      }
    } catch (e) {
      for (; i < leases.length; i++) this.capacity.release(leases[i]!);
      throw e;
    }
    if (want < missing && leases.length > 0 && leases[0]!.placement.kind === 'cuda') await this.scaleTo(n);
  }

  async close(): Promise<void> {
    this.keepWarm?.stop();
    this.batcher.close();
    await this.scaleTo(0);
  }

  /** Answers everything already queued or running, then releases the replicas. */
  async drainAndClose(): Promise<void> {
    this.keepWarm?.stop();
    await this.batcher.drain();
    await this.scaleTo(0);
  }
}
