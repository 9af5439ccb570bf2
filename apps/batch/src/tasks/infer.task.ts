import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { ModelRepository, ProcessModelRunner, WorkerModelRunner, type InferenceRunner, type InferTensor, type ModelConfig, type ProcessControl, type UnitProcessOptions } from '@tandem/inference';
import { BatchCapacity, type Preemptible, type UnitSlot } from '@tandem/scheduler';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import type { BatchTask, TaskContext } from './batch-task';
import { decodeInferItem, describeInferItem } from './infer-items';

export const INFER_TASK = Symbol('INFER_TASK');

/**
 * What BatchCapacity suspends and resumes for one run: the unit process once the run has one.
 * A revocation that lands while the process is still being taken or started stops it on arrival.
 */
class UnitProcessHold implements Preemptible {
  private proc: ProcessControl | null = null;
  private stopped = false;
  private killed = false;

  /** The process (started or loading) this run will use: it follows the hold's state from now on. */
  attach<P extends ProcessControl>(p: P): P {
    this.proc = p;
    if (this.killed) p.kill();
    else if (this.stopped) p.suspend();
    return p;
  }

  detach(): void {
    this.proc = null;
  }

  suspend(): void {
    this.stopped = true;
    this.proc?.suspend();
  }

  resume(): void {
    this.stopped = false;
    this.proc?.resume();
  }

  kill(): void {
    this.killed = true;
    this.proc?.kill();
  }
}

/** The `infer` task plus the model check submission needs before anything is enqueued. */
export interface InferTaskProvider extends BatchTask {
  /** Why `model` cannot be used (unknown, unsupported), or null when it can. */
  checkModel(model: string | null): Promise<string | null>;
}

interface LoadedModel {
  /** Idle unit processes of this model (CPU units: one session on one thread each). */
  idle: ProcessModelRunner[];
  path: string;
  config: ModelConfig;
  inputName: string;
  /** Elements of one item (the input shape without its batch dimension). */
  perItem: number;
  itemShape: number[];
  maxBatch: number;
}

/**
 * Runs a model from the same repository the gateway serves, through @tandem/inference's public
 * API (loadModelRunner). Items are one model input each: a flat number array, or base64 of the
 * sample as raw FP32 (`{"f32": …}`) or 8-bit pixels normalized like PaddleOCR (`{"u8": …}`).
 * Outputs are each item's first output row as a number array.
 */
@Injectable()
export class InferTask implements InferTaskProvider, OnModuleDestroy {
  readonly name = 'infer';
  readonly needsModel = true;
  private readonly logger = new Logger('InferTask');
  private repo?: ModelRepository;
  private readonly models = new Map<string, Promise<LoadedModel>>();

