import { Prng } from './prng';

/** One HTTP request the fuzzer sends. */
export interface FuzzCase {
  kind: string;
  method: 'POST' | 'GET';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const WEIRD_VALUES: unknown[] = [null, true, false, 0, -1, 1e308, -0.0, '', 'x', 'NaN', [], {}, [[]], { a: 1 }, '💥', 2 ** 53 + 1, -(2 ** 31), 'FP32'];
const DATATYPES = ['FP32', 'FP64', 'FP16', 'INT8', 'INT32', 'INT64', 'UINT8', 'UINT64', 'BOOL', 'BYTES', 'fp32', 'FLOAT', ''];

function validScorer(r: Prng): Record<string, unknown> {
  const n = r.int(1, 4);
  return { id: `f${r.int(0, 1e6)}`, inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 1], data: Array.from({ length: n }, () => r.next() * 2 - 1) }] };
}

/** Replace one random leaf/field of a JSON value with a weird value (structure-aware mutation). */
function mutateJson(r: Prng, v: unknown, depth = 0): unknown {
  if (depth > 6 || v === null || typeof v !== 'object' || r.chance(0.25)) return r.pick(WEIRD_VALUES);
  if (Array.isArray(v)) {
    if (v.length === 0 || r.chance(0.15)) return [...v, r.pick(WEIRD_VALUES)];
    const i = r.int(0, v.length - 1);
    const out = [...v];
    out[i] = mutateJson(r, v[i], depth + 1);
    return out;
  }
  const o = { ...(v as Record<string, unknown>) };
  const keys = Object.keys(o);
  if (keys.length === 0 || r.chance(0.1)) o[r.pick(['extra', 'shape', 'data', 'parameters', '__proto__', 'constructor'])] = r.pick(WEIRD_VALUES);
  else if (r.chance(0.15)) delete o[r.pick(keys)];
  else {
    const k = r.pick(keys);
    o[k] = mutateJson(r, o[k], depth + 1);
  }
  return o;
}

/** Byte-level mutation of serialized text: flips, truncation, duplication, insertion. */
function mutateBytes(r: Prng, b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (r.int(0, 3)) {
    case 0:
      for (let i = 0; i < r.int(1, 4); i++) if (out.length) out[r.int(0, out.length - 1)] = r.int(0, 255);
      return out;
    case 1:
      return out.subarray(0, r.int(0, out.length));
    case 2:
      return Buffer.concat([out, out.subarray(r.int(0, out.length))]);
    default: {
      const at = r.int(0, out.length);
      return Buffer.concat([
        out.subarray(0, at),
        Buffer.from(r.pick(['NaN', 'Infinity', '-', '"', ']', '}', '\\u0000', '9'.repeat(400), '[[[[[[', ','])),
        out.subarray(at),
      ]);
    }
  }
}

