import { resolve } from 'node:path';
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { decodeModelInferRequest, modelOfHead, rawContentsOffset } from './grpc-infer.decode';
import { encodeModelInferResponse } from './grpc-infer.encode';
import { PROTO_OPTIONS } from './grpc-server.service';
import type { ModelInferResponseWire } from './grpc-wire.types';

type Codec = { requestSerialize: (o: object) => Buffer; requestDeserialize: (b: Buffer) => unknown; responseDeserialize: (b: Buffer) => unknown };
const defs = loadSync(resolve(__dirname, 'proto', 'grpc_service.proto'), PROTO_OPTIONS);
const modelInfer = (defs['inference.GRPCInferenceService'] as unknown as { ModelInfer: Codec }).ModelInfer;
/** Longs as proto-loader writes them (strings): ours are numbers when exact. */
const norm = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && Number.isInteger(x) ? String(x) : Buffer.isBuffer(x) ? x.toString('hex') : x)));

describe('hand-written ModelInfer codec', () => {
  it('decodes what proto-loader encodes, like proto-loader; raw contents are views of the message', () => {
    const raw = Buffer.from(new Float32Array([1.5, -2, 3]).buffer);
    const req = {
      model_name: 'm',
      model_version: '2',
      id: 'r-1',
      parameters: { timeout: { int64_param: '123456789012' }, flag: { bool_param: true }, s: { string_param: 'x' } },
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [1, 3], parameters: {} },
        {
          name: 'b',
          datatype: 'INT64',
          shape: [-2, 4],
          contents: {
            int64_contents: ['-5', '9007199254740993'],
            int_contents: [-7, 8],
            fp32_contents: [0.5],
            bool_contents: [true, false],
            uint64_contents: ['18446744073709551615'],
            bytes_contents: [Buffer.from([0, 255])],
          },
        },
      ],
      outputs: [{ name: 'y', parameters: { binary_data: { bool_param: true } } }],
      raw_input_contents: [raw],
    };
    const wire = modelInfer.requestSerialize(req);
    const ours = decodeModelInferRequest(wire);
    const theirs = modelInfer.requestDeserialize(wire) as Record<string, unknown>;
    expect(ours.malformed).toBeUndefined();
    expect(norm({ ...ours, parameters: undefined })).toEqual(norm({ ...theirs, parameters: undefined }));
    expect(ours.parameters).toEqual({
      timeout: { int64_param: '123456789012', parameter_choice: 'int64_param' },
      flag: { bool_param: true, parameter_choice: 'bool_param' },
      s: { string_param: 'x', parameter_choice: 'string_param' },
    });
    expect(ours.raw_input_contents[0]!.buffer).toBe(wire.buffer);
    expect(ours.inputs[1]!.shape).toEqual([-2, 4]);
  });

  it('marks a malformed message instead of throwing', () => {
    expect(decodeModelInferRequest(Buffer.from([0x0a, 0x10, 0x61])).malformed).toMatch(/malformed ModelInferRequest/);
    expect(decodeModelInferRequest(Buffer.from([0x0f])).malformed).toMatch(/wire type/);
  });

  it('encodes responses proto-loader decodes to the same message', () => {
    const res: ModelInferResponseWire = {
      model_name: 'm',
      model_version: '1',
      id: '',
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [2, 1] },
        {
          name: 'z',
          datatype: 'INT32',
          shape: [3],
          contents: {
            int_contents: [-1, 0, 300],
            fp64_contents: [0.25],
            int64_contents: ['-9007199254740993'],
            bool_contents: [true],
            bytes_contents: [Buffer.from('hé')],
          },
        },
      ],
      raw_output_contents: [Buffer.from(new Float32Array([0.5, 0.25]).buffer)],
    };
    const back = modelInfer.responseDeserialize(encodeModelInferResponse(res)) as ModelInferResponseWire;
    expect(back.model_name).toBe('m');
    expect(back.outputs[0]).toMatchObject({ name: 'y', datatype: 'FP32', shape: ['2', '1'], contents: null });
    expect(back.outputs[1]!.shape).toEqual(['3']);
    expect(back.outputs[1]!.contents).toMatchObject({
      int_contents: [-1, 0, 300],
      fp64_contents: [0.25],
      int64_contents: ['-9007199254740993'],
      bool_contents: [true],
    });
    expect(back.outputs[1]!.contents!.bytes_contents![0]!.toString()).toBe('hé');
    expect(back.raw_output_contents[0]!.equals(res.raw_output_contents[0]!)).toBe(true);
  });
});

describe("a ModelInferRequest's first bytes", () => {
  const raw = Buffer.from(new Float32Array(64).fill(0.5).buffer);
  const msg = (o: object): Buffer =>
    modelInfer.requestSerialize({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 64] }], raw_input_contents: [raw], ...o });

  it('name the model and version when they hold them; undefined when the head is cut before they are settled', () => {
    const m = msg({ model_name: 'ppocr_cls', model_version: '2' });
    expect(modelOfHead(m.subarray(0, 40), false)).toEqual({ model: 'ppocr_cls', version: '2' });
    expect(modelOfHead(msg({ model_name: 'scorer' }).subarray(0, 30), false)).toEqual({ model: 'scorer', version: '' });
    expect(modelOfHead(m.subarray(0, 5), false)).toBeUndefined(); // inside model_name
    expect(modelOfHead(m.subarray(0, 11), false)).toBeUndefined(); // after model_name: model_version may follow
    const bare = modelInfer.requestSerialize({ model_name: 'a' });
    expect(modelOfHead(bare, true)).toEqual({ model: 'a', version: '' });
    expect(modelOfHead(msg({}), true)).toBeUndefined(); // no model_name
  });

  it('locate the raw contents, so the server can place them 8-byte aligned', () => {
    for (const name of ['a', 'ppocr_cls', 'x'.repeat(130)]) {
      const m = msg({ model_name: name, id: 'r' });
      const at = rawContentsOffset(m);
      expect(m.subarray(at, at + raw.length).equals(raw), name).toBe(true);
      expect(rawContentsOffset(m.subarray(0, at - 1))).toBe(-1);
    }
  });
});
