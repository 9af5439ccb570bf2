import type { Tensor } from 'onnxruntime-node';
// One definition of the datatypes and tensor contents: the public SDK's (BYTES = raw bytes).
import { OIP_DATATYPES, type NumericTypedArray, type OipDatatype, type TensorData } from '@tandem/sdk';

export { OIP_DATATYPES, type NumericTypedArray, type OipDatatype, type TensorData };

interface TypeInfo {
  ort: Tensor.Type;
  /** Bytes per element in the binary wire format; 0 for BYTES (length-prefixed). */
  size: number;
  make: (n: number) => TensorData;
  fromBuffer?: (buf: ArrayBuffer, offset: number, n: number) => NumericTypedArray;
  /** The typed array class holding this datatype (its Symbol.toStringTag); undefined for BYTES. */
  arrayName?: string;
}

const typed = <T extends NumericTypedArray>(
  C: { new (n: number): T; new (b: ArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number; name: string },
  ort: Tensor.Type,
): TypeInfo => ({ ort, size: C.BYTES_PER_ELEMENT, make: (n) => new C(n), fromBuffer: (b, o, n) => new C(b, o, n), arrayName: C.name });

export const DATATYPES: Readonly<Record<OipDatatype, TypeInfo>> = {
  BOOL: typed(Uint8Array, 'bool'),
  UINT8: typed(Uint8Array, 'uint8'),
  UINT16: typed(Uint16Array, 'uint16'),
  UINT32: typed(Uint32Array, 'uint32'),
  UINT64: typed(BigUint64Array, 'uint64'),
  INT8: typed(Int8Array, 'int8'),
  INT16: typed(Int16Array, 'int16'),
  INT32: typed(Int32Array, 'int32'),
  INT64: typed(BigInt64Array, 'int64'),
  FP16: typed(Uint16Array, 'float16'),
  FP32: typed(Float32Array, 'float32'),
  FP64: typed(Float64Array, 'float64'),
  BYTES: { ort: 'string', size: 0, make: (n) => Array.from({ length: n }, () => new Uint8Array(0)) },
};

const BY_ORT = new Map<string, OipDatatype>(OIP_DATATYPES.map((d) => [DATATYPES[d].ort, d]));

export function isOipDatatype(v: unknown): v is OipDatatype {
  return typeof v === 'string' && (OIP_DATATYPES as readonly string[]).includes(v);
}

/** onnxruntime type → OIP datatype; undefined for types OIP cannot carry (int4, uint4). */
export function oipFromOrt(t: string): OipDatatype | undefined {
  return BY_ORT.get(t);
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// IEEE 754 half precision conversion: Node 20 has no Float16Array.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    if ((mant >>> (shift - 1)) & 1 && (h & 1 || mant & ((1 << (shift - 1)) - 1))) h += 1;
    return sign | h;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  if (mant & 0x1000 && (h & 1 || mant & 0xfff)) h += 1;
  return h;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
