import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { ModelRepository, WorkerModelRunner, type InferenceRunner, type InferTensor } from '@tandem/inference';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import type { BatchTask, TaskContext } from './batch-task';
import { decodeInferItem, describeInferItem } from './infer-items';

export const INFER_TASK = Symbol('INFER_TASK');

/** The `infer` task plus the model check submission needs before anything is enqueued. */
export interface InferTaskProvider extends BatchTask {
  /** Why `model` cannot be used (unknown, unsupported), or null when it can. */
  checkModel(model: string | null): Promise<string | null>;
}

interface LoadedModel {
  runner: InferenceRunner;
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

  constructor(@Inject(BATCH_CONFIG) private readonly cfg: BatchConfig) {}

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

  async run(items: readonly unknown[], ctx: TaskContext): Promise<unknown[]> {
    if (!ctx.model) throw new Error('infer chunk without a model');
    const m = await this.load(ctx.model);
    const outputs: unknown[] = [];
    // The session runs in its own worker thread (it blocks whichever thread runs it), which
    // executes queued runs one at a time; so decode every sub-batch, queue them all, then
    // collect: decoding and Postgres I/O here overlap with compute there.
    const runs: Promise<InferTensor[]>[] = [];
    for (let start = 0; start < items.length; start += m.maxBatch) {
      if (ctx.signal.aborted) throw new Error('aborted');
      const part = items.slice(start, start + m.maxBatch);
      const data = new Float32Array(part.length * m.perItem);
      part.forEach((it, i) => decodeInferItem(it, m.perItem, data, i * m.perItem));
      runs.push(m.runner.runUnchecked([{ name: m.inputName, datatype: 'FP32', shape: [part.length, ...m.itemShape], data }], undefined, { transfer: true }));
    }
    for (const [out] of await Promise.all(runs)) {
      const per = out.shape.slice(1).reduce((a, b) => a * b, 1);
      const values = out.data as Float32Array;
      const n = out.shape[0];
      for (let i = 0; i < n; i++) outputs.push(Array.from(values.subarray(i * per, (i + 1) * per)));
    }
    return outputs;
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
    const runner = await WorkerModelRunner.load(version.path, entry.config, { kind: 'cpu', intraOpThreads: this.cfg.jobs.inferThreads });
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
    this.logger.log(`loaded ${model} for batch infer (${this.cfg.jobs.inferThreads} threads, batches of ${Math.min(runner.config.max_batch_size, this.cfg.jobs.inferBatch)})`);
    return {
      runner,
      inputName: input.name,
      perItem: itemShape.reduce((a, b) => a * b, 1),
      itemShape,
      maxBatch: Math.min(runner.config.max_batch_size, this.cfg.jobs.inferBatch),
    };
  }

  async onModuleDestroy(): Promise<void> {
    for (const p of this.models.values()) await p.then((m) => m.runner.release()).catch(() => undefined);
    this.models.clear();
  }
}
