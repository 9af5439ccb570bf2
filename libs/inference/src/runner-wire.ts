import type { InferenceSession } from 'onnxruntime-node';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DATATYPES, oipFromOrt, type NumericTypedArray } from './datatypes';
import type { InferTensor } from './tensor';

/**
 * BYTES on the wire to a replica worker: every element back to back in one buffer and
 * each element's end offset. One fresh buffer, so it can be transferred, and a message never
 * drags along the request bodies the elements are views of (structured clone copies a view's
 * whole ArrayBuffer).
 */
export interface PackedBytes {
  bytes: Uint8Array;
  ends: Uint32Array;
}

/** A tensor as a replica worker exchanges it with its parent. */
export interface WireTensor {
  name: string;
  type: string;
  dims: number[];
  data: NumericTypedArray | PackedBytes;
}

/** What a replica worker sends its parent. */
export type FromSessionHost =
  | { type: 'ready'; inputMetadata: InferenceSession.ValueMetadata[]; outputMetadata: InferenceSession.ValueMetadata[]; memoryMiB?: number }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; outputs: WireTensor[]; inputs?: ArrayBuffer[] }
  | { type: 'error'; id: number; message: string; inputs?: ArrayBuffer[] }
  | { type: 'released' };

export function packBytes(elements: readonly Uint8Array[]): PackedBytes {
  const ends = new Uint32Array(elements.length);
  let size = 0;
  elements.forEach((b, i) => (ends[i] = size += b.byteLength));
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const b of elements) {
    bytes.set(b, off);
    off += b.byteLength;
  }
  return { bytes, ends };
}

/** The elements of packed BYTES, as views of its buffer (no copy). */
export function unpackBytes(p: PackedBytes): Uint8Array[] {
  const out = new Array<Uint8Array>(p.ends.length);
  let start = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = p.bytes.subarray(start, p.ends[i]);
    start = p.ends[i]!;
  }
  return out;
}

export function toWire(inputs: readonly InferTensor[]): WireTensor[] {
  return inputs.map((t) => ({ name: t.name, type: DATATYPES[t.datatype].ort, dims: t.shape, data: Array.isArray(t.data) ? packBytes(t.data) : t.data }));
}

export function fromWire(outputs: readonly WireTensor[]): InferTensor[] {
  return outputs.map((o) => {
    const datatype = oipFromOrt(o.type);
    if (!datatype) throw new Error(`output '${o.name}' has type ${o.type}, which OIP cannot carry`);
    return { name: o.name, datatype, shape: o.dims, data: 'ends' in o.data ? unpackBytes(o.data) : o.data };
  });
}

/** The buffers of packed BYTES in `feeds`: made by toWire for this message only, so always safe to transfer. */
export function packedBuffers(feeds: readonly WireTensor[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const f of feeds) if ('ends' in f.data) out.push(f.data.bytes.buffer as ArrayBuffer, f.data.ends.buffer as ArrayBuffer);
  return out;
}

/*
 * The onnxruntime boundary of the replica worker. onnxruntime-node takes and
 * returns a 'string' tensor as string[] and converts each to a C string as UTF-8, so BYTES
 * become strings here and only here: bytes that are not UTF-8 turn into U+FFFD and a NUL ends
 * an element (an onnxruntime-node limit; a model that needs raw bytes is a node model).
 * Both functions are self-contained: they are shipped as source (`.toString()`).
 */

/** Wire data → what `new ort.Tensor(type, data, dims)` takes. */
export function wireToOrtData(data: NumericTypedArray | PackedBytes): NumericTypedArray | string[] {
  if (!('ends' in data)) return data;
  const dec = new TextDecoder('utf-8');
  const out = new Array<string>(data.ends.length);
  let start = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = dec.decode(data.bytes.subarray(start, data.ends[i]));
    start = data.ends[i]!;
  }
  return out;
}

/** An onnxruntime result's data → wire data (strings packed as their UTF-8 bytes). */
export function ortToWireData(data: unknown): NumericTypedArray | PackedBytes {
  if (!Array.isArray(data)) return data as NumericTypedArray;
  const enc = new TextEncoder();
  const parts = data.map((s: string) => enc.encode(s));
  const ends = new Uint32Array(parts.length);
  let size = 0;
  parts.forEach((b, i) => (ends[i] = size += b.byteLength));
  const bytes = new Uint8Array(size);
  parts.forEach((b, i) => bytes.set(b, ends[i]! - b.byteLength));
  return { bytes, ends };
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
