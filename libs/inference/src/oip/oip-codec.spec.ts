import { describe, expect, it } from 'vitest';
import { floatToHalf, halfToFloat } from '../datatypes';
import { decodeInferRequest } from './oip-decode';
import { encodeInferResponse } from './oip-encode';

describe('OIP codec', () => {
  it('decodes nested and flat JSON data to the same typed array', () => {
    const nested = decodeInferRequest('m', undefined, {
      inputs: [
        {
          name: 'x',
          datatype: 'INT32',
          shape: [2, 2],
          data: [
            [1, 2],
            [3, 4],
          ],
        },
      ],
    });
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
          { name: 's', datatype: 'BYTES', shape: [2], data: [Uint8Array.of(0x61, 0x62), new Uint8Array(0)] },
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

  it('BYTES are raw bytes: binary elements (not UTF-8) come back unchanged; JSON strings are their UTF-8 bytes and go out as strings', () => {
    const png = Uint8Array.of(0x00, 0xff, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a); // NUL, 0xFF, a PNG signature
    const els = [png, new Uint8Array(0), Uint8Array.of(0xc3, 0x28)]; // 0xC3 0x28: invalid UTF-8
    const wire = Buffer.concat(els.flatMap((b) => [Buffer.from(Uint32Array.of(b.length).buffer), Buffer.from(b)]));
    const d = decodeInferRequest(
      'm',
      undefined,
      { inputs: [{ name: 'b', datatype: 'BYTES', shape: [3], parameters: { binary_data_size: wire.length } }] },
      Buffer.concat([Buffer.from('x'), wire]).subarray(1),
    );
    const got = d.request.inputs[0]!.data as Uint8Array[];
    expect(got.map((b) => Array.from(b))).toEqual(els.map((b) => Array.from(b)));
    expect(got.every((b) => b.constructor === Uint8Array)).toBe(true);
    const r = { model: 'm', version: '1', queueMs: 0, computeMs: 0, batchItems: 1, outputs: [{ ...d.request.inputs[0]!, name: 'o' }] };
    expect(Buffer.concat(encodeInferResponse(r, undefined, () => true).binary).equals(wire)).toBe(true);

    const j = decodeInferRequest('m', undefined, { inputs: [{ name: 's', datatype: 'BYTES', shape: [2], data: ['héllo', ''] }] });
    expect((j.request.inputs[0]!.data as Uint8Array[]).map((b) => Buffer.from(b).toString('hex'))).toEqual(['68c3a96c6c6f', '']);
    const back = encodeInferResponse({ ...r, outputs: [{ ...j.request.inputs[0]!, name: 'o' }] }, undefined, () => false);
    expect(back.header.outputs[0]!.data).toEqual(['héllo', '']);
  });

  it('converts half floats both ways, including subnormals, infinities and rounding', () => {
    for (const v of [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.333251953125]) expect(halfToFloat(floatToHalf(v))).toBe(v);
    expect(halfToFloat(floatToHalf(1e6))).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
    expect(halfToFloat(floatToHalf(0.1))).toBeCloseTo(0.1, 3);
  });
});
