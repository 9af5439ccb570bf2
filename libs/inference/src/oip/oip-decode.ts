// Relative, not '@tandem/shared': batch unit processes bundle this file and should not load Nest.
import { DomainException } from '../../../shared/src/errors/domain.exception';
import { DATATYPES, floatToHalf, isOipDatatype, type OipDatatype, type TensorData } from '../datatypes';
import type { InferRequest } from '../inference-engine';
import type { InferTensor } from '../tensor';
import { markOwned } from '../tensor-ownership';

const MAX_TENSORS = 256;
const MAX_RANK = 16;
const MAX_ELEMENTS = 2 ** 31 - 1;

/** A decoded OIP infer request plus the transport-level choices the encoder needs. */
export interface DecodedInfer {
  request: InferRequest;
  id?: string;
  /** Whether an output is to be sent in the binary section. */
  binaryOutput: (name: string) => boolean;
}

const bad = (msg: string): DomainException => DomainException.invalid(msg);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function paramsOf(v: unknown, where: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isObj(v)) throw bad(`${where}.parameters must be an object`);
  return v;
}

function shapeOf(v: unknown, where: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_RANK) throw bad(`${where}.shape must be an array of at most ${MAX_RANK} dimensions`);
  let n = 1;
  for (const d of v) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) throw bad(`${where}.shape must hold non-negative integers, got ${JSON.stringify(d)}`);
    n *= d;
  }
  if (n > MAX_ELEMENTS) throw bad(`${where}.shape [${v.join(',')}] is too large`);
  return v as number[];
}

/** Flattens nested JSON data (row-major) without recursion limits on width. */
function flatten(data: unknown, where: string): unknown[] {
  if (!Array.isArray(data)) throw bad(`${where}.data must be an array`);
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (a: unknown[], depth: number): void => {
    if (depth > MAX_RANK) throw bad(`${where}.data is nested deeper than ${MAX_RANK}`);
    for (const x of a)
      if (Array.isArray(x)) walk(x, depth + 1);
      else out.push(x);
  };
  walk(data, 1);
  return out;
}

const INT_RANGE: Partial<Record<OipDatatype, [number, number]>> = {
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

const utf8 = new TextEncoder();

function fromJson(dt: OipDatatype, values: unknown[], where: string): TensorData {
  const n = values.length;
  if (dt === 'BYTES') {
    // JSON carries BYTES as strings; the tensor holds their UTF-8 bytes (as Triton does).
    return values.map((v, i) => {
      if (typeof v !== 'string') throw bad(`${where}.data[${i}] must be a string for BYTES`);
      return utf8.encode(v);
    });
  }
  if (dt === 'BOOL') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (typeof v !== 'boolean') throw bad(`${where}.data[${i}] must be true/false for BOOL`);
      out[i] = v ? 1 : 0;
    }
    return markOwned(out);
  }
  const out = DATATYPES[dt].make(n) as Float32Array;
  const range = INT_RANGE[dt];
  const big = dt === 'INT64' || dt === 'UINT64';
  const half = dt === 'FP16';
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v !== 'number') throw bad(`${where}.data[${i}] is not a number: ${JSON.stringify(v)?.slice(0, 40)}`);
    if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) throw bad(`${where}.data[${i}] = ${v} is not a valid ${dt}`);
    if (big) (out as unknown as BigInt64Array)[i] = BigInt(v);
    else out[i] = half ? floatToHalf(v) : v;
  }
  return markOwned(out as TensorData);
}

/**
 * Raw little-endian tensor bytes (BYTES: 4-byte length-prefixed elements) → tensor data; shared
 * with gRPC raw contents. BYTES elements are views into `bytes` (no copy), whatever they hold.
 */
export function tensorDataFromBinary(dt: OipDatatype, bytes: Buffer, count: number, where: string): TensorData {
  if (dt === 'BYTES') {
    const out: Uint8Array[] = [];
    let off = 0;
    while (off < bytes.length) {
      if (off + 4 > bytes.length) throw bad(`${where}: truncated BYTES length prefix`);
      const len = bytes.readUInt32LE(off);
      off += 4;
      if (off + len > bytes.length) throw bad(`${where}: BYTES element runs past binary_data_size`);
      out.push(new Uint8Array(bytes.buffer, bytes.byteOffset + off, len));
      off += len;
    }
    if (out.length !== count) throw bad(`${where} holds ${out.length} BYTES elements, shape needs ${count}`);
    return out;
  }
  const size = DATATYPES[dt].size;
  if (bytes.length !== count * size) {
    throw bad(`${where}.parameters.binary_data_size is ${bytes.length} bytes, shape and ${dt} need ${count * size}`);
  }
  // A view of the request's bytes when they are element-aligned (the binary body reader aligns
  // them); otherwise a copy into a fresh, aligned buffer. Nothing writes to input tensors.
  const info = DATATYPES[dt];
  if (bytes.byteOffset % size === 0 && info.fromBuffer) return info.fromBuffer(bytes.buffer as ArrayBuffer, bytes.byteOffset, count);
  const out = info.make(count) as Uint8Array;
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  return markOwned(out);
}

