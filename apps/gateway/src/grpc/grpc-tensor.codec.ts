import { DomainException } from '@tandem/shared';
import {
  binaryData,
  DATATYPES,
  elementCount,
  isOipDatatype,
  markOwned,
  tensorDataFromBinary,
  type InferRequest,
  type InferResult,
  type InferTensor,
  type OipDatatype,
  type TensorData,
} from '@tandem/inference';
import type { InferParameterWire, InferTensorContentsWire, Long, ModelInferRequestWire, ModelInferResponseWire } from './grpc-wire.types';

const MAX_TENSORS = 256;
const MAX_RANK = 16;
const MAX_ELEMENTS = 2 ** 31 - 1;
const bad = (msg: string): DomainException => DomainException.invalid(msg);

export interface DecodedGrpcInfer {
  request: InferRequest;
  id: string;
  /** Answer with raw_output_contents (the client sent raw inputs). */
  raw: boolean;
}

/** Which typed-contents field carries each datatype (FP16 has none: raw only). */
const FIELD: Readonly<Record<OipDatatype, keyof InferTensorContentsWire | undefined>> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP16: undefined,
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

const RANGE: Partial<Record<OipDatatype, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  UINT8: [0, 255],
  UINT16: [0, 65535],
};

function toInt(v: Long, where: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n)) throw bad(`${where} must be an integer, got ${String(v).slice(0, 30)}`);
  return n;
}

function shapeOf(shape: Long[], where: string): number[] {
  if (shape.length > MAX_RANK) throw bad(`${where}.shape has more than ${MAX_RANK} dimensions`);
  const dims = shape.map((d, i) => toInt(d, `${where}.shape[${i}]`));
  if (dims.some((d) => d < 0)) throw bad(`${where}.shape must hold non-negative integers, got [${dims.join(',')}]`);
  if (elementCount(dims) > MAX_ELEMENTS) throw bad(`${where}.shape [${dims.join(',')}] is too large`);
  return dims;
}

function fromContents(dt: OipDatatype, c: InferTensorContentsWire, count: number, where: string): TensorData {
  const field = FIELD[dt];
  if (!field) throw bad(`${where}: ${dt} must be sent in raw_input_contents`);
  const values = (c[field] ?? []) as unknown[];
  if (values.length !== count) throw bad(`${where}.contents.${field} holds ${values.length} elements, shape needs ${count}`);
  // BYTES elements are the request's own Buffers: raw bytes, whatever they hold.
  if (dt === 'BYTES') return values as Buffer[];
  const out = DATATYPES[dt].make(count);
  if (dt === 'INT64' || dt === 'UINT64') {
    const big = out as BigInt64Array | BigUint64Array;
    for (let i = 0; i < count; i++) {
      try {
        big[i] = BigInt(values[i] as Long);
      } catch {
        throw bad(`${where}.contents.${field}[${i}] is not an integer`);
      }
    }
    return markOwned(out);
  }
  const range = RANGE[dt];
  const arr = out as Float32Array;
  for (let i = 0; i < count; i++) {
    const v = values[i];
    const n = typeof v === 'boolean' ? (v ? 1 : 0) : (v as number);
    if (range && (n < range[0] || n > range[1])) throw bad(`${where}.contents.${field}[${i}] = ${n} is not a valid ${dt}`);
    arr[i] = n;
  }
  return markOwned(out);
}

/** Triton's `timeout` parameter is in microseconds; the client's gRPC deadline also bounds it. */
function timeoutOf(params: Record<string, InferParameterWire> | undefined, deadlineMs: number | undefined): number | undefined {
  const p = params?.timeout;
  let fromParam: number | undefined;
  if (p) {
    if (p.parameter_choice !== 'int64_param' || p.int64_param === undefined) throw bad('parameters.timeout must be an int64 of microseconds');
    const us = toInt(p.int64_param, 'parameters.timeout');
    if (us <= 0) throw bad('parameters.timeout must be positive');
    fromParam = Math.max(1, us / 1000);
  }
  if (deadlineMs === undefined) return fromParam;
  return fromParam === undefined ? deadlineMs : Math.min(fromParam, deadlineMs);
}

export function decodeGrpcInfer(req: ModelInferRequestWire, deadlineMs?: number): DecodedGrpcInfer {
  if (!req.model_name) throw bad('model_name is required');
  const inputs = req.inputs ?? [];
  if (inputs.length === 0) throw bad('inputs must not be empty');
  if (inputs.length > MAX_TENSORS) throw bad(`at most ${MAX_TENSORS} inputs`);
  const raw = (req.raw_input_contents ?? []).length > 0;
  if (raw && req.raw_input_contents.length !== inputs.length) {
    throw bad(`raw_input_contents has ${req.raw_input_contents.length} entries for ${inputs.length} inputs`);
  }
  const seen = new Set<string>();
  const tensors: InferTensor[] = inputs.map((t, i) => {
    const where = `inputs[${i}]`;
    if (!t.name) throw bad(`${where}.name is required`);
    if (seen.has(t.name)) throw bad(`input '${t.name}' appears twice`);
    seen.add(t.name);
    if (!isOipDatatype(t.datatype)) throw bad(`${where}.datatype '${String(t.datatype).slice(0, 20)}' is not an OIP datatype`);
    const shape = shapeOf(t.shape ?? [], where);
    const count = elementCount(shape);
    let data: TensorData;
    if (raw) {
      if (t.contents && Object.values(t.contents).some((v) => Array.isArray(v) && v.length > 0)) {
        throw bad(`${where}: contents must be empty when raw_input_contents is used`);
      }
      data = tensorDataFromBinary(t.datatype, req.raw_input_contents[i]!, count, `raw_input_contents[${i}]`);
    } else {
      if (!t.contents) throw bad(`${where}.contents is required (or use raw_input_contents)`);
      data = fromContents(t.datatype, t.contents, count, where);
    }
    return { name: t.name, datatype: t.datatype, shape, data };
  });
  const outputs = (req.outputs ?? []).map((o, i) => {
    if (!o.name) throw bad(`outputs[${i}].name is required`);
    return o.name;
  });
  const timeoutMs = timeoutOf(req.parameters, deadlineMs);
  const request: InferRequest = {
    model: req.model_name,
    ...(req.model_version ? { version: req.model_version } : {}),
    inputs: tensors,
    ...(outputs.length ? { outputs } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  };
  return { request, id: req.id ?? '', raw };
}

function toContents(t: InferTensor): InferTensorContentsWire {
  const field = FIELD[t.datatype]!;
  const d = t.data;
  if (t.datatype === 'BYTES') return { bytes_contents: (d as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) };
  if (t.datatype === 'BOOL') return { bool_contents: Array.from(d as Uint8Array, (v) => v !== 0) };
  if (t.datatype === 'INT64' || t.datatype === 'UINT64') return { [field]: Array.from(d as BigInt64Array, (v) => v.toString()) };
  return { [field]: Array.from(d as Float32Array) };
}

export function encodeGrpcInfer(r: InferResult, id: string, raw: boolean): ModelInferResponseWire {
  // FP16 has no typed field, so any FP16 output makes the whole response raw.
  const useRaw = raw || r.outputs.some((o) => o.datatype === 'FP16');
  return {
    model_name: r.model,
    model_version: r.version,
    id,
    outputs: r.outputs.map((o) => ({
      name: o.name,
      datatype: o.datatype,
      shape: o.shape,
      ...(useRaw ? {} : { contents: toContents(o) }),
    })),
    raw_output_contents: useRaw ? r.outputs.map((o) => binaryData(o)) : [],
  };
}
