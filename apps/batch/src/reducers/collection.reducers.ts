import type { Reducer } from './reducer';

/** Distinct-value caps keep a partial small; beyond them the chunk fails with a clear error. */
const MAX_BINS = 10_000;
const MAX_CONCAT = 100_000;

/** Counts of each distinct output (keyed by its JSON text). */
export const histogramReducer: Reducer<Record<string, number>> = {
  name: 'histogram',
  empty: () => ({}),
  partial: (outputs) => {
    const bins: Record<string, number> = {};
    for (const o of outputs) {
      const k = JSON.stringify(o) ?? 'null';
      bins[k] = (bins[k] ?? 0) + 1;
    }
    if (Object.keys(bins).length > MAX_BINS) throw new Error(`histogram has more than ${MAX_BINS} distinct values`);
    return bins;
  },
  combine: (a, b) => {
    const out: Record<string, number> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
    if (Object.keys(out).length > MAX_BINS) throw new Error(`histogram has more than ${MAX_BINS} distinct values`);
    return out;
  },
  finalize: (p) => p,
};

/** All outputs in item order; for small batches only (results streams the rest). */
export const concatReducer: Reducer<unknown[]> = {
  name: 'concat',
  empty: () => [],
  partial: (outputs) => [...outputs],
  combine: (a, b) => {
    if (a.length + b.length > MAX_CONCAT) throw new Error(`concat result exceeds ${MAX_CONCAT} items; use GET /results`);
    return [...a, ...b];
  },
  finalize: (p) => p,
};
