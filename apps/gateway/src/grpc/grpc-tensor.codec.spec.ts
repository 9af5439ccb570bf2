import type { InferResult } from '@tandem/inference';
import { describe, expect, it } from 'vitest';
import { decodeGrpcInfer, encodeGrpcInfer } from './grpc-tensor.codec';
import type { ModelInferRequestWire } from './grpc-wire.types';

// Bytes no UTF-8 round trip would keep: NUL, 0xFF, a PNG signature, invalid UTF-8 (0xC3 0x28).
const RAW = [Buffer.from([0x00, 0xff, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(0), Buffer.from([0xc3, 0x28])];
const prefixed = (els: Buffer[]): Buffer => Buffer.concat(els.flatMap((b) => [Buffer.from(Uint32Array.of(b.length).buffer), b]));
const request = (extra: Partial<ModelInferRequestWire>): ModelInferRequestWire => ({
  model_name: 'm',
  model_version: '',
  id: 'r',
  inputs: [{ name: 'b', datatype: 'BYTES', shape: [3], contents: null }],
  outputs: [],
  raw_input_contents: [],
  ...extra,
});
/** What the batcher answers for an identity model: the inputs as outputs. */
const echo = (inputs: InferResult['outputs']): InferResult => ({ model: 'm', version: '1', queueMs: 0, computeMs: 0, batchItems: 1, outputs: inputs });

describe('gRPC tensor codec: BYTES are raw bytes', () => {
  it('bytes_contents in → bytes_contents out, unchanged', () => {
    const d = decodeGrpcInfer(request({ inputs: [{ name: 'b', datatype: 'BYTES', shape: ['3'], contents: { bytes_contents: RAW } }] }));
    expect(d.raw).toBe(false);
    expect(d.request.inputs[0]!.data).toEqual(RAW);
    const out = encodeGrpcInfer(echo(d.request.inputs), d.id, d.raw);
    expect(out.raw_output_contents).toEqual([]);
    expect(out.outputs[0]!.contents!.bytes_contents!.map((b) => b.toString('hex'))).toEqual(RAW.map((b) => b.toString('hex')));
  });

  it('raw_input_contents in → raw_output_contents out, byte for byte; elements are views of the request', () => {
    const raw = prefixed(RAW);
    const d = decodeGrpcInfer(request({ raw_input_contents: [raw] }));
    expect(d.raw).toBe(true);
    const els = d.request.inputs[0]!.data as Uint8Array[];
    expect(els.map((b) => Buffer.from(b).toString('hex'))).toEqual(RAW.map((b) => b.toString('hex')));
    expect(els.every((b) => b.buffer === raw.buffer)).toBe(true);
    const out = encodeGrpcInfer(echo(d.request.inputs), d.id, d.raw);
    expect(out.raw_output_contents).toHaveLength(1);
    expect(out.raw_output_contents[0]!.equals(raw)).toBe(true);
  });

  it('refuses raw BYTES whose elements do not add up to the shape', () => {
    expect(() => decodeGrpcInfer(request({ raw_input_contents: [prefixed(RAW.slice(0, 2))] }))).toThrow(/holds 2 BYTES elements, shape needs 3/);
    expect(() => decodeGrpcInfer(request({ raw_input_contents: [prefixed(RAW).subarray(0, 9)] }))).toThrow(/runs past/);
  });
});
