import { DATATYPES } from './datatypes';
import type { ModelConfig } from './model-config';
import type { InferenceRunner } from './model-runner';
import type { InferTensor, ModelSignature } from './tensor';

/**
 * Zero-filled inputs for one warm-up run at `batchSize` (ignored when the model has no batch
 * dimension). Every other dimension must be fixed by the model or its config: a warm-up of an
 * arbitrary size would not say anything about the real one. `emptyBytes`: BYTES inputs get
 * empty elements (node models); onnxruntime string inputs are not warmed.
 */
export function warmupInputs(signature: ModelSignature, config: ModelConfig, batchSize: number, opts: { emptyBytes?: boolean } = {}): InferTensor[] {
  return signature.inputs.map((spec) => {
    if (spec.datatype === 'BYTES' && !opts.emptyBytes) throw new Error(`warmup: input '${spec.name}' is BYTES; warm-up feeds numeric tensors only`);
    const shape = spec.shape.map((d, i) => {
      if (i === 0 && config.max_batch_size > 0) return batchSize;
      if (d < 0) throw new Error(`warmup: input '${spec.name}' dim ${i} is variable; fix it in config.json "inputs" to warm up`);
      return d;
    });
    return { name: spec.name, datatype: spec.datatype, shape, data: DATATYPES[spec.datatype].make(shape.reduce((a, b) => a * b, 1)) };
  });
}

/** The batch sizes a new replica runs before it serves: config `warmup.batch_sizes`, or none. */
export function warmupBatchSizes(config: ModelConfig): number[] {
  const sizes = config.warmup?.batch_sizes ?? [];
  return config.max_batch_size > 0 ? sizes : sizes.slice(0, 1);
}

/**
 * Runs the warm-up batches on a replica before it takes traffic. onnxruntime sizes its memory
 * arena and picks kernels on the first run of each shape, so without this the first full-size
 * batch under load pays that cost in latency and grows the process by tens of MiB mid-traffic
 * (measured in the soak); with it, memory after start-up is the steady-state figure.
 */
export async function warmUp(runner: InferenceRunner): Promise<void> {
  for (const b of warmupBatchSizes(runner.config)) {
    await runner.runUnchecked(warmupInputs(runner.signature, runner.config, b), undefined, { transfer: true });
  }
}
