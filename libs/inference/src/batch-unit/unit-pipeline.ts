import { dirname } from 'node:path';
import { InputError, type InferOptions, type Placement, type Tensor } from '@tandem/sdk';
import { validateInputs } from '../input-validation';
import { ModelRunner } from '../model-runner';
import { startModelHost, type ModelHost } from '../node-backend/node-model.host';
import type { LogLevel } from '../node-backend/node-replica.wire';
import { createSession, type DevicePlacement } from '../session-factory';
import type { ModelSignature } from '../tensor';
import type { UnitModelSpec, UnitOpened } from './unit.wire';

/** A repository model opened inside the unit. */
interface LocalModel extends UnitOpened {
  /** Validated inputs → the outputs asked for (all by default), in order. */
  run(inputs: readonly Tensor[], outputs?: readonly string[], requests?: readonly number[]): Promise<Tensor[]>;
  release(): Promise<void>;
}

export interface UnitPipelineOptions {
  /** The unit's share: every session opened here (the models', their callees', ctx.session's) is pinned to it. */
  placement: DevicePlacement;
  /** A model name (and version; latest when omitted) → what to open; the parent knows the repository. */
  resolve(model: string, version?: string): Promise<UnitModelSpec>;
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
}

const sdkPlacement = (p: DevicePlacement): Placement => (p.kind === 'cpu' ? { kind: 'cpu', threads: p.intraOpThreads } : { kind: 'gpu', deviceId: p.deviceId });
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * The models of one batch unit, all in this thread: the model a batch runs and every repository
 * model its node models call through `ctx.infer` (Triton's BLS), each opened once on first use on
 * the unit's own share. There is no gateway in a batch, so the whole pipeline runs where the unit
 * runs, and stops when it is stopped.
 */
export class UnitPipeline {
  /** By requested name@version ('' = latest), so a name is resolved once. */
  private readonly opening = new Map<string, Promise<LocalModel>>();
  /** By resolved name@version: two names for one version share it. */
  private readonly byVersion = new Map<string, Promise<LocalModel>>();
  private closed = false;

  constructor(private readonly opts: UnitPipelineOptions) {}

  open(model: string, version?: string): Promise<LocalModel> {
    if (this.closed) return Promise.reject(new Error('the unit is closing'));
    const key = `${model}@${version ?? ''}`;
    let p = this.opening.get(key);
    if (!p) {
      p = this.opts.resolve(model, version).then((spec) => {
        const vkey = `${spec.name}@${spec.version}`;
        let m = this.byVersion.get(vkey);
        if (!m) {
          m = this.start(spec);
          this.byVersion.set(vkey, m);
          m.catch(() => this.byVersion.delete(vkey));
        }
        return m;
      });
      this.opening.set(key, p);
      p.catch(() => this.opening.delete(key));
    }
    return p;
  }

  /** Runs `model` on validated-here inputs (the batch's own run: a bad input is the chunk's failure). */
  async run(
    model: string,
    version: string | undefined,
    inputs: readonly Tensor[],
    outputs?: readonly string[],
    requests?: readonly number[],
  ): Promise<Tensor[]> {
    const m = await this.open(model, version);
    validateInputs(m.signature, m.maxBatchSize, inputs);
    return m.run(inputs, outputs, requests);
  }

  /** A node model's ctx.infer: the callee runs here; what is wrong with the request is an InputError, as a 400 would be online. */
  async infer(model: string, inputs: readonly Tensor[], o: InferOptions = {}): Promise<Record<string, Tensor>> {
    const m = await this.open(model, o.version);
    try {
      validateInputs(m.signature, m.maxBatchSize, inputs);
    } catch (e) {
      throw new InputError(`model '${model}': ${messageOf(e)}`);
    }
    const out = await m.run(inputs, o.outputs);
    return Object.fromEntries(out.map((t) => [t.name, t]));
  }

  /** Finalizes node models and releases every session. */
  async close(): Promise<void> {
    this.closed = true;
    const all = await Promise.allSettled([...this.byVersion.values()]);
    this.byVersion.clear();
    this.opening.clear();
    await Promise.allSettled(all.map((r) => (r.status === 'fulfilled' ? r.value.release() : undefined)));
  }

  private async start(spec: UnitModelSpec): Promise<LocalModel> {
    const { name, version, config } = spec;
    const base = { name, version, maxBatchSize: config.max_batch_size };
    if (spec.backend === 'onnxruntime') {
      const factory = { create: (path: string) => createSession(path, spec.sessionOptions) };
      const runner = await ModelRunner.load(spec.path, config, this.opts.placement, factory);
      return {
        ...base,
        signature: runner.signature,
        run: (inputs, outputs) => runner.runUnchecked(inputs, outputs),
        release: () => runner.release(),
      };
    }
    const fields = { model: name, version };
    const host: ModelHost = await startModelHost({
      module: spec.module,
      modulePaths: spec.modulePaths,
      name,
      version,
      dir: dirname(spec.path),
      placement: sdkPlacement(this.opts.placement),
      sessionOptions: spec.sessionOptions,
      inputs: spec.signature.inputs,
      outputs: spec.signature.outputs,
      maxBatchSize: config.max_batch_size,
      log: (level, msg, f) => this.opts.log(level, msg, { ...f, ...fields }),
      infer: (model, inputs, o) => this.infer(model, inputs, o),
    });
    const signature: ModelSignature = spec.signature;
    return {
      ...base,
      signature,
      run: (inputs, outputs, requests) => {
        const rows = config.max_batch_size > 0 ? (inputs[0]?.shape[0] ?? 1) : 1;
        return host.execute(inputs, { requests: requests ?? [rows], ...(outputs ? { outputs } : {}) });
      },
      release: () => host.finalize(),
    };
  }
}
