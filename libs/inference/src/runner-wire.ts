import type { InferenceSession } from 'onnxruntime-node';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DATATYPES, oipFromOrt, type TensorData } from './datatypes';
import type { InferTensor } from './tensor';

/** A tensor as the replica worker and the unit process exchange it with their parent. */
export interface WireTensor {
  name: string;
  type: string;
  dims: number[];
  data: TensorData;
}

/** What a session host (worker thread or child process) sends its parent. */
export type FromSessionHost =
  | { type: 'ready'; inputMetadata: InferenceSession.ValueMetadata[]; outputMetadata: InferenceSession.ValueMetadata[] }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; outputs: WireTensor[] }
  | { type: 'error'; id: number; message: string }
  | { type: 'released' };

export function toWire(inputs: readonly InferTensor[]): WireTensor[] {
  return inputs.map((t) => ({ name: t.name, type: DATATYPES[t.datatype].ort, dims: t.shape, data: t.data }));
}

export function fromWire(outputs: readonly WireTensor[]): InferTensor[] {
  return outputs.map((o) => {
    const datatype = oipFromOrt(o.type);
    if (!datatype) throw new Error(`output '${o.name}' has type ${o.type}, which OIP cannot carry`);
    return { name: o.name, datatype, shape: o.dims, data: o.data };
  });
}

/** onnxruntime-node's entry file, for code that loads it in another thread or process. */
export function ortPath(): string {
  try {
    return require.resolve('onnxruntime-node');
  } catch {
    // Under an ESM transform (vitest) there is no `require`; resolve from the working directory.
    return createRequire(join(process.cwd(), 'index.js')).resolve('onnxruntime-node');
  }
}
