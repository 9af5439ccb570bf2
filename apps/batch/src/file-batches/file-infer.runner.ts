import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { isInputError } from '@tandem/sdk';
import { ModelRepository, repositoryUnitResolver, UnitRunner, type InferTensor, type LogLevel, type UnitModelResolver, type UnitRunnerOptions } from '@tandem/inference';
import { BatchCapacity, type UnitSlot, type UnitUsage } from '@tandem/scheduler';
// The gateway's own batch merge (not re-exported by the library's index): one implementation.
import { concatInputs, scatterOutputs, shapeKey } from '../../../../libs/inference/src/batch-merge';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { UnitProcessHold } from '../worker/unit-process-hold';
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
  private repo?: ModelRepository;
  private resolver?: UnitModelResolver;
  private readonly models = new Map<string, Promise<Loaded>>();
  private readonly gpuUnits = new Map<string, Promise<UnitRunner>>();
  private readonly processes = new Set<UnitRunner>();

  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    @Inject(BatchCapacity) private readonly capacity: BatchCapacity,
  ) {}

  /** Throws the repository's NotFound (online's 404 message) for an unknown model or version. */
  resolveModel(url: InferUrl): void {
    this.repository().resolve(url.model, url.version);
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

  /** One model batch on one unit: take a unit (and its process), run, give both back. */
  private async onUnit(loaded: Loaded, url: InferUrl, group: readonly LineRequest[], ctx: RunContext): Promise<InferTensor[][]> {
    const cpu = this.cfg.jobs.deviceKind === 'cpu';
    const hold = new UnitProcessHold();
    const onAbort = (): void => hold.kill();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let slot: UnitSlot | null = null;
    let proc: UnitRunner | null = null;
    try {
      slot = await this.capacity.acquire({
        mayBorrow: ctx.mayBorrow,
        priority: ctx.priority,
        signal: ctx.signal,
        preempt: cpu ? hold : undefined,
        deadline: ctx.deadline,
        preferOwned: ctx.preferOwned,
        usage: ctx.usage,
      });
      const unit = cpu ? (proc = hold.attach(await this.takeProcess(loaded, hold))) : await this.gpuUnit(url.model, slot);
      // Every request of a group names the same outputs (they are part of its key).
      const outputs = group[0]!.decoded.request.outputs;
      const inputs = concatInputs(group.map((r) => r.decoded.request.inputs));
      const out = await unit.run(url.model, inputs, { ...(url.version !== undefined ? { version: url.version } : {}), ...(outputs ? { outputs } : {}) });
      return loaded.model.maxBatchSize === 0 ? [out] : scatterOutputs(out, group.map((r) => r.rows));
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      if (slot) this.capacity.release(slot);
      hold.detach();
      if (proc?.alive) loaded.idle.push(proc);
      else if (proc) this.processes.delete(proc);
    }
  }

  private repository(): ModelRepository {
    if (!this.repo) {
      this.repo = new ModelRepository(this.cfg.modelRepository);
      this.resolver = repositoryUnitResolver(this.repo);
    }
    return this.repo;
  }

  private unitOptions(extra: Pick<UnitRunnerOptions, 'transport' | 'placement'> & Partial<UnitRunnerOptions>): UnitRunnerOptions {
    const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
      const line = fields ? `${msg} ${JSON.stringify(fields)}` : msg;
      if (level === 'info') this.logger.log(line);
      else this.logger[level](line);
    };
    this.repository();
    return { policy: this.cfg.jobs.unitCpuPolicy, resolve: this.resolver!, log, ...extra };
  }

  private async takeProcess(loaded: Loaded, hold: UnitProcessHold): Promise<UnitRunner> {
    for (let p = loaded.idle.pop(); p; p = loaded.idle.pop()) if (p.alive) return p;
    const p = await UnitRunner.start(this.unitOptions({ transport: 'process', placement: { kind: 'cpu', intraOpThreads: 1 }, onSpawn: (c) => hold.attach(c) }));
    this.processes.add(p);
    return p;
  }

  private gpuUnit(model: string, slot: UnitSlot): Promise<UnitRunner> {
    const p = slot.placement;
    if (p.kind !== 'cuda') throw new Error('a CPU unit runs in a unit process');
    const key = `${model}|cuda:${p.deviceId}#${slot.unit}`;
    let r = this.gpuUnits.get(key);
    if (!r) {
      r = UnitRunner.start(this.unitOptions({ transport: 'thread', placement: { kind: 'cuda', deviceId: p.deviceId } }));
      this.gpuUnits.set(key, r);
      r.catch(() => this.gpuUnits.delete(key));
    }
    return r;
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
    const unit = await UnitRunner.start(this.unitOptions({ transport: 'process', placement: { kind: 'cpu', intraOpThreads: 1 } }));
    this.processes.add(unit);
    try {
      const o = await unit.open(url.model, url.version);
      return { model: { name: url.model, version: o.version, signature: o.signature, maxBatchSize: o.maxBatchSize }, idle: [unit] };
    } catch (e) {
      this.processes.delete(unit);
      await unit.release();
      throw new Error(`model "${url.model}" cannot be loaded: ${(e as Error).message}`);
    }
  }

  async onModuleDestroy(): Promise<void> {
    const units = await Promise.allSettled([...this.gpuUnits.values()]);
    this.gpuUnits.clear();
    await Promise.all([...units.map((u) => (u.status === 'fulfilled' ? u.value : null)), ...this.processes].map((r) => r?.release().catch(() => undefined)));
    this.processes.clear();
    this.models.clear();
  }
}
