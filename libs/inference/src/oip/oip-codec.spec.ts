import { describe, expect, it } from 'vitest';
import { floatToHalf, halfToFloat } from '../datatypes';
import { decodeInferRequest } from './oip-decode';
import { encodeInferResponse } from './oip-encode';

describe('OIP codec', () => {
  it('decodes nested and flat JSON data to the same typed array', () => {
    const nested = decodeInferRequest('m', undefined, { inputs: [{ name: 'x', datatype: 'INT32', shape: [2, 2], data: [[1, 2], [3, 4]] }] });
    const flat = decodeInferRequest('m', '3', { inputs: [{ name: 'x', datatype: 'INT32', shape: [2, 2], data: [1, 2, 3, 4] }] });
    expect(nested.request.inputs[0]!.data).toEqual(Int32Array.from([1, 2, 3, 4]));
    expect(flat.request.inputs[0]!.data).toEqual(nested.request.inputs[0]!.data);
    expect(flat.request.version).toBe('3');
  });

  it('maps the Triton `timeout` parameter (µs) to a ms deadline and binary output flags per output', () => {
    const d = decodeInferRequest('m', undefined, {
      id: 'a',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }],
      outputs: [{ name: 'y', parameters: { binary_data: false } }, { name: 'z' }],
      parameters: { timeout: 250_000, binary_data_output: true },
    });
    expect(d.id).toBe('a');
    expect(d.request.timeoutMs).toBe(250);
    expect(d.request.outputs).toEqual(['y', 'z']);
    expect([d.binaryOutput('y'), d.binaryOutput('z')]).toEqual([false, true]);
  });

  it('reads binary sections in input order, copying into aligned arrays', () => {
    const bin = Buffer.alloc(1 + 8 + 2);
    bin.writeFloatLE(1.5, 1);
    bin.writeFloatLE(-2, 5);
    bin.writeInt16LE(-7, 9);
    const d = decodeInferRequest(
      'm',
      undefined,
      {
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
          { name: 'b', datatype: 'INT16', shape: [1], parameters: { binary_data_size: 2 } },
        ],
      },
      bin.subarray(1), // odd offset: the decoder must not build a misaligned view
    );
    expect(Array.from(d.request.inputs[0]!.data as Float32Array)).toEqual([1.5, -2]);
    expect(Array.from(d.request.inputs[1]!.data as Int16Array)).toEqual([-7]);
  });

  it('encodes JSON and binary outputs, with binary_data_size and BYTES length prefixes', () => {
    const enc = encodeInferResponse(
      {
        model: 'm',
        version: '1',
        queueMs: 0,
        computeMs: 0,
        batchItems: 1,
        outputs: [
          { name: 'f', datatype: 'FP16', shape: [2], data: Uint16Array.from([floatToHalf(0.5), floatToHalf(-3)]) },
          { name: 's', datatype: 'BYTES', shape: [2], data: ['ab', ''] },
          { name: 'i', datatype: 'INT64', shape: [1], data: BigInt64Array.from([-5n]) },
        ],
      },
      'req',
      (n) => n === 's',
    );
    expect(enc.header).toEqual({
      model_name: 'm',
      model_version: '1',
      id: 'req',
      outputs: [
        { name: 'f', datatype: 'FP16', shape: [2], data: [0.5, -3] },
        { name: 's', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: 10 } },
        { name: 'i', datatype: 'INT64', shape: [1], data: [-5] },
      ],
    });
    expect(Buffer.concat(enc.binary)).toEqual(Buffer.from([2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0]));
  });

  it('converts half floats both ways, including subnormals, infinities and rounding', () => {
    for (const v of [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.333251953125]) expect(halfToFloat(floatToHalf(v))).toBe(v);
    expect(halfToFloat(floatToHalf(1e6))).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
    expect(halfToFloat(floatToHalf(0.1))).toBeCloseTo(0.1, 3);
  });
});
