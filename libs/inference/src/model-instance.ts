import type { CapacityProvider } from './capacity-provider';
import { DynamicBatcher } from './dynamic-batcher';
import type { InferenceObserver } from './inference-observer';
import type { ModelConfig } from './model-config';
import { ModelRunner } from './model-runner';
import { ReplicaPool } from './replica-pool';
import { warmUp, warmupBatchSizes, warmupInputs } from './replica-warmup';
import type { SessionFactory } from './session-factory';
import { WorkerModelRunner } from './worker-model-runner';
import type { ModelSignature } from './tensor';

/** One loaded model version: its replicas, its batcher, and the signature they share. */
export class ModelInstance {
  readonly pool = new ReplicaPool();
  readonly batcher: DynamicBatcher;

  private constructor(
    readonly name: string,
    readonly version: string,
    readonly path: string,
    readonly config: ModelConfig,
    readonly signature: ModelSignature,
    private readonly capacity: CapacityProvider,
    private readonly factory: SessionFactory | undefined,
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
      },
      observer,
    );
  }

  /** Acquires `config.replicas` leases and opens one session per lease. */
  static async load(
    name: string,
    version: string,
    path: string,
    config: ModelConfig,
    capacity: CapacityProvider,
    observer: InferenceObserver,
    factory?: SessionFactory,
  ): Promise<ModelInstance> {
    // A first session reads the signature even when the config asks for 0 replicas.
    const probe = await ModelRunner.load(path, config, { kind: 'cpu', intraOpThreads: 1 }, factory);
    await probe.release();
    // A warm-up the signature cannot feed fails the load now, not at the first scale-up.
    if (warmupBatchSizes(config).length > 0) warmupInputs(probe.signature, config, 1);
    const inst = new ModelInstance(name, version, path, config, probe.signature, capacity, factory, observer);
    await inst.scaleTo(config.replicas);
    return inst;
  }

  get replicas(): number {
    return this.pool.size;
  }

  /** Adds or drains replicas until `n` serve (autoscaling / admin hooks call this). */
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
    const leases = await this.capacity.acquire({
      model: this.name,
      version: this.version,
      count: n - this.pool.size,
      device: { kind: this.config.device.kind, threadsPerReplica: this.config.device.threads_per_replica },
    });
    for (const lease of leases) {
      try {
        // Replicas run in worker threads (onnxruntime blocks its calling thread); a custom
        // session factory (tests, other runtimes) keeps them in-process.
        const runner = this.factory
          ? await ModelRunner.load(this.path, this.config, lease.placement, this.factory)
          : await WorkerModelRunner.load(this.path, this.config, lease.placement);
        try {
          await warmUp(runner);
        } catch (e) {
          await runner.release();
          throw new Error(`${this.name} v${this.version}: ${(e as Error).message}`);
        }
        this.pool.add(runner, lease, this.config.device.max_inflight_per_replica);
      } catch (e) {
        this.capacity.release(lease);
        throw e;
      }
    }
  }

  async close(): Promise<void> {
    this.batcher.close();
    await this.scaleTo(0);
  }

  /** Answers everything already queued or running, then releases the replicas. */
  async drainAndClose(): Promise<void> {
    await this.batcher.drain();
    await this.scaleTo(0);
  }
}
