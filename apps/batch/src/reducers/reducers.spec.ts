import { describe, expect, it } from 'vitest';
import { BUILT_IN_REDUCER_NAMES, BUILT_IN_REDUCERS } from './built-in.reducers';

const findReducer = (name: string) => BUILT_IN_REDUCERS.find((r) => r.name === name);

/** Reduces `outputs` split at every possible pair of cut points, combined in two groupings. */
function viaPartials(name: string, outputs: unknown[], cuts: number[]): { left: unknown; right: unknown } {
  const r = findReducer(name)!;
  const parts = [0, ...cuts, outputs.length].slice(1).map((end, i, ends) => r.partial(outputs.slice(i === 0 ? 0 : ends[i - 1], end)));
  const left = parts.reduce((acc, p) => r.combine(acc, p), r.empty());
  const right = parts.reduceRight((acc, p) => r.combine(p, acc), r.empty());
  return { left: r.finalize(left), right: r.finalize(right) };
}

describe('reducers', () => {
  it('are associative with empty() as identity, for every split of the input', () => {
    const outputs = [5, 1, 9, 9, 0, 42, 7, 3];
    for (const name of BUILT_IN_REDUCER_NAMES) {
      const whole = findReducer(name)!.finalize(findReducer(name)!.partial(outputs));
      for (let a = 0; a <= outputs.length; a++) {
        for (let b = a; b <= outputs.length; b++) {
          const { left, right } = viaPartials(name, outputs, [a, b]);
          expect(left, `${name} [${a},${b}]`).toEqual(whole);
          expect(right, `${name} [${a},${b}]`).toEqual(whole);
        }
      }
    }
  });

  it('summarize sums exactly past 2^53, mixing numbers and decimal strings', () => {
    const r = findReducer('summarize')!;
    const big = '9223372030926249001'; // 3037000499²
    const p = r.combine(r.partial([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 1]), r.partial([big]));
    expect(r.finalize(p)).toEqual({ count: 4, sum: (2n * BigInt(Number.MAX_SAFE_INTEGER) + 1n + BigInt(big)).toString() });
  });

  it('the seed sum: Σ n² for n < 1e6 is 333332833333500000', () => {
    const r = findReducer('summarize')!;
    let acc = r.empty();
    for (let c = 0; c < 1000; c++) {
      const chunk = Array.from({ length: 1000 }, (_, i) => (c * 1000 + i) ** 2);
      acc = r.combine(acc, r.partial(chunk));
    }
    expect(r.finalize(acc)).toEqual({ count: 1_000_000, sum: '333332833333500000' });
  });

  it('numeric reducers reject non-numeric outputs; min/max/top-k compare big integers exactly', () => {
    expect(() => findReducer('sum')!.partial(['abc'])).toThrow(/not numeric/);
    const max = findReducer('max')!;
    expect(max.finalize(max.partial(['9007199254740993', 9007199254740992]))).toBe('9007199254740993');
    const top = findReducer('top-k')!;
    expect(top.finalize(top.partial([1, '9007199254740993', 3]))).toEqual(['9007199254740993', 3, 1]);
  });
});