  private readonly unitRunners = new Map<string, Promise<InferenceRunner>>();
  /** Every unit process, idle or running, so shutdown ends them all. */
  private readonly processes = new Set<ProcessModelRunner>();

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    @Inject(BatchCapacity) private readonly capacity: BatchCapacity,
  ) {}

  async checkModel(model: string | null): Promise<string | null> {
    if (!model) return 'task infer needs a "model"';
    try {
      await this.load(model);
      return null;
    } catch (e) {
      this.models.delete(model);
      return (e as Error).message;
    }
  }

  validateItem(item: unknown, model: string | null): string | null {
    const m = model ? this.loadedSync.get(model) : undefined;
    if (!m) return `model ${model} is not loaded`;
    return describeInferItem(item, m.perItem);
  }

  /**
   * Model batches run on device units from BatchCapacity (ledger allocations in co-location mode):
   * a lane decodes a sub-batch, takes a unit, runs it and gives the unit back. On a CPU unit the
   * run is a process of its own (SCHED_IDLE where the kernel allows): when the unit is revoked
   * the process is stopped on the spot and the share released, and it continues when the batch
   * holds a unit again. GPU units run on a worker-thread session and yield between runs.
   */
  async run(items: readonly unknown[], ctx: TaskContext): Promise<unknown[]> {
    if (!ctx.model) throw new Error('infer chunk without a model');
    const m = await this.load(ctx.model);
    const parts = Math.ceil(items.length / m.maxBatch);
    const outputs: unknown[][] = new Array<unknown[]>(parts);
    let next = 0;
    // One more lane than units, so a unit given back is taken at once by a run that is ready.
    const lanes = Math.min(parts, this.cfg.jobs.inferThreads + 1);
    const lane = async (): Promise<void> => {
      while (next < parts) {
        const i = next++;
        if (ctx.signal.aborted) throw new Error('aborted');
        const part = items.slice(i * m.maxBatch, (i + 1) * m.maxBatch);
        const cpu = this.cfg.jobs.deviceKind === 'cpu';
        const hold = new UnitProcessHold();
        const onAbort = (): void => hold.kill(); // a stopped run is abandoned, not left stopped
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        let slot: UnitSlot | null = null;
        let proc: ProcessModelRunner | null = null;
        try {
          slot = await this.capacity.acquire({ mayBorrow: ctx.mayBorrow, priority: ctx.priority, signal: ctx.signal, preempt: cpu ? hold : undefined });
          // The process is taken (or started) under the unit, so starting one uses the batch's share;
          // it decodes the raw items itself, so decoding runs on the unit too (and stops with it).
          let out: InferTensor | undefined;
          if (cpu) {
            proc = hold.attach(await this.takeProcess(m, hold));
            [out] = await proc.runItems(part, { name: m.inputName, itemShape: m.itemShape, perItem: m.perItem });
          } else {
            const data = new Float32Array(part.length * m.perItem);
            part.forEach((it, j) => decodeInferItem(it, m.perItem, data, j * m.perItem));
            const runner = await this.gpuRunnerFor(ctx.model!, m, slot);
            [out] = await runner.runUnchecked([{ name: m.inputName, datatype: 'FP32', shape: [part.length, ...m.itemShape], data }], undefined, { transfer: true });
          }
          const per = out!.shape.slice(1).reduce((a, b) => a * b, 1);
          const values = out!.data as Float32Array;
          const rows: unknown[] = [];
          for (let r = 0; r < out!.shape[0]!; r++) rows.push(Array.from(values.subarray(r * per, (r + 1) * per)));
          outputs[i] = rows;
        } finally {
          ctx.signal.removeEventListener('abort', onAbort);
          if (slot) this.capacity.release(slot);
          hold.detach();
          if (proc?.alive) m.idle.push(proc);
          else if (proc) this.processes.delete(proc);
        }
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
    return outputs.flat();
  }

  /** Unit processes: one thread, the configured CPU policy, and the batch's item decoder. */
  private unitOptions(extra: UnitProcessOptions = {}): UnitProcessOptions {
    return { threads: 1, policy: this.cfg.jobs.unitCpuPolicy, itemDecoder: decodeInferItem, ...extra };
  }

  /** An idle unit process of the model, or a new one (at most one per concurrent run). */
  private async takeProcess(m: LoadedModel, hold: UnitProcessHold): Promise<ProcessModelRunner> {
    for (let p = m.idle.pop(); p; p = m.idle.pop()) if (p.alive) return p;
    // A new process loads the model under the hold, so a revocation stops the load as well.
    const p = await ProcessModelRunner.load(m.path, m.config, this.unitOptions({ onSpawn: (c) => hold.attach(c) }));
    this.processes.add(p);
    return p;
  }

  /** A GPU unit's session: one per (unit, device), loaded on first use and kept. */
  private gpuRunnerFor(model: string, m: LoadedModel, slot: UnitSlot): Promise<InferenceRunner> {
    const p = slot.placement;
    if (p.kind !== 'cuda') throw new Error('a CPU unit runs in a unit process');
    const cacheKey = `${model}|cuda:${p.deviceId}#${slot.unit}`;
    let r = this.unitRunners.get(cacheKey);
    if (!r) {
      r = WorkerModelRunner.load(m.path, m.config, { kind: 'cuda', deviceId: p.deviceId });
      this.unitRunners.set(cacheKey, r);
      r.catch(() => this.unitRunners.delete(cacheKey));
    }
    return r;
  }

  private readonly loadedSync = new Map<string, LoadedModel>();

  private load(model: string): Promise<LoadedModel> {
    let p = this.models.get(model);
    if (!p) {
      p = this.open(model);
      this.models.set(model, p);
      p.then(
        (m) => this.loadedSync.set(model, m),
        () => this.models.delete(model),
      );
    }
    return p;
  }

  private async open(model: string): Promise<LoadedModel> {
    if (!this.repo) {
      try {
        this.repo = new ModelRepository(this.cfg.modelRepository);
      } catch (e) {
        throw new Error(`no model repository: ${(e as Error).message}`);
      }
    }
    if (!this.repo.list().some((m) => m.name === model)) throw new Error(`unknown model "${model}"`);
    const { model: entry, version } = this.repo.resolve(model);
    // The first unit process validates the model, then serves runs like any other.
    const runner = await ProcessModelRunner.load(version.path, entry.config, this.unitOptions());
    this.processes.add(runner);
    const sig = runner.signature;
    const input = sig.inputs[0];
    const fail = async (why: string): Promise<never> => {
      await runner.release();
      throw new Error(`model "${model}" ${why}`);
    };
    if (sig.inputs.length !== 1) return fail('has several inputs; batch infer supports single-input models');
    if (input.datatype !== 'FP32') return fail(`input is ${input.datatype}; batch infer supports FP32 inputs`);
    if (runner.config.max_batch_size < 1) return fail('has no batch dimension (max_batch_size 0)');
    const itemShape = input.shape.slice(1);
    if (itemShape.some((d) => d < 1)) return fail(`input shape [${input.shape}] has variable dimensions; fix them in config.json`);
    this.logger.log(`loaded ${model} for batch infer (up to ${this.cfg.jobs.inferThreads} units, batches of ${Math.min(runner.config.max_batch_size, this.cfg.jobs.inferBatch)})`);
    return {
      idle: [runner],
      path: version.path,
      config: entry.config,
      inputName: input.name,
      perItem: itemShape.reduce((a, b) => a * b, 1),
      itemShape,
      maxBatch: Math.min(runner.config.max_batch_size, this.cfg.jobs.inferBatch),
    };
  }

  async onModuleDestroy(): Promise<void> {
    for (const p of this.unitRunners.values()) await p.then((r) => r.release()).catch(() => undefined);
    this.unitRunners.clear();
    await Promise.all([...this.processes].map((r) => r.release().catch(() => undefined)));
    this.processes.clear();
    this.models.clear();
  }
}
