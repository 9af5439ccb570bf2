import { compileUserModule } from '@tandem/shared';
import type { Tensor } from '@tandem/sdk';
import type { InferenceObserver } from '../inference-observer';
import type { ModelConfig, ModelTensorConfig } from '../model-config';
import type { ReplicaSource } from '../replica-source';
import { warmupBatchSizes, warmupInputs } from '../replica-warmup';
import type { ModelSignature, TensorSpec } from '../tensor';
import { NodeModelRunner } from './node-model.runner';
import type { LogLevel } from './node-replica.wire';

/** A node model's `ctx.infer` call as the engine takes it (InferRequest has this shape). */
export interface NodeInferRequest {
  model: string;
  version?: string;
  inputs: Tensor[];
  outputs?: string[];
  timeoutMs?: number;
}

/** What node models need from whoever serves them. */
export interface NodeModelHooks {
  /** ctx.infer (Triton's BLS): the callee's own batcher, replicas and device share. */
  infer(req: NodeInferRequest): Promise<{ outputs: Tensor[] }>;
  /** ctx.log and the runtime's notices (restarts); fields carry `model` and `version`. */
  log(level: LogLevel, msg: string, fields: Record<string, unknown>): void;
}

export const NO_NODE_HOOKS: NodeModelHooks = {
  infer: () => Promise.reject(new Error('ctx.infer is not available here')),
  log: () => undefined,
};

function declared(kind: 'input' | 'output', list: readonly ModelTensorConfig[] | undefined, maxBatchSize: number): TensorSpec[] {
  if (!list || list.length === 0) {
    throw new Error(`a node model declares its ${kind}s in config.json: "${kind}s": [{ "name": …, "datatype": …, "shape": […] }]`);
  }
  const seen = new Set<string>();
  return list.map((t) => {
    if (seen.has(t.name)) throw new Error(`config.json declares ${kind} '${t.name}' twice`);
    seen.add(t.name);
    if (!t.datatype || !t.shape)
      throw new Error(`config.json ${kind} '${t.name}' needs a datatype and a shape (a node model has no model file to read them from)`);
    const shape = [...t.shape];
    if (maxBatchSize > 0) {
      if (shape.length === 0) throw new Error(`config.json ${kind} '${t.name}' has no dimensions but max_batch_size > 0 needs a batch dimension`);
      shape[0] = -1;
    }
    return { name: t.name, datatype: t.datatype, shape };
  });
}

/** A node model's signature: config.json's inputs and outputs, complete (dim 0 is the batch dimension when it batches). */
export function nodeSignature(config: ModelConfig): ModelSignature {
  return { inputs: declared('input', config.inputs, config.max_batch_size), outputs: declared('output', config.outputs, config.max_batch_size) };
}

/**
 * `<version>/model.ts` (or .js/.mjs): checks the declared signature and compiles the file once
 * per load (a reload recompiles it); every replica evaluates that code in its own thread.
 */
export async function nodeReplicaSource(
  spec: { name: string; version: string; path: string; config: ModelConfig },
  hooks: NodeModelHooks,
  observer: InferenceObserver,
): Promise<ReplicaSource> {
  const { name, version, path, config } = spec;
  const signature = nodeSignature(config);
  if (warmupBatchSizes(config).length > 0) warmupInputs(signature, config, 1, { emptyBytes: true });
  const compiled = await compileUserModule(path);
  const fields = { model: name, version };
  return {
    signature,
    platform: 'node',
    open: (placement) =>
      NodeModelRunner.start(
        { name, version, file: path, compiled, config, signature, placement },
        {
          infer: (model, v, inputs, outputs, timeoutMs) => hooks.infer({ model, version: v, inputs, outputs, timeoutMs }).then((r) => r.outputs),
          log: (level, msg, f) => hooks.log(level, msg, { ...f, ...fields }),
          restarted: (reason) => observer.replicaRestarted?.(name, version, reason),
        },
      ),
  };
}
