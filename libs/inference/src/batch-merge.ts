import { DATATYPES, elementCount, type NumericTypedArray, type OipDatatype, type TensorData } from './datatypes';
import type { InferTensor } from './tensor';

/** Where a merged numeric input is written: a fresh array by default (see tensor-ownership's batchArray for recycled ones). */
export type BatchAllocator = (datatype: Exclude<OipDatatype, 'BYTES'>, elements: number) => NumericTypedArray;

const freshArray: BatchAllocator = (datatype, elements) => DATATYPES[datatype].make(elements) as NumericTypedArray;

/** Concatenates the same-named inputs of several requests along dim 0 (same trailing shape assumed). */
export function concatInputs(requests: readonly (readonly InferTensor[])[], alloc: BatchAllocator = freshArray): InferTensor[] {
  if (requests.length === 1) return [...requests[0]!];
  const first = requests[0]!;
  return first.map((t) => {
    const parts = requests.map((r) => r.find((x) => x.name === t.name)!);
    const rows = parts.reduce((s, p) => s + p.shape[0]!, 0);
    const shape = [rows, ...t.shape.slice(1)];
    let data: TensorData;
    if (t.datatype === 'BYTES') {
      // The elements themselves are not copied: the merged tensor holds the requests' own bytes.
      data = parts.flatMap((p) => p.data as Uint8Array[]);
    } else {
      const out = alloc(t.datatype, elementCount(shape));
      let off = 0;
      for (const p of parts) {
        (out as Float32Array).set(p.data as Float32Array, off);
        off += p.data.length;
      }
      data = out;
    }
    return { name: t.name, datatype: t.datatype, shape, data };
  });
}

/** Splits batched outputs back into per-request slices of `rows[i]` rows each (views, no copies; BYTES: the same element arrays). */
export function scatterOutputs(outputs: readonly InferTensor[], rows: readonly number[]): InferTensor[][] {
  if (rows.length === 1) return [[...outputs]];
  const total = rows.reduce((s, r) => s + r, 0);
  const per: InferTensor[][] = rows.map(() => []);
  for (const o of outputs) {
    if (o.shape[0] !== total) throw new Error(`output '${o.name}' has ${o.shape[0]} rows for a batch of ${total}`);
    const rowElems = elementCount(o.shape.slice(1));
    let row = 0;
    rows.forEach((r, i) => {
      const start = row * rowElems;
      const end = (row + r) * rowElems;
      const data: TensorData = Array.isArray(o.data) ? o.data.slice(start, end) : (o.data as Float32Array).subarray(start, end);
      per[i]!.push({ name: o.name, datatype: o.datatype, shape: [r, ...o.shape.slice(1)], data });
      row += r;
    });
  }
  return per;
}

/** Requests may share a batch only when every input has the same datatype and trailing dims. */
export function shapeKey(inputs: readonly InferTensor[]): string {
  let k = '';
  for (const t of inputs) k += `${t.name}:${t.datatype}:${t.shape.slice(1).join('x')};`;
  return k;
}
