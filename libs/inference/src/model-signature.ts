import type { InferenceSession } from 'onnxruntime-node';
import { oipFromOrt } from './datatypes';
import type { ModelConfig, ModelTensorConfig } from './model-config';
import type { ModelSignature, TensorSpec } from './tensor';

function fromSession(meta: readonly InferenceSession.ValueMetadata[], kind: string): TensorSpec[] {
  return meta.map((m) => {
    if (!m.isTensor) throw new Error(`${kind} '${m.name}' is not a tensor; only tensor models are served`);
    const datatype = oipFromOrt(m.type);
    if (!datatype) throw new Error(`${kind} '${m.name}' has type ${m.type}, which OIP cannot carry`);
    // Symbolic dimensions ("batch", "p2o.DynamicDimension.0") are variable: -1.
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

function overlay(specs: TensorSpec[], cfg: ModelTensorConfig[] | undefined, kind: string): TensorSpec[] {
  if (!cfg) return specs;
  return specs.map((s) => {
    const c = cfg.find((x) => x.name === s.name);
    if (!c) return s;
    if (c.datatype && c.datatype !== s.datatype) {
      throw new Error(`config ${kind} '${s.name}' datatype ${c.datatype} differs from the model's ${s.datatype}`);
    }
    if (!c.shape) return s;
    const fromModel = s.shape.length > 0;
    if (fromModel && c.shape.length !== s.shape.length) {
      throw new Error(`config ${kind} '${s.name}' shape [${c.shape}] has a different rank than the model's [${s.shape}]`);
    }
    const shape = c.shape.map((d, i) => {
      const m = fromModel ? s.shape[i]! : -1;
      if (m !== -1 && d !== -1 && m !== d) throw new Error(`config ${kind} '${s.name}' dim ${i} is ${d}, the model says ${m}`);
      return m !== -1 ? m : d;
    });
    return { ...s, shape };
  });
}

/**
 * Signature = what the session reports, narrowed by config.json (fixed sizes for dynamic
 * dims, names for models whose metadata is unreadable). With max_batch_size > 0 dim 0 is
 * the batch dimension and always variable.
 */
export function resolveSignature(session: Pick<InferenceSession, 'inputMetadata' | 'outputMetadata'>, config: ModelConfig): ModelSignature {
  const inputs = overlay(fromSession(session.inputMetadata, 'input'), config.inputs, 'input');
  const outputs = overlay(fromSession(session.outputMetadata, 'output'), config.outputs, 'output');
  if (config.max_batch_size > 0) {
    for (const t of [...inputs, ...outputs]) {
      if (t.shape.length === 0) throw new Error(`'${t.name}' has no dimensions but max_batch_size > 0 needs a batch dimension`);
      t.shape[0] = -1;
    }
  }
  return { inputs, outputs };
}
