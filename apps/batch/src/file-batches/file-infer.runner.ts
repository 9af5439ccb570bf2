import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { UnitLineAnswer, UnitLinesTask, UnitRunner } from '@tandem/inference';
import { BatchCapacity, type UnitUsage } from '@tandem/scheduler';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { UnitPool, type UnitRequest } from '../worker/unit-pool';
import type { ChunkLines } from './file-scan';
import type { InferUrl, LineModel } from './request-lines';
import { unitCallRanges } from './unit-calls';

export interface RunContext {
  signal: AbortSignal;
  priority: number;
  mayBorrow: boolean;
  /** The batch's deadline (epoch ms): earlier deadlines take units first. */
  deadline?: number;
  /** Near its deadline: owned units first. */
  preferOwned?: boolean;
  /** Where unit time is charged. */
  usage?: UnitUsage;
  /** Awaited between pieces of the chunk's payload read (BatchCapacity.whenRunnable). */
  between?: () => Promise<void>;
}

/**
 * Rows per model batch on a CPU unit (one intra-op thread): ppocr_cls costs least CPU per image
 * at 8–16 rows there (0.89–0.95 ms; 32 rows 0.94–0.97, 64 rows 1.28–1.32: activations outgrow
 * the caches), while a call still carries BATCH_INFER_BATCH lines. GPU units take the full batch.
 */
const CPU_MODEL_ROWS = 16;

interface Loaded {
  model: LineModel;
  /** Idle CPU unit processes that already opened this model. */
  idle: UnitRunner[];
}

/**
 * Runs a file batch's lines on batch device units (the `infer` task's machinery: BatchCapacity
 * units, SCHED_IDLE unit processes that are stopped on revocation). The raw lines go to the
 * unit, which decodes them and merges requests with the same trailing shapes and outputs into
 * model batches like the gateway's dynamic batcher does (batch-unit/unit-lines.ts): the JSON
 * work spreads over the units' cores instead of queueing on this thread.
 */
@Injectable()
export class FileInferRunner implements OnModuleDestroy {
  private readonly logger = new Logger('FileInfer');
  private readonly models = new Map<string, Promise<Loaded>>();
  private readonly units: UnitPool;

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    @Inject(BatchCapacity) capacity: BatchCapacity,
  ) {
    this.units = new UnitPool(cfg, capacity, this.logger);
  }

  /** Throws the repository's NotFound (online's 404 message) for an unknown model or version. */
  resolveModel(url: InferUrl): void {
    this.units.repository().resolve(url.model, url.version);
  }

  /** The model's signature as a unit opens it (the first unit process is kept for runs). */
  async model(url: InferUrl): Promise<LineModel> {
    return (await this.load(url)).model;
  }

  /**
   * Answers a chunk's lines on batch units, about `inferBatch` lines per unit call
   * (unitCallRanges): the unit parses, checks, merges and runs them and encodes the responses,
   * so this thread only copies bytes. Answers come back in line order.
   */
  async runLines(url: InferUrl, endpoint: string, chunk: ChunkLines, duplicates: ReadonlySet<number>, ctx: RunContext): Promise<UnitLineAnswer[]> {
    const loaded = await this.load(url);
    const groups = unitCallRanges(chunk.lines.length, this.cfg.jobs.inferBatch);
    const answers: UnitLineAnswer[][] = new Array<UnitLineAnswer[]>(groups.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < groups.length) {
        const g = next++;
        if (ctx.signal.aborted) throw new Error('aborted');
        const [from, to] = groups[g]!;
        const task = this.task(url, endpoint, chunk, from, to, duplicates);
        answers[g] = await this.units.withUnit(url.model, loaded.idle, this.request(ctx), (unit) => unit.runLines(task));
      }
    };
    const lanes = Math.max(1, Math.min(groups.length, this.cfg.jobs.inferThreads + 1));
    await Promise.all(Array.from({ length: lanes }, lane));
    return answers.flat();
  }

  /** Lines [from, to) of the chunk as one unit call: a view of their bytes (UnitRunner.runLines copies or moves them as its unit needs). */
  private task(url: InferUrl, endpoint: string, chunk: ChunkLines, from: number, to: number, duplicates: ReadonlySet<number>): UnitLinesTask {
    const base = chunk.starts[from]!;
    const data = chunk.bytes.subarray(base, chunk.ends[to - 1]!);
    const lines = chunk.lines.slice(from, to);
    return {
      endpoint,
      model: url.model,
      ...(url.version !== undefined ? { version: url.version } : {}),
      data,
      lines,
      // A line runs from the previous one's end: the newline and blank lines between are trimmed in the unit.
      ends: chunk.ends.slice(from, to).map((e) => e - base),
      duplicates: lines.filter((l) => duplicates.has(l)),
      maxRows: this.cfg.jobs.deviceKind === 'cpu' ? Math.min(CPU_MODEL_ROWS, this.cfg.jobs.inferBatch) : this.cfg.jobs.inferBatch,
    };
  }

  private request(ctx: RunContext): UnitRequest {
    return { mayBorrow: ctx.mayBorrow, priority: ctx.priority, signal: ctx.signal, deadline: ctx.deadline, preferOwned: ctx.preferOwned, usage: ctx.usage };
  }

  private load(url: InferUrl): Promise<Loaded> {
    const key = `${url.model}@${url.version ?? ''}`;
    let p = this.models.get(key);
    if (!p) {
      p = this.open(url);
      this.models.set(key, p);
      p.catch(() => this.models.delete(key));
    }
    return p;
  }

  private async open(url: InferUrl): Promise<Loaded> {
    this.resolveModel(url);
    // Opening runs a unit process off any unit (like the infer task's first open): signature only, then kept idle.
    const unit = await this.units.startProcess();
    try {
      const o = await unit.open(url.model, url.version);
      return { model: { name: url.model, version: o.version, maxBatchSize: o.maxBatchSize }, idle: [unit] };
    } catch (e) {
      await this.units.discard(unit);
      throw new Error(`model "${url.model}" cannot be loaded: ${(e as Error).message}`);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.units.close();
    this.models.clear();
  }
}
