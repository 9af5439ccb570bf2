/** The Open Inference Protocol v2 tensor datatypes (KServe/Triton spelling). */
export const OIP_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
export type OipDatatype = (typeof OIP_DATATYPES)[number];

export type NumericTypedArray =
  Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Float32Array | Float64Array;

/**
 * Tensor contents: a typed array (FP16 as raw IEEE half bits in a Uint16Array, BOOL as 0/1
 * bytes), or for BYTES one Uint8Array per element: raw bytes, as Triton carries them (a JSON
 * string element arrives as its UTF-8 bytes; see `textOf` / `bytesOf`).
 */
export type TensorData = NumericTypedArray | Uint8Array[];

/** A tensor as models, tasks and transports see it. */
export interface Tensor {
  name: string;
  datatype: OipDatatype;
  /** Full shape, batch dimension first when the model batches. */
  shape: number[];
  data: TensorData;
}

/** A tensor a model returns; the name is the key it is returned under. */
export type OutputTensor = Omit<Tensor, 'name'> & { name?: string };

const utf8 = new TextDecoder('utf-8');
const encoder = new TextEncoder();

/** BYTES elements as UTF-8 strings. */
export function textOf(data: TensorData): string[] {
  if (!Array.isArray(data)) throw new TypeError('textOf: not a BYTES tensor');
  return data.map((b) => utf8.decode(b));
}

/** Strings as BYTES elements (UTF-8). */
export function bytesOf(strings: readonly string[]): Uint8Array[] {
  return strings.map((s) => encoder.encode(s));
}

/** A BYTES tensor holding strings; shape defaults to [n]. */
export function textTensor(strings: readonly string[], shape: number[] = [strings.length]): OutputTensor {
  return { datatype: 'BYTES', shape, data: bytesOf(strings) };
}
