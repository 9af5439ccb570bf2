import { halfToFloat, type InferTensor } from '@tandem/inference';

const utf8 = new TextDecoder('utf-8');

/** Row `r` of a batched tensor as JSON values: numbers (64-bit integers exact to 2^53), booleans, BYTES as UTF-8 strings. */
function rowValues(t: InferTensor, r: number): unknown[] {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const d = t.data;
  if (Array.isArray(d)) return d.slice(r * per, (r + 1) * per).map((b) => utf8.decode(b));
  const row = d.subarray(r * per, (r + 1) * per);
  if (t.datatype === 'BOOL') return Array.from(row as Uint8Array, (x) => x !== 0);
  if (t.datatype === 'FP16') return Array.from(row as Uint16Array, halfToFloat);
  if (row instanceof BigInt64Array || row instanceof BigUint64Array) return Array.from(row, (x) => Number(x));
  return Array.from(row as Float32Array);
}

/**
 * One output per item, in order: a model with one output gives each item its row of it (a flat
 * array); a model with several gives an object of rows by output name.
 */
export function itemOutputs(outputs: readonly InferTensor[], items: number): unknown[] {
  for (const o of outputs) {
    if (o.shape[0] !== items) throw new Error(`output '${o.name}' has ${o.shape[0]} rows for ${items} items`);
  }
  const rows: unknown[] = [];
  for (let r = 0; r < items; r++) {
    rows.push(outputs.length === 1 ? rowValues(outputs[0]!, r) : Object.fromEntries(outputs.map((o) => [o.name, rowValues(o, r)])));
  }
  return rows;
}
