import { halfToFloat, type InferTensor } from '@tandem/inference';

const utf8 = new TextDecoder('utf-8');

/** Elements [start, end) of a tensor as JSON values: numbers (64-bit integers exact to 2^53), booleans, BYTES as UTF-8 strings. */
function values(t: InferTensor, start: number, end: number): unknown[] {
  const d = t.data;
  if (Array.isArray(d)) return d.slice(start, end).map((b) => utf8.decode(b));
  const part = d.subarray(start, end);
  if (t.datatype === 'BOOL') return Array.from(part as Uint8Array, (x) => x !== 0);
  if (t.datatype === 'FP16') return Array.from(part as Uint16Array, halfToFloat);
  if (part instanceof BigInt64Array || part instanceof BigUint64Array) return Array.from(part, (x) => Number(x));
  return Array.from(part as Float32Array);
}

/**
 * One output per item, in order: a model with one output gives each item its row of it (a flat
 * array; the whole output for a model without a batch dimension, which runs one item at a
 * time); a model with several gives an object of those by output name.
 */
export function itemOutputs(outputs: readonly InferTensor[], items: number, batched: boolean): unknown[] {
  const of = (t: InferTensor, r: number): unknown[] => {
    if (!batched) return values(t, 0, t.data.length);
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    return values(t, r * per, (r + 1) * per);
  };
  for (const o of outputs) {
    if (batched && o.shape[0] !== items) throw new Error(`output '${o.name}' has ${o.shape[0]} rows for ${items} items`);
  }
  const rows: unknown[] = [];
  for (let r = 0; r < items; r++) rows.push(outputs.length === 1 ? of(outputs[0]!, r) : Object.fromEntries(outputs.map((o) => [o.name, of(o, r)])));
  return rows;
}
