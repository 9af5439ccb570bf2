import { bytesOf, textOf } from '@tandem/sdk';
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import { DATATYPES, oipFromOrt, type NumericTypedArray } from './datatypes';
import type { ModelConfig } from './model-config';
import { resolveSignature } from './model-signature';
import { onnxSessionFactory, type DevicePlacement, type SessionFactory } from './session-factory';
import type { InferTensor, ModelSignature } from './tensor';
import { validateInputs } from './input-validation';

/** What a replica runs batches on: an in-process session or one in a worker thread. */
export interface InferenceRunner {
  readonly signature: ModelSignature;
  readonly config: ModelConfig;
  readonly placement: DevicePlacement;
  /** Device memory the session holds, where known (simulated CUDA reports it; a real CUDA replica is measured at load). */
  deviceMemoryMiB?: number;
  /** Validates, then runs once; every output, or only `outputNames`. */
  run(inputs: readonly InferTensor[], outputNames?: readonly string[]): Promise<InferTensor[]>;
  /** Runs already-validated inputs; `transfer` lets a worker take the input buffers instead of copying. */
  runUnchecked(inputs: readonly InferTensor[], outputNames?: readonly string[], opts?: { transfer?: boolean }): Promise<InferTensor[]>;
  release(): Promise<void>;
  /** Input buffers moved to it come back after each run and are recycled (tensor-ownership's batchArray). */
  readonly returnsInputs?: boolean;
}

/**
 * One in-process onnxruntime session: runs an already-batched set of inputs.
 * This is also the API the batch app uses directly (no queueing, no batcher). Note that
 * onnxruntime-node's run() occupies the calling thread; the gateway uses WorkerModelRunner.
 */
export class ModelRunner implements InferenceRunner {
  private constructor(
    private readonly session: InferenceSession & { tandemMemoryMiB?: number },
    readonly signature: ModelSignature,
    readonly config: ModelConfig,
    readonly placement: DevicePlacement,
  ) {
    this.deviceMemoryMiB = session.tandemMemoryMiB;
  }

  deviceMemoryMiB?: number;

  static async load(
    modelPath: string,
    config: ModelConfig,
    placement: DevicePlacement = { kind: 'cpu', intraOpThreads: 1 },
    factory: SessionFactory = onnxSessionFactory,
  ): Promise<ModelRunner> {
    const session = await factory.create(modelPath, placement);
    try {
      return new ModelRunner(session, resolveSignature(session, config), config, placement);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  /**
   * Validates (names, datatypes, shapes, element counts, batch size) and runs once.
   * Returns every model output, or only `outputNames` when given.
   */
  async run(inputs: readonly InferTensor[], outputNames?: readonly string[]): Promise<InferTensor[]> {
    validateInputs(this.signature, this.config.max_batch_size, inputs);
    return this.runUnchecked(inputs, outputNames);
  }

  /** For callers that validated already (the batcher validates each request, then merges). */
  async runUnchecked(inputs: readonly InferTensor[], outputNames?: readonly string[]): Promise<InferTensor[]> {
    const feeds: Record<string, Tensor> = {};
    // onnxruntime-node takes and returns 'string' tensors as string[] (UTF-8): BYTES convert here only.
    for (const t of inputs) feeds[t.name] = new Tensor(DATATYPES[t.datatype].ort, Array.isArray(t.data) ? textOf(t.data) : t.data, t.shape);
    const names = outputNames ?? this.signature.outputs.map((o) => o.name);
    const results = await this.session.run(feeds, names as string[]);
    return names.map((name) => {
      const r = results[name];
      if (!r) throw new Error(`model produced no output '${name}'`);
      const datatype = oipFromOrt(r.type);
      if (!datatype) throw new Error(`output '${name}' has type ${r.type}, which OIP cannot carry`);
      return { name, datatype, shape: [...r.dims], data: Array.isArray(r.data) ? bytesOf(r.data as string[]) : (r.data as NumericTypedArray) };
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