/**
 * OIP infer request (JSON header + optional binary section per the binary tensor data
 * extension) → domain request. Every structural problem is a 400 naming the field.
 */
export function decodeInferRequest(model: string, version: string | undefined, header: unknown, binary?: Buffer): DecodedInfer {
  if (!isObj(header)) throw bad('request body must be a JSON object');
  const id = header.id;
  if (id !== undefined && typeof id !== 'string') throw bad('id must be a string');
  const params = paramsOf(header.parameters, 'request');
  const rawInputs = header.inputs;
  if (!Array.isArray(rawInputs) || rawInputs.length === 0) throw bad('inputs must be a non-empty array');
  if (rawInputs.length > MAX_TENSORS) throw bad(`at most ${MAX_TENSORS} inputs`);
  let offset = 0;
  const inputs: InferTensor[] = rawInputs.map((raw, i) => {
    const where = `inputs[${i}]`;
    if (!isObj(raw)) throw bad(`${where} must be an object`);
    const { name, datatype } = raw;
    if (typeof name !== 'string' || name === '') throw bad(`${where}.name must be a non-empty string`);
    if (!isOipDatatype(datatype)) throw bad(`${where}.datatype ${JSON.stringify(datatype)} is not an OIP datatype`);
    const shape = shapeOf(raw.shape, where);
    const count = shape.reduce((a, b) => a * b, 1);
    const p = paramsOf(raw.parameters, where);
    const binSize = p.binary_data_size;
    let data: TensorData;
    if (binSize !== undefined) {
      if (raw.data !== undefined) throw bad(`${where} has both data and binary_data_size`);
      if (typeof binSize !== 'number' || !Number.isInteger(binSize) || binSize < 0)
        throw bad(`${where}.parameters.binary_data_size must be a non-negative integer`);
      if (!binary || offset + binSize > binary.length) throw bad(`${where}.parameters.binary_data_size runs past the end of the request body`);
      data = tensorDataFromBinary(datatype, binary.subarray(offset, offset + binSize), count, where);
      offset += binSize;
    } else {
      if (raw.data === undefined) throw bad(`${where} has neither data nor parameters.binary_data_size`);
      const flat = flatten(raw.data, where);
      if (flat.length !== count) throw bad(`${where} has ${flat.length} elements, shape [${shape.join(',')}] needs ${count}`);
      data = fromJson(datatype, flat, where);
    }
    return { name, datatype, shape, data };
  });
  if (binary && offset !== binary.length) throw bad(`binary section is ${binary.length} bytes but inputs claim ${offset}`);

  let outputs: string[] | undefined;
  const perOutput = new Map<string, boolean>();
  if (header.outputs !== undefined) {
    if (!Array.isArray(header.outputs) || header.outputs.length > MAX_TENSORS) throw bad('outputs must be an array');
    outputs = header.outputs.map((o, i) => {
      if (!isObj(o) || typeof o.name !== 'string') throw bad(`outputs[${i}].name must be a string`);
      const op = paramsOf(o.parameters, `outputs[${i}]`);
      if (op.binary_data !== undefined) {
        if (typeof op.binary_data !== 'boolean') throw bad(`outputs[${i}].parameters.binary_data must be a boolean`);
        perOutput.set(o.name, op.binary_data);
      }
      if (op.classification !== undefined) throw bad('the classification extension is not supported');
      return o.name;
    });
  }
  const allBinary = params.binary_data_output;
  if (allBinary !== undefined && typeof allBinary !== 'boolean') throw bad('parameters.binary_data_output must be a boolean');
  // Triton's `timeout` parameter is in microseconds.
  const timeout = params.timeout;
  let timeoutMs: number | undefined;
  if (timeout !== undefined) {
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) throw bad('parameters.timeout must be a positive number of microseconds');
    timeoutMs = Math.max(1, timeout / 1000);
  }
  return {
    id,
    request: {
      model,
      ...(version !== undefined ? { version } : {}),
      inputs,
      ...(outputs ? { outputs } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    },
    binaryOutput: (name) => perOutput.get(name) ?? allBinary === true,
  };
}
