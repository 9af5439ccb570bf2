import { describe, expect, it } from 'vitest';
import { decodeInferItem, describeInferItem } from './infer-items';

describe('infer item encodings', () => {
  it('decodes arrays, FP32 base64 and u8 pixels to the same tensor layout', () => {
    const f32 = Buffer.from(new Float32Array([0.5, -2, 3.25]).buffer).toString('base64');
    const u8 = Buffer.from([0, 255, 127]).toString('base64');
    for (const item of [[1, 2, 3], { f32 }, { u8 }]) expect(describeInferItem(item, 3)).toBeNull();
    const out = new Float32Array(9);
    decodeInferItem([1, 2, 3], 3, out, 0);
    decodeInferItem({ f32 }, 3, out, 3);
    decodeInferItem({ u8 }, 3, out, 6);
    expect(Array.from(out.subarray(0, 6))).toEqual([1, 2, 3, 0.5, -2, 3.25]);
    expect(out[6]).toBe(-1);
    expect(out[7]).toBe(1);
    expect(out[8]).toBeCloseTo(-0.0039, 3);
  });

  it('explains what is wrong with a bad item', () => {
    expect(describeInferItem([1, 2], 3)).toMatch(/3 numbers \(got 2\)/);
    expect(describeInferItem([1, 'x', 3], 3)).toMatch(/finite numbers/);
    expect(describeInferItem({ u8: 'AAAA' }, 4)).toMatch(/decode to 4 bytes \(got 3\)/);
    expect(describeInferItem({ f32: '***' }, 1)).toMatch(/base64/);
    expect(describeInferItem({ u8: 'AAAA', extra: 1 }, 3)).toMatch(/must be 3 numbers/);
    expect(describeInferItem(7, 3)).toMatch(/must be 3 numbers/);
  });
});