function deepNest(depth: number): Buffer {
  return Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,1],"data":${'['.repeat(depth)}1${']'.repeat(depth)}}]}`);
}

/** Binary tensor extension: valid or broken header lengths and binary sizes. */
function binaryCase(r: Prng, model: string): FuzzCase {
  const items = model === 'ppocr_cls' ? r.int(1, 2) : r.int(1, 8);
  const per = model === 'ppocr_cls' ? 3 * 48 * 192 : 1;
  const shape = model === 'ppocr_cls' ? [items, 3, 48, 192] : [items, 1];
  let bytes = Buffer.alloc(items * per * 4);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeFloatLE(r.next(), i);
  let declared = bytes.length;
  const variant = r.int(0, 6);
  if (variant === 1) bytes = bytes.subarray(0, r.int(0, bytes.length - 1)); // truncated payload
  if (variant === 2) declared = declared + r.int(1, 1e6); // claims more than sent
  if (variant === 3) declared = -r.int(1, 100);
  const header = json({
    inputs: [{ name: 'x', datatype: r.chance(0.8) ? 'FP32' : r.pick(DATATYPES), shape, parameters: { binary_data_size: variant === 4 ? 'big' : declared } }],
    parameters: { binary_data_output: r.chance(0.5) },
  });
  let hlen: string = String(header.length);
  if (variant === 5) hlen = r.pick(['-1', 'abc', String(header.length + bytes.length + r.int(1, 1000)), '0', '1e3', ' 12', '99999999999999999999']);
  if (variant === 6) hlen = String(r.int(0, header.length));
  return {
    kind: `oip-binary-v${variant}`,
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': hlen },
    body: Buffer.concat([header, bytes]),
  };
}

function oipCase(r: Prng): FuzzCase {
  const model = r.chance(0.8) ? 'scorer' : r.pick(['ppocr_cls', 'nope', '..%2F..', 'scorer/versions/9', 'x'.repeat(300)]);
  const path = `/v2/models/${model}/infer`;
  const headers = { 'content-type': 'application/json' };
  const kind = r.int(0, 9);
  if (kind <= 3) return { kind: 'oip-json-mutated', method: 'POST', path, headers, body: json(mutateJson(r, validScorer(r))) };
  if (kind === 4) return { kind: 'oip-bytes-mutated', method: 'POST', path, headers, body: mutateBytes(r, json(validScorer(r))) };
  if (kind === 5) {
    const shape = Array.from({ length: r.int(0, 20) }, () => r.pick([-1, 0, 1, 3, 2 ** 31, 1e9, -5, 1.5]));
    return {
      kind: 'oip-huge-or-negative-shape',
      method: 'POST',
      path,
      headers,
      body: json({ inputs: [{ name: 'x', datatype: r.pick(DATATYPES), shape, data: [1, 2, 3] }] }),
    };
  }
  if (kind === 6) return { kind: 'oip-deep-nesting', method: 'POST', path, headers, body: deepNest(r.pick([20, 200, 5_000, 50_000])) };
  if (kind === 7) return binaryCase(r, r.chance(0.5) ? 'scorer' : 'ppocr_cls');
  if (kind === 8)
    return {
      kind: 'oip-wrong-content-type',
      method: 'POST',
      path,
      headers: { 'content-type': r.pick(['text/plain', 'application/xml', 'multipart/form-data; boundary=x', '']) },
      body: json(validScorer(r)),
    };
  return {
    kind: 'oip-get-metadata',
    method: 'GET',
    path: r.pick([`/v2/models/${model}`, `/v2/models/${model}/ready`, '/v2', `/v2/models/${model}/versions/${r.pick(['1', '0', '-1', 'abc', '99999999999'])}`]),
    headers: {},
  };
}

function validBatch(r: Prng): Record<string, unknown> {
  const n = r.int(1, 20);
  return { task: 'score', items: Array.from({ length: n }, () => r.int(0, 1000)), reducer: 'summarize', chunkSize: r.int(1, 100) };
}

function batchCase(r: Prng): FuzzCase {
  const kind = r.int(0, 5);
  const headers = { 'content-type': 'application/json' };
  if (kind <= 2) return { kind: 'batch-json-mutated', method: 'POST', path: '/v1/batches', headers, body: json(mutateJson(r, validBatch(r))) };
  if (kind === 3) return { kind: 'batch-bytes-mutated', method: 'POST', path: '/v1/batches', headers, body: mutateBytes(r, json(validBatch(r))) };
  if (kind === 4) {
    const lines = Array.from({ length: r.int(0, 30) }, () =>
      r.chance(0.9) ? String(r.int(0, 100)) : r.pick(['{', 'x', '"a"', '[1', 'null', '-', '1e999', '']),
    );
    return {
      kind: 'batch-ndjson',
      method: 'POST',
      path: `/v1/batches?task=${r.pick(['score', 'nope', ''])}&reducer=${r.pick(['summarize', 'sum', 'nope'])}&chunkSize=${r.pick(['10', '0', '-1', 'abc', '99999999'])}`,
      headers: { 'content-type': 'application/x-ndjson' },
      body: Buffer.from(lines.join('\n')),
    };
  }
  return {
    kind: 'batch-get',
    method: r.pick(['GET', 'POST'] as const),
    path: r.pick([
      '/v1/batches',
      `/v1/batches?limit=${r.pick(['0', '-1', 'x', '1000000', '5'])}&cursor=${r.pick(['', 'abc', '1'])}`,
      '/v1/batches/not-a-uuid',
      '/v1/batches/00000000-0000-0000-0000-000000000000/results',
      '/v1/batches/00000000-0000-0000-0000-000000000000/cancel',
    ]),
    headers: {},
  };
}

/** The i-th case of a run with this seed: 70% OIP REST, 30% batch submissions and control. */
export function fuzzCase(seed: number, i: number): { target: 'gateway' | 'batch'; c: FuzzCase } {
  const r = new Prng(seed * 1_000_003 + i);
  return r.chance(0.7) ? { target: 'gateway', c: oipCase(r) } : { target: 'batch', c: batchCase(r) };
}
