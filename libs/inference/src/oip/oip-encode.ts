import { halfToFloat } from '../datatypes';
import type { InferResult, ModelMetadata } from '../inference-engine';
import type { InferTensor } from '../tensor';
import type { OipInferResponse, OipModelMetadata, OipOutputTensor } from './oip-types';

const utf8 = new TextDecoder('utf-8');

function jsonData(t: InferTensor): (number | boolean | string)[] {
  const d = t.data;
  // JSON has no bytes: BYTES elements go out as UTF-8 strings (Triton does the same); binary keeps them raw.
  if (Array.isArray(d)) return d.map((b) => utf8.decode(b));
  if (t.datatype === 'BOOL') return Array.from(d as Uint8Array, (x) => x !== 0);
  if (t.datatype === 'FP16') return Array.from(d as Uint16Array, halfToFloat);
  // 64-bit integers become JSON numbers (exact up to 2^53, as in other OIP servers).
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, (x) => Number(x));
  return Array.from(d as Float32Array);
}

/** A tensor's binary wire bytes: numeric data as is (no copy), BYTES as 4-byte little-endian length-prefixed elements. */
export function binaryData(t: InferTensor): Buffer {
  const d = t.data;
  if (!Array.isArray(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  let size = 0;
  for (const b of d) size += 4 + b.byteLength;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const b of d) {
    off = out.writeUInt32LE(b.byteLength, off);
    out.set(b, off);
    off += b.byteLength;
  }
  return out;
}

export interface EncodedInfer {
  header: OipInferResponse;
  /** Binary output sections in output order; empty when every output is JSON. */
  binary: Buffer[];
}

export function encodeInferResponse(r: InferResult, id: string | undefined, binaryOutput: (name: string) => boolean): EncodedInfer {
  const binary: Buffer[] = [];
  const outputs: OipOutputTensor[] = r.outputs.map((t) => {
    const base = { name: t.name, datatype: t.datatype, shape: t.shape };
    if (binaryOutput(t.name)) {
      const b = binaryData(t);
      binary.push(b);
      return { ...base, parameters: { binary_data_size: b.length } };
    }
    return { ...base, data: jsonData(t) };
  });
  return { header: { model_name: r.model, model_version: r.version, ...(id !== undefined ? { id } : {}), outputs }, binary };
}

export function encodeModelMetadata(m: ModelMetadata): OipModelMetadata {
  const spec = (t: { name: string; datatype: string; shape: number[] }) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] });
  return {
    name: m.name,
    versions: m.versions,
    platform: m.platform,
    inputs: m.inputs.map(spec),
    outputs: m.outputs.map(spec),
    ...(m.device ? { device: m.device } : {}),
  };
}
