import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { isInputError } from '@tandem/sdk';
// The gateway's own batch merge: one implementation.
import { concatInputs, scatterOutputs, shapeKey, type InferTensor, type UnitRunner } from '@tandem/inference';
import { BatchCapacity, type UnitUsage } from '@tandem/scheduler';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { UnitPool } from '../worker/unit-pool';
import type { InferUrl, LineModel, LineRequest } from './request-lines';

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
}

/** Per request line: its output tensors, or the 400 a node model's InputError maps to online. */
export type LineResult = { ok: true; outputs: InferTensor[] } | { ok: false; status: number; message: string };

interface Loaded {
  model: LineModel;
  /** Idle CPU unit processes that already opened this model. */
  idle: UnitRunner[];
}

/**
 * Runs decoded OIP requests of a file batch on batch device units (the `infer` task's machinery:
 * BatchCapacity units, SCHED_IDLE unit processes that are stopped on revocation). Requests with
 * the same trailing shapes and outputs are concatenated into model batches like the gateway's
 * dynamic batcher does, and the outputs scattered back per request.
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

  async run(url: InferUrl, requests: readonly LineRequest[], ctx: RunContext): Promise<Map<number, LineResult>> {
    const loaded = await this.load(url);
    const results = new Map<number, LineResult>();
    const groups = this.plan(loaded.model, requests);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < groups.length) {
        const group = groups[next++]!;
        if (ctx.signal.aborted) throw new Error('aborted');
        try {
          const outs = await this.onUnit(loaded, url, group, ctx);
          group.forEach((r, i) => results.set(r.line, { ok: true, outputs: outs[i]! }));
        } catch (e) {
          if (!isInputError(e)) throw e; // a unit that died, a revocation kill: the chunk is retried
          // The model blamed the input: find which request, one at a time (online each is its own request).
          for (const r of group) {
            try {
              results.set(r.line, { ok: true, outputs: (await this.onUnit(loaded, url, [r], ctx))[0]! });
            } catch (e1) {
              if (!isInputError(e1)) throw e1;
              results.set(r.line, { ok: false, status: 400, message: e1.message });
            }
          }
        }
      }
    };
    const lanes = Math.max(1, Math.min(groups.length, this.cfg.jobs.inferThreads + 1));
    await Promise.all(Array.from({ length: lanes }, lane));
    return results;
  }

  /** Model batches: same shape key and outputs, up to the batch size in rows; unbatched models run one request each. */
  private plan(model: LineModel, requests: readonly LineRequest[]): LineRequest[][] {
    if (model.maxBatchSize === 0) return requests.map((r) => [r]);
    const maxRows = Math.max(1, Math.min(model.maxBatchSize, this.cfg.jobs.inferBatch));
    const open = new Map<string, { reqs: LineRequest[]; rows: number }>();
    const out: LineRequest[][] = [];
    for (const r of requests) {
      const key = `${shapeKey(r.decoded.request.inputs)}|${(r.decoded.request.outputs ?? []).join(',')}`;
      let g = open.get(key);
      if (g && g.rows + r.rows > maxRows) {
        out.push(g.reqs);
        g = undefined;
      }
      if (!g) open.set(key, (g = { reqs: [], rows: 0 }));
      g.reqs.push(r);
      g.rows += r.rows;
    }
    for (const g of open.values()) out.push(g.reqs);
    return out;
  }

  /** One model batch on one unit. */
  private onUnit(loaded: Loaded, url: InferUrl, group: readonly LineRequest[], ctx: RunContext): Promise<InferTensor[][]> {
    const req = { mayBorrow: ctx.mayBorrow, priority: ctx.priority, signal: ctx.signal, deadline: ctx.deadline, preferOwned: ctx.preferOwned, usage: ctx.usage };
    return this.units.withUnit(url.model, loaded.idle, req, async (unit) => {
      // Every request of a group names the same outputs (they are part of its key).
      const outputs = group[0]!.decoded.request.outputs;
      const inputs = concatInputs(group.map((r) => r.decoded.request.inputs));
      const out = await unit.run(url.model, inputs, { ...(url.version !== undefined ? { version: url.version } : {}), ...(outputs ? { outputs } : {}) });
      return loaded.model.maxBatchSize === 0 ? [out] : scatterOutputs(out, group.map((r) => r.rows));
    });
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
      return { model: { name: url.model, version: o.version, signature: o.signature, maxBatchSize: o.maxBatchSize }, idle: [unit] };
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
