import { describe, expect, it } from 'vitest';
import { NotFast, NumArray, parseTensorJson } from './tensor-json';

/** NumArrays back to plain arrays: what JSON.parse gives. */
const plain = (v: unknown): unknown =>
  v instanceof NumArray ? v.toArray() : Array.isArray(v) ? v.map(plain) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;

describe('tensor-json: what JSON.parse gives, long number arrays as NumArrays, or NotFast', () => {
  const long = (f: (i: number) => string): string => `[${Array.from({ length: 100 }, (_, i) => f(i)).join(',')}]`;
  const ok = [
    `{"custom_id":"r1","body":{"inputs":[{"name":"x","shape":[1,100],"datatype":"FP32","data":${long((i) => String((i % 3) - 1))}}]}}`,
    ` { "a" : [ 1 , -0 , 2.5e-3 , 1E+2 , 0.1 , 123456789012345678 , -9007199254740993 ] , "b" : true , "c" : null , "d" : false } `,
    `{"s":"é \\u00e9 \\" \\\\ \\n","e":[],"o":{},"n":[[1,2],[3,[4]]],"m":[1,"x",2]}`,
    long((i) => (i % 7 === 0 ? '1.5e-7' : String(i * 1e10))),
    long((i) => (i % 2 ? '-0' : '3.4028234663852886e38')),
    `{"k":1,"k":2}`,
    `[1, 2 ,3 ]`,
  ];
  it('reads valid JSON exactly as JSON.parse', () => {
    for (const s of ok) expect([s, plain(parseTensorJson(Buffer.from(s)))]).toEqual([s, JSON.parse(s)]);
    const v = parseTensorJson(Buffer.from(ok[0]!)) as { body: { inputs: { data: unknown }[] } };
    expect(v.body.inputs[0]!.data).toBeInstanceOf(NumArray);
    expect(Object.is((plain(parseTensorJson(Buffer.from('[-0]'))) as number[])[0], -0)).toBe(true);
  });
  it('never accepts what JSON.parse refuses (and leaves __proto__, BOMs, raw controls to it)', () => {
    const bad = ['[01]', '[1.]', '[.5]', '[1e]', '[-]', '[1,]', '[,1]', '{"a":1,}', '{a:1}', '"x\u0001"', '[1 2]', 'tru', 'nul', '{"a":1}x', '', '  ', '[1,2', '{"a"', '"abc', '\ufeff{}', '{"__proto__":1}', "['a']", '[NaN]', '[Infinity]', '[+1]', '[0x1]'];
    for (const s of bad) {
      let fast: unknown = 'threw';
      try {
        fast = parseTensorJson(Buffer.from(s));
      } catch (e) {
        expect(e).toBeInstanceOf(NotFast);
      }
      let want: unknown = 'threw';
      try {
        want = JSON.parse(s);
      } catch {
        want = 'threw';
      }
      // Either it refuses, or (the __proto__ case) JSON.parse would have accepted too.
      if (fast !== 'threw') expect(plain(fast)).toEqual(want);
      else if (want === 'threw') expect(fast).toBe('threw');
    }
  });
});
