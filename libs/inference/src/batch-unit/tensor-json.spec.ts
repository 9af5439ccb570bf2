import { describe, expect, it } from 'vitest';
import { NotFast, NumArray, parseTensorJson, TensorJsonReader } from './tensor-json';

/** NumArrays back to plain arrays. */
const plain = (v: unknown): unknown =>
  v instanceof NumArray
    ? v.toArray()
    : Array.isArray(v)
      ? v.map(plain)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
        : v;
/** What the reader must give: JSON.parse, with every array of more than 64 numbers (only) rounded to FP32. */
const want = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.length > 64 && v.every((x) => typeof x === 'number')
      ? v.map((x: number) => Math.fround(x))
      : v.map(want)
    : v && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, want(x)]))
      : v;
const threw = (f: () => unknown): unknown => {
  try {
    return f();
  } catch (e) {
    return e instanceof NotFast ? 'NotFast' : e;
  }
};
/** Same float32 values, bit for bit (-0 and 0 told apart). */
const sameBits = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
};

describe('tensor-json: what JSON.parse gives, long number arrays as FP32 NumArrays in an arena, or NotFast', () => {
  const long = (f: (i: number) => string, n = 100): string => `[${Array.from({ length: n }, (_, i) => f(i)).join(',')}]`;
  const ok = [
    `{"custom_id":"r1","body":{"inputs":[{"name":"x","shape":[1,100],"datatype":"FP32","data":${long((i) => String((i % 3) - 1))}}]}}`,
    ` { "a" : [ 1 , -0 , 2.5e-3 , 1E+2 , 0.1 , 123456789012345678 , -9007199254740993 ] , "b" : true , "c" : null , "d" : false } `,
    `{"s":"é \\u00e9 \\" \\\\ \\n","e":[],"o":{},"n":[[1,2],[3,[4]]],"m":[1,"x",2]}`,
    long((i) => (i % 7 === 0 ? '1.5e-7' : String(i * 1e10))),
    long((i) => (i % 2 ? '-0' : '3.4028234663852886e38')),
    long((i) => (i % 3 ? ` ${i - 50} ` : `\n-${i}.25\t`)),
    long((i) => ['0', '-0', '9', '-9', '10', '-10', '0.0', '-0.0', '0e5', '1e0', '-1E-0'][i % 11]!),
    `[${long((i) => String(i))},${long((i) => String(-i))},[1,2]]`,
    long((i) => (i === 80 ? '"x"' : String(i))),
    long((i) => (i === 80 ? 'null' : String(i))),
    `{"k":1,"k":2}`,
    `[1, 2 ,3 ]`,
  ];

  it('reads valid JSON exactly as JSON.parse, long number arrays rounded to FP32 as the decoder stores them', () => {
    for (const s of ok) expect([s, plain(parseTensorJson(Buffer.from(s)))]).toEqual([s, want(JSON.parse(s))]);
    const v = parseTensorJson(Buffer.from(ok[0]!)) as { body: { inputs: { data: unknown }[] } };
    expect(v.body.inputs[0]!.data).toBeInstanceOf(NumArray);
    expect(Object.is((plain(parseTensorJson(Buffer.from('[-0]'))) as number[])[0], -0)).toBe(true);
    // -0 in a long array stays -0 (the fast one-digit path too).
    const z = parseTensorJson(Buffer.from(long(() => '-0'))) as NumArray;
    expect(sameBits(z.values, new Float32Array(100).fill(-0))).toBe(true);
  });

  it('every kind of number in a long array is Math.fround(JSON.parse(text)), bit for bit', () => {
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const texts: string[] = [];
    for (let k = 0; k < 60_000; k++) {
      const kind = k % 12;
      const x = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 20 - 10);
      if (kind === 0)
        texts.push(String(x)); // shortest double, up to 17 digits
      else if (kind === 1)
        texts.push(String(Math.fround(x))); // a float32 printed as a double (numpy's tolist())
      else if (kind === 2) texts.push(x.toPrecision(1 + Math.floor(rnd() * 21)));
      else if (kind === 3) texts.push(x.toExponential(Math.floor(rnd() * 20)).replace('e+', rnd() < 0.5 ? 'E+' : 'e'));
      else if (kind === 4) texts.push((rnd() * 255).toFixed(Math.floor(rnd() * 8)));
      else if (kind === 5) {
        // Exactly between two float32s, and a hair either side: where rounding twice would go wrong.
        f32[0] = x;
        const a = f32[0]!;
        u32[0] = u32[0]! + 1;
        const mid = (a + f32[0]!) / 2;
        const hair = [0, 1e-17, -1e-17, 1e-9, -1e-9][Math.floor(rnd() * 5)]! * Math.abs(mid);
        texts.push((mid + hair).toPrecision(17 + Math.floor(rnd() * 4)));
      } else if (kind === 6)
        texts.push(String(Math.round(x * 1e12))); // long integers (> 15 digits, > 2^24)
      else if (kind === 7)
        texts.push(
          [
            '1e-45',
            '1.4e-45',
            '7e-46',
            '1e-40',
            '1.1754943508222875e-38',
            '3.4028235e38',
            '3.4028236e38',
            '1e39',
            '-1e400',
            '1e-400',
            '2e-23',
            '0.000000000000000000000001',
          ][k % 12]!,
        );
      else if (kind === 8) texts.push(`${1 + Math.floor(rnd() * 9)}${'0'.repeat(Math.floor(rnd() * 30))}.${'0'.repeat(Math.floor(rnd() * 30))}1`);
      else if (kind === 9) texts.push(`0.${'0'.repeat(Math.floor(rnd() * 25))}${Math.floor(rnd() * 1e9)}`);
      else if (kind === 10) texts.push(`${Math.floor(rnd() * 1e6)}.${Math.floor(rnd() * 1e15)}e${Math.floor(rnd() * 60 - 30)}`);
      else texts.push(String(2 ** Math.floor(rnd() * 60 - 30) * (rnd() < 0.5 ? -1 : 1))); // powers of two
    }
    for (let from = 0; from < texts.length; from += 1000) {
      const part = texts.slice(from, from + 1000);
      const s = `[${part.join(',')}]`;
      const got = parseTensorJson(Buffer.from(s)) as NumArray;
      const exp = Float32Array.from(JSON.parse(s) as number[]);
      if (!sameBits(got.values, exp)) {
        const i = got.values.findIndex((v, j) => !Object.is(v, exp[j]));
        expect(`${part[i]} → ${got.values[i]}`).toBe(`${part[i]} → ${exp[i]}`);
      }
    }
  });

  it('never accepts what JSON.parse refuses (and leaves __proto__, BOMs, raw controls to it)', () => {
    const n = (x: string): string => long((i) => (i === 70 ? x : String(i % 3)));
    const bad = [
      '[01]',
      '[1.]',
      '[.5]',
      '[1e]',
      '[-]',
      '[1,]',
      '[,1]',
      '{"a":1,}',
      '{a:1}',
      '"x\u0001"',
      '[1 2]',
      'tru',
      'nul',
      '{"a":1}x',
      '',
      '  ',
      '[1,2',
      '{"a"',
      '"abc',
      '\ufeff{}',
      '{"__proto__":1}',
      "['a']",
      '[NaN]',
      '[Infinity]',
      '[+1]',
      '[0x1]',
    ];
    // The same inside long arrays (the one-digit path and f32At), and cut short.
    for (const x of [
      '01',
      '1.',
      '.5',
      '1e',
      '1e+',
      '-',
      '--1',
      '+1',
      'NaN',
      '-Infinity',
      'Infinity',
      '0x1',
      '1_0',
      '1,',
      '',
      '1.5.5',
      '1e5e5',
      '00',
      '-01',
      '1ee2',
      '٣',
    ])
      bad.push(n(x));
    bad.push(long(String).slice(0, -1), long(String).slice(0, 150), `${long(String).slice(0, -1)},]`, long(() => '1').replace(',1,', ',,'));
    for (const s of bad) {
      const fast = threw(() => parseTensorJson(Buffer.from(s)));
      const ref = threw(() => JSON.parse(s));
      // Either it refuses, or (the __proto__ case) JSON.parse would have accepted too.
      if (fast === 'NotFast') expect([s, fast]).toEqual([s, 'NotFast']);
      else expect([s, plain(fast)]).toEqual([s, want(ref)]);
      if (ref instanceof Error) expect([s, fast]).toEqual([s, 'NotFast']);
    }
  });

  it('lines read into one arena lie back to back; a line it refuses takes no room', () => {
    const arr = (v: number): string => long(() => String(v), 80);
    const lines = [`{"a":${arr(1)}}`, '{"a":[1,2,03]}', `{"a":${arr(2)},"b":${arr(3)}}`, `{"a":${arr(4).slice(0, -1)}`, `{"a":${arr(5)}}`].map((s) =>
      Buffer.from(s),
    );
    const r = new TensorJsonReader(new Float32Array(TensorJsonReader.arenaFor(lines.reduce((a, l) => a + l.length, 0))));
    const got = lines.map((l) => threw(() => r.parse(l)) as { a?: NumArray; b?: NumArray } | 'NotFast');
    expect(got.map((g) => (g === 'NotFast' ? g : 'ok'))).toEqual(['ok', 'NotFast', 'ok', 'NotFast', 'ok']);
    const [a1, , a2, , a5] = got as { a: NumArray; b?: NumArray }[];
    expect([a1!.a.offset, a2!.a.offset, a2!.b!.offset, a5!.a.offset]).toEqual([0, 80, 160, 240]);
    expect(r.used).toBe(320);
    expect([a1!.a.values[0], a2!.b!.values[79], a5!.a.values[0]]).toEqual([1, 3, 5]);
  });
});
