import { compareNumeric, toBigInt, toNumber, type Reducer } from './reducer';

/** Integers summed as BigInt (exact past 2^53, kept as a decimal string); non-integers as floats. */
interface SumPartial {
  count: number;
  isum: string;
  fsum: number;
}

function sumPartial(outputs: readonly unknown[]): SumPartial {
  let isum = 0n;
  let fsum = 0;
  // Accumulate small integers as numbers and flush before they lose exactness: BigInt per item is slow.
  let small = 0;
  for (const o of outputs) {
    if (typeof o === 'number' && Number.isSafeInteger(o)) {
      const next = small + o;
      if (Number.isSafeInteger(next)) small = next;
      else {
        isum += BigInt(small) + BigInt(o);
        small = 0;
      }
      continue;
    }
    const b = toBigInt(o);
    if (b !== null) isum += b;
    else fsum += toNumber(o);
  }
  isum += BigInt(small);
  return { count: outputs.length, isum: isum.toString(), fsum };
}

function sumCombine(a: SumPartial, b: SumPartial): SumPartial {
  return { count: a.count + b.count, isum: (BigInt(a.isum) + BigInt(b.isum)).toString(), fsum: a.fsum + b.fsum };
}

function sumValue(p: SumPartial): string {
  // Exact decimal string when everything was an integer; float otherwise.
  return p.fsum === 0 ? p.isum : String(Number(p.isum) + p.fsum);
}

const emptySum = (): SumPartial => ({ count: 0, isum: '0', fsum: 0 });

/** The seed's reducer: {count, sum} with sum as an exact decimal string. */
export const summarizeReducer: Reducer<SumPartial> = {
  name: 'summarize',
  empty: emptySum,
  partial: sumPartial,
  combine: sumCombine,
  finalize: (p) => ({ count: p.count, sum: sumValue(p) }),
};

export const sumReducer: Reducer<SumPartial> = { ...summarizeReducer, name: 'sum', finalize: (p) => sumValue(p) };

export const meanReducer: Reducer<SumPartial> = {
  ...summarizeReducer,
  name: 'mean',
  finalize: (p) => (p.count === 0 ? null : (Number(p.isum) + p.fsum) / p.count),
};

export const countReducer: Reducer<number> = {
  name: 'count',
  empty: () => 0,
  partial: (outputs) => outputs.length,
  combine: (a, b) => a + b,
  finalize: (p) => p,
};

function extreme(name: 'min' | 'max'): Reducer<unknown> {
  const better = (a: unknown, b: unknown): unknown => {
    if (a === null) return b;
    if (b === null) return a;
    const c = compareNumeric(a, b);
    return name === 'min' ? (c <= 0 ? a : b) : c >= 0 ? a : b;
  };
  return {
    name,
    empty: () => null,
    partial: (outputs) => outputs.reduce<unknown>((acc, o) => better(acc, (toNumber(o), o)), null),
    combine: better,
    finalize: (p) => p,
  };
}

export const minReducer = extreme('min');
export const maxReducer = extreme('max');

const TOP_K = 10;

/** The 10 largest outputs, largest first. */
export const topKReducer: Reducer<unknown[]> = {
  name: 'top-k',
  empty: () => [],
  partial: (outputs) => [...outputs].sort((a, b) => compareNumeric(b, a)).slice(0, TOP_K),
  combine: (a, b) => [...a, ...b].sort((x, y) => compareNumeric(y, x)).slice(0, TOP_K),
  finalize: (p) => p,
};
