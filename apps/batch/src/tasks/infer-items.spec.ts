import type { UnitItemInput } from '@tandem/inference';
import { describe, expect, it } from 'vitest';
import { decodeInferItems, describeInferItem } from './infer-items';

const input = (name: string, datatype: UnitItemInput['datatype'], perItem: number): UnitItemInput => ({ name, datatype, itemShape: [perItem], perItem });
const x3 = [input('x', 'FP32', 3)];

describe('infer item encodings', () => {
  it('decodes arrays, FP32 base64 and u8 pixels to the same tensor layout', () => {
    const f32 = Buffer.from(new Float32Array([0.5, -2, 3.25]).buffer).toString('base64');
    const u8 = Buffer.from([0, 255, 127]).toString('base64');
    for (const item of [[1, 2, 3], { f32 }, { u8 }]) expect(describeInferItem(item, x3)).toBeNull();
    const [t] = decodeInferItems([[1, 2, 3], { f32 }, { u8 }], x3);
    expect(t!.shape).toEqual([3, 3]);
    const out = t!.data as Float32Array;
    expect(Array.from(out.subarray(0, 6))).toEqual([1, 2, 3, 0.5, -2, 3.25]);
    expect(out[6]).toBe(-1);
    expect(out[7]).toBe(1);
    expect(out[8]).toBeCloseTo(-0.0039, 3);
  });

  it('several inputs: an object per item; BYTES as strings or base64 raw bytes, integers and booleans as their arrays', () => {
    const inputs = [input('s', 'BYTES', 1), input('b', 'BYTES', 2), input('n', 'INT64', 2), input('f', 'BOOL', 1), input('p', 'UINT8', 2)];
    const raw = Buffer.from([0x00, 0xff, 0x89]).toString('base64');
    const items = [
      { s: 'héllo', b: ['a', { b64: raw }], n: [1, -2], f: [true], p: { u8: Buffer.from([7, 255]).toString('base64') } },
      { s: { b64: raw }, b: ['', 'z'], n: [2 ** 40, 0], f: [0], p: [1, 2] },
    ];
    for (const it of items) expect(describeInferItem(it, inputs)).toBeNull();
    const [s, b, n, f, p] = decodeInferItems(items, inputs);
    const hex = (d: unknown): string[] => (d as Uint8Array[]).map((e) => Buffer.from(e).toString('hex'));
    expect([s!.shape, hex(s!.data)]).toEqual([
      [2, 1],
      ['68c3a96c6c6f', '00ff89'],
    ]);
    expect([b!.shape, hex(b!.data)]).toEqual([
      [2, 2],
      ['61', '00ff89', '', '7a'],
    ]);
    expect(Array.from(n!.data as BigInt64Array)).toEqual([1n, -2n, 2n ** 40n, 0n]);
    expect(Array.from(f!.data as Uint8Array)).toEqual([1, 0]);
    expect(Array.from(p!.data as Uint8Array)).toEqual([7, 255, 1, 2]);
  });

  it('explains what is wrong with a bad item', () => {
    expect(describeInferItem([1, 2], x3)).toMatch(/3 numbers \(got 2\)/);
    expect(describeInferItem([1, 'x', 3], x3)).toMatch(/finite numbers/);
    expect(describeInferItem({ u8: 'AAAA' }, [input('x', 'FP32', 4)])).toMatch(/decode to 4 bytes \(got 3\)/);
    expect(describeInferItem({ f32: '***' }, [input('x', 'FP32', 1)])).toMatch(/base64/);
    expect(describeInferItem({ u8: 'AAAA', extra: 1 }, x3)).toMatch(/must be 3 numbers/);
    expect(describeInferItem(7, x3)).toMatch(/must be 3 numbers/);
    expect(describeInferItem([300], [input('x', 'UINT8', 1)])).toMatch(/UINT8 values only \(got 300\)/);
    expect(describeInferItem(7, [input('s', 'BYTES', 1)])).toMatch(/strings or \{"b64": base64\}/);
    const two = [input('a', 'FP32', 1), input('s', 'BYTES', 1)];
    expect(describeInferItem({ a: [1] }, two)).toMatch(/misses "s"/);
    expect(describeInferItem({ a: [1], s: 'x', z: 1 }, two)).toMatch(/"z", which is not an input/);
    expect(describeInferItem({ a: [1, 2], s: 'x' }, two)).toMatch(/"a" must hold 1 numbers/);
  });
});
