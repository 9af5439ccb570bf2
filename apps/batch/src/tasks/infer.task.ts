import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { UnitItemInput, UnitOpened, UnitRunner } from '@tandem/inference';
import type { Tensor } from '@tandem/sdk';
import type { ChunkLines } from '../file-batches/file-scan';
import { BatchCapacity } from '@tandem/scheduler';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import type { BatchTask, TaskContext } from './batch-task';
import { decodeInferItems, describeInferItem, ITEM_DATATYPES } from './infer-items';
import { itemOutputs } from './infer-outputs';
import { UnitPool } from '../worker/unit-pool';

export const INFER_TASK = Symbol('INFER_TASK');

/** The `infer` task plus the model check submission needs before anything is enqueued. */
export interface InferTaskProvider extends BatchTask {
  /** Why `model` cannot be used (unknown, unsupported), or null when it can. */
  checkModel(model: string | null): Promise<string | null>;
}

interface LoadedModel {
  /** Idle CPU units (processes) that already ran this model, with every model it calls open. */
  idle: UnitRunner[];
  /** The model's inputs as items carry them. */
  inputs: UnitItemInput[];
  maxBatch: number;
  /** false: the model has no batch dimension (max_batch_size 0) and runs one item at a time. */
  batched: boolean;
}

/**
 * Runs any model of the repository the gateway serves, ONNX or node, on device units. Items
 * are one sample of the model's inputs each (infer-items.ts); each item's output is its row of
 * the model's output, or an object of rows by name when the model has several outputs. A node
 * model's `ctx.infer` calls run inside the same unit, on sessions it opens for those models:
 * a batch has no gateway, so the whole pipeline runs on the unit's share.
 */
@Injectable()
export class InferTask implements InferTaskProvider, OnModuleDestroy {
  readonly name = 'infer';
  readonly needsModel = true;
  private readonly logger = new Logger('InferTask');
  private readonly models = new Map<string, Promise<LoadedModel>>();
  private readonly loadedSync = new Map<string, LoadedModel>();
  /** Unit processes decode the batch's raw items themselves (on the unit's share). */
  private readonly units: UnitPool;

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    @Inject(BatchCapacity) capacity: BatchCapacity,
  ) {
    this.units = new UnitPool(cfg, capacity, this.logger, { itemDecoder: decodeInferItems });
  }

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
    return describeInferItem(item, m.inputs);
  }

  /**
   * Model batches run on device units from BatchCapacity (ledger allocations in co-location mode):
   * a lane takes a unit, runs a sub-batch on it and gives the unit back. On a CPU unit the run is
   * a process of its own (SCHED_IDLE where the kernel allows) that decodes the items and runs the
   * model and what it calls: when the unit is revoked the process is stopped on the spot and the
   * share released, and it continues when the batch holds a unit again. A GPU unit runs in its
   * own process pinned to the unit's device (a MIG instance too) and yields between runs.
   */
  async run(items: readonly unknown[], ctx: TaskContext): Promise<unknown[]> {
    const model = this.modelOf(ctx);
    const m = await this.load(model);
    return this.inParts(model, items.length, m, ctx, (unit, from, to) => {
      const part = items.slice(from, to);
      return unit.runItems(model, part, m.inputs);
    });
  }

  /** An NDJSON chunk's raw lines: each unit parses and decodes its part itself (this thread only cuts bytes). */
  async runLines(chunk: ChunkLines, ctx: TaskContext): Promise<unknown[]> {
    const model = this.modelOf(ctx);
    const m = await this.load(model);
    return this.inParts(model, chunk.lines.length, m, ctx, (unit, from, to) =>
      unit.runNdjsonItems(model, chunk.bytes.subarray(chunk.starts[from]!, chunk.ends[to - 1]!), to - from, m.inputs),
    );
  }

  private modelOf(ctx: TaskContext): string {
    if (!ctx.model) throw new Error('infer chunk without a model');
    return ctx.model;
  }

  /**
   * `count` items as model batches of up to maxBatch, each on a device unit taken from the pool:
   * one more lane than units, so a unit given back is taken at once by a run that is ready.
   */
  private async inParts(
    model: string,
    count: number,
    m: LoadedModel,
    ctx: TaskContext,
    runPart: (unit: UnitRunner, from: number, to: number) => Promise<Tensor[]>,
  ): Promise<unknown[]> {
    const parts = Math.ceil(count / m.maxBatch);
    const outputs: unknown[][] = new Array<unknown[]>(parts);
    let next = 0;
    const lanes = Math.min(parts, this.cfg.jobs.inferThreads + 1);
    const req = { mayBorrow: ctx.mayBorrow, priority: ctx.priority, signal: ctx.signal, usage: ctx.usage };
    const lane = async (): Promise<void> => {
      while (next < parts) {
        const i = next++;
        if (ctx.signal.aborted) throw new Error('aborted');
        const from = i * m.maxBatch;
        const to = Math.min(count, from + m.maxBatch);
        outputs[i] = await this.units.withUnit(model, m.idle, req, async (unit) => itemOutputs(await runPart(unit, from, to), to - from, m.batched));
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
    return outputs.flat();
  }

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
    if (
      !this.units
        .repository()
        .list()
        .some((m) => m.name === model)
    )
      throw new Error(`unknown model "${model}"`);
    // The first unit process opens the model (a node model: initialize runs), then serves runs like any other.
    const unit = await this.units.startProcess();
    const fail = async (why: string): Promise<never> => {
      await this.units.discard(unit);
      throw new Error(`model "${model}" ${why}`);
    };
    let opened: UnitOpened;
    try {
      opened = await unit.open(model);
    } catch (e) {
      return fail(`cannot be loaded: ${(e as Error).message}`);
    }
    const batched = opened.maxBatchSize > 0;
    const inputs: UnitItemInput[] = [];
    for (const t of opened.signature.inputs) {
      if (!ITEM_DATATYPES.has(t.datatype)) return fail(`input '${t.name}' is ${t.datatype}; batch items cannot carry it`);
      const itemShape = batched ? t.shape.slice(1) : t.shape;
      if (itemShape.some((d) => d < 1)) return fail(`input '${t.name}' shape [${t.shape}] has variable dimensions; fix them in config.json`);
      inputs.push({ name: t.name, datatype: t.datatype, itemShape, perItem: itemShape.reduce((a, b) => a * b, 1) });
    }
    const maxBatch = batched ? Math.min(opened.maxBatchSize, this.cfg.jobs.inferBatch) : 1;
    this.logger.log(`loaded ${model} v${opened.version} for batch infer (up to ${this.cfg.jobs.inferThreads} units, batches of ${maxBatch})`);
    return { idle: [unit], inputs, maxBatch, batched };
  }

  async onModuleDestroy(): Promise<void> {
    await this.units.close();
    this.models.clear();
  }
}
