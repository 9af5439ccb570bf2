import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { openOrtSession } from './gpu/simulated-cuda';
import type { NumericTypedArray } from './datatypes';
import { ortToWireData, wireToOrtData, type PackedBytes } from './runner-wire';
import type { TandemSessionOptions } from './gpu/simulated-cuda';

/**
 * The replica worker thread: one onnxruntime session (onnxruntime-node's session.run blocks the
 * calling thread for the whole inference, so every replica owns a worker and the gateway's event
 * loop keeps parsing requests meanwhile). Started by WorkerModelRunner through entryWorker.
 */
export interface ReplicaWorkerData {
  ortPath: string;
  modelPath: string;
  sessionOptions: TandemSessionOptions;
}

interface Feed {
  name: string;
  type: OrtTensor.Type;
  dims: number[];
  data: NumericTypedArray | PackedBytes;
}
type ToWorker = { type: 'release' } | { type: 'run'; id: number; feeds: Feed[]; outputs: string[] };

const meta = (m: readonly InferenceSession.ValueMetadata[]) =>
  m.map((x) => ({ name: x.name, isTensor: x.isTensor, type: x.isTensor ? x.type : undefined, shape: x.isTensor ? [...x.shape] : [] }));

export default async function replicaWorker(data: ReplicaWorkerData): Promise<void> {
  const port = parentPort!;
  // The same onnxruntime build as the gateway's (its path resolved there), not whatever this bundle would find.
  const ort = require(data.ortPath) as typeof import('onnxruntime-node');
  let session: InferenceSession & { tandemMemoryMiB?: number };
  try {
    session = await openOrtSession(ort, fs, data.modelPath, data.sessionOptions);
  } catch (e) {
    port.postMessage({ type: 'init-error', message: String((e as Error)?.message ?? e) });
    return;
  }
  port.postMessage({
    type: 'ready',
    inputMetadata: meta(session.inputMetadata),
    outputMetadata: meta(session.outputMetadata),
    memoryMiB: session.tandemMemoryMiB,
  });
  // Messages are handled strictly in order: releasing the session while a run is still in
  // flight aborts the whole process (onnxruntime throws a Napi::Error from native code).
  let chain = Promise.resolve();
  let released = false;
  const handle = async (m: ToWorker): Promise<void> => {
    if (m.type === 'release') {
      if (!released) await session.release();
      released = true;
      port.postMessage({ type: 'released' });
      return;
    }
    if (released) {
      port.postMessage({ type: 'error', id: m.id, message: 'session released' });
      return;
    }
    // The numeric inputs' buffers go back with the answer (the parent recycles them): onnxruntime
    // is done with them once run() settled. Packed BYTES are decoded to strings first.
    const inputs = unique(m.feeds.flatMap((f) => ('ends' in f.data || !(f.data.buffer instanceof ArrayBuffer) ? [] : [f.data.buffer])));
    try {
      const feeds: Record<string, OrtTensor> = {};
      for (const f of m.feeds) feeds[f.name] = new ort.Tensor(f.type, wireToOrtData(f.data) as never, f.dims);
      const out = await session.run(feeds, m.outputs);
      const outputs = m.outputs.map((name) => {
        const t = out[name]!;
        return { name, type: t.type, dims: [...t.dims], data: ortToWireData(t.data) };
      });
      // Packed BYTES outputs are fresh buffers of this message: moved, not copied.
      const transfer = outputs.flatMap((o) => ('ends' in o.data && o.data.ends ? [o.data.bytes.buffer as ArrayBuffer, o.data.ends.buffer as ArrayBuffer] : []));
      port.postMessage({ type: 'result', id: m.id, outputs, inputs }, [...transfer, ...inputs]);
    } catch (e) {
      port.postMessage({ type: 'error', id: m.id, message: String((e as Error)?.message ?? e), inputs }, inputs);
    }
  };
  port.on('message', (m: ToWorker) => {
    chain = chain.then(() => handle(m));
  });
}

/** Each buffer once: two inputs may view one buffer, and neither a transfer list nor the pool may get one twice. */
function unique(buffers: readonly ArrayBufferLike[]): ArrayBuffer[] {
  return [...new Set(buffers)] as ArrayBuffer[];
}
