import { describe, expect, it } from 'vitest';
import { toNodeWire } from './node-backend/node-replica.wire';
import { decodeInferRequest, tensorDataFromBinary } from './oip/oip-decode';
import { isOwned } from './tensor-ownership';

describe('tensor ownership', () => {
  it('decoded JSON and misaligned binary tensors are the request’s own: moved to the replica thread, not copied', () => {
    const data = Array.from({ length: 2048 }, (_, i) => i); // 8 KiB: above the clone limit
    const d = decodeInferRequest('m', undefined, { inputs: [{ name: 'x', shape: [2048], datatype: 'FP32', data }] });
    const x = d.request.inputs[0]!.data as Float32Array;
    expect(isOwned(x.buffer)).toBe(true);
    expect(toNodeWire(d.request.inputs, false).transfer).toEqual([x.buffer]);
    const body = Buffer.alloc(8193);
    const copied = tensorDataFromBinary('FP32', body.subarray(1), 2048, 'x') as Float32Array; // offset 1: misaligned, copied
    expect(isOwned(copied.buffer)).toBe(true);
  });

  it('small decoded tensors are left unmarked and cloned: marking would materialize their storage', () => {
    const d = decodeInferRequest('m', undefined, { inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [1, 2] }] });
    const x = d.request.inputs[0]!.data as Float32Array;
    expect(isOwned(x.buffer)).toBe(false);
    expect(toNodeWire(d.request.inputs, false).transfer).toEqual([]);
    expect(Array.from(x)).toEqual([1, 2]);
  });

  it('views of a request body and arrays of unknown owner are never moved whole', () => {
    const body = Buffer.from(new ArrayBuffer(16), 0, 16);
    const view = tensorDataFromBinary('FP32', body.subarray(8), 2, 'x') as Float32Array;
    expect(view.buffer).toBe(body.buffer);
    expect(isOwned(view.buffer)).toBe(false);
    const mine = new Float32Array(4);
    const wire = toNodeWire(
      [
        { name: 'a', datatype: 'FP32', shape: [2], data: view },
        { name: 'b', datatype: 'FP32', shape: [4], data: mine },
      ],
      false,
    );
    expect(wire.transfer).not.toContain(body.buffer); // the view is copied alone, then moved
    expect(wire.transfer).not.toContain(mine.buffer); // cloned: the caller keeps it
  });

  it('a large array the caller keeps is copied once and the copy moved; the caller’s array stays intact', () => {
    const mine = new Float32Array(27_648).fill(0.25); // one ppocr_cls image, 110 KB
    const wire = toNodeWire([{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: mine }], false);
    const sent = wire.tensors[0]!.data as Float32Array;
    expect(sent).not.toBe(mine);
    expect(wire.transfer).toEqual([sent.buffer]);
    expect(wire.transfer).not.toContain(mine.buffer);
    expect(Array.from(sent.subarray(0, 3))).toEqual([0.25, 0.25, 0.25]);
    structuredClone(wire.tensors, { transfer: wire.transfer }); // what postMessage does with it
    expect(sent.length).toBe(0); // the copy went
    expect(mine.length).toBe(27_648); // the caller's array did not
    expect(mine[27_647]).toBe(0.25);
  });
});
