import { bytesOf, textOf, type OutputTensor, type Session, type Tensor } from '@tandem/sdk';
import type { InferenceSession } from 'onnxruntime-node';
import * as fs from 'node:fs';
import { DATATYPES, oipFromOrt, type NumericTypedArray } from '../datatypes';
import { withCudaHint } from '../gpu/cuda-provider';
import { openOrtSession as openSimulatedOrReal } from '../gpu/simulated-cuda';

/** A node model's `ctx.session(file)`: an SDK Session over onnxruntime, closed with `release`. */
export interface OwnedSession extends Session {
  release(): Promise<void>;
}

/**
 * Opens `path` with onnxruntime-node in the calling thread. onnxruntime is imported on first
 * use, so models that never open a session do not load it. BYTES become onnxruntime's UTF-8
 * strings on the way in and bytes again on the way out (its string tensors cannot hold raw bytes).
 */
export async function openOrtSession(path: string, options: InferenceSession.SessionOptions): Promise<OwnedSession> {
  const ort = await import('onnxruntime-node');
  // The unit's or replica's placement, simulated CUDA included; a missing CUDA provider says how to install it.
  const session = await openSimulatedOrReal(ort, fs, path, options).catch((e: unknown) => {
    throw withCudaHint(e);
  });
  let released = false;
  return {
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    async run(feeds: Readonly<Record<string, OutputTensor>>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
      if (released) throw new Error(`session ${path} was released`);
      const ortFeeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
      for (const [name, t] of Object.entries(feeds)) {
        const info = DATATYPES[t.datatype];
        if (!info) throw new Error(`feed '${name}' has unknown datatype ${String(t.datatype)}`);
        ortFeeds[name] = new ort.Tensor(info.ort, (Array.isArray(t.data) ? textOf(t.data) : t.data) as never, t.shape);
      }
      const result = outputs ? await session.run(ortFeeds, [...outputs]) : await session.run(ortFeeds);
      const out: Record<string, Tensor> = {};
      for (const [name, r] of Object.entries(result)) {
        const datatype = oipFromOrt(r.type);
        if (!datatype) throw new Error(`session output '${name}' has type ${r.type}, which OIP cannot carry`);
        out[name] = { name, datatype, shape: [...r.dims], data: Array.isArray(r.data) ? bytesOf(r.data as string[]) : (r.data as NumericTypedArray) };
      }
      return out;
    },
    async release(): Promise<void> {
      if (released) return;
      released = true;
      await session.release();
    },
  };
}
