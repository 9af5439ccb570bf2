import type { NumericTypedArray, Tensor } from '@tandem/sdk';
import type { UnitItemInput } from '@tandem/inference';

/*
 * Items of `infer`: one sample of the model's inputs each (the batch dimension is the items; a
 * model without one, max_batch_size 0, runs item by item and a sample is its whole input).
 * A model with one input takes the sample itself; a model with several takes an object with
 * one sample per input name. A sample is, by the input's datatype:
 *   FP32   perItem numbers, {"f32": base64 of little-endian FP32}, or {"u8": base64 bytes}
 *          mapped to [-1, 1] like PaddleOCR's (x/255-0.5)/0.5
 *   UINT8  perItem numbers, or {"u8": base64 bytes} as they are
 *   BYTES  perItem elements: a string (its UTF-8 bytes) or {"b64": base64 raw bytes}; with one
 *          element per item the element alone will do
 *   BOOL   perItem booleans (or 0/1); any other number type: perItem numbers in its range
 */

type Encoded = { f32: string } | { u8: string };

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const b64Bytes = (s: string): number => Math.floor((s.length * 3) / 4) - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0);
const isB64 = (s: unknown): s is string => typeof s === 'string' && s.length % 4 === 0 && B64.test(s);
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const only = (o: Record<string, unknown>, key: string): boolean => Object.keys(o).length === 1 && key in o;

const RANGE: Record<string, [number, number]> = {
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** The datatypes items can carry (FP16 has no item encoding). */
export const ITEM_DATATYPES: ReadonlySet<string> = new Set(['FP32', 'FP64', 'BOOL', 'BYTES', ...Object.keys(RANGE)]);

function describeNumbers(v: unknown[], input: UnitItemInput): string | null {
  const { datatype: dt, perItem } = input;
  if (v.length !== perItem) return `must hold ${perItem} ${dt === 'BYTES' ? 'elements' : dt === 'BOOL' ? 'booleans' : 'numbers'} (got ${v.length})`;
  if (dt === 'BOOL') return v.every((x) => typeof x === 'boolean' || x === 0 || x === 1) ? null : 'must hold booleans only';
  const range = RANGE[dt];
  for (const x of v) {
    if (typeof x !== 'number' || !Number.isFinite(x)) return 'must hold finite numbers only';
    if (range && (!Number.isInteger(x) || x < range[0] || x > range[1])) return `must hold ${dt} values only (got ${x})`;
  }
  return null;
}

function describeElement(e: unknown): string | null {
  if (typeof e === 'string') return null;
  if (isObject(e) && only(e, 'b64')) return isB64(e.b64) ? null : 'b64 must be base64';
  return 'BYTES elements are strings or {"b64": base64}';
}

/** Why `v` is not one sample of `input`, or null. */
function describeSample(v: unknown, input: UnitItemInput): string | null {
  const { datatype: dt, perItem } = input;
  if (dt === 'BYTES') {
    if (!Array.isArray(v)) return perItem === 1 ? describeElement(v) : `must hold ${perItem} elements (strings or {"b64": base64})`;
    if (v.length !== perItem) return `must hold ${perItem} elements (got ${v.length})`;
    for (const e of v) {
      const why = describeElement(e);
      if (why) return why;
    }
    return null;
  }
  if (Array.isArray(v)) return describeNumbers(v, input);
  if (isObject(v) && (dt === 'FP32' || dt === 'UINT8') && (only(v, 'u8') || (dt === 'FP32' && only(v, 'f32')))) {
    const [kind, s] = 'f32' in v ? ['f32', v.f32] : ['u8', v.u8];
    const want = kind === 'f32' ? perItem * 4 : perItem;
    if (!isB64(s)) return `${kind} must be base64`;
    if (b64Bytes(s) !== want) return `${kind} must decode to ${want} bytes (got ${b64Bytes(s)})`;
    return null;
  }
  if (dt === 'FP32') return `must be ${perItem} numbers, {"f32": base64 FP32} or {"u8": base64 bytes}`;
  return dt === 'UINT8' ? `must be ${perItem} numbers or {"u8": base64 bytes}` : `must be ${perItem} ${dt === 'BOOL' ? 'booleans' : 'numbers'}`;
}

/** Why an item is not one sample of the model's inputs, or null. */
export function describeInferItem(item: unknown, inputs: readonly UnitItemInput[]): string | null {
  if (inputs.length === 1) return describeSample(item, inputs[0]!);
  if (!isObject(item)) return `must be an object with ${inputs.map((i) => `"${i.name}"`).join(', ')}`;
  for (const k of Object.keys(item)) if (!inputs.some((i) => i.name === k)) return `has "${k}", which is not an input of the model`;
  for (const input of inputs) {
    if (!(input.name in item)) return `misses "${input.name}"`;
    const why = describeSample(item[input.name], input);
    if (why) return `"${input.name}" ${why}`;
  }
  return null;
}

/**
 * Validated items → the model's input tensors, batch dimension first. Keep it self-contained
 * (globals only, helpers inside): batch units get it as source and decode their items themselves.
 */
export function decodeInferItems(items: readonly unknown[], inputs: readonly UnitItemInput[]): Tensor[] {
  const ARRAYS: Record<string, new (n: number) => NumericTypedArray> = {
    FP32: Float32Array,
    FP64: Float64Array,
    BOOL: Uint8Array,
    UINT8: Uint8Array,
    UINT16: Uint16Array,
    UINT32: Uint32Array,
    UINT64: BigUint64Array,
    INT8: Int8Array,
    INT16: Int16Array,
    INT32: Int32Array,
    INT64: BigInt64Array,
  };
  const utf8 = new TextEncoder();
  const n = items.length;
  return inputs.map(({ name, datatype, itemShape, perItem }) => {
    const sample = (j: number): unknown => (inputs.length === 1 ? items[j] : (items[j] as Record<string, unknown>)[name]);
    const shape = [n, ...itemShape];
    if (datatype === 'BYTES') {
      const data: Uint8Array[] = [];
      for (let j = 0; j < n; j++) {
        const s = sample(j);
        for (const e of Array.isArray(s) ? s : [s]) {
          if (typeof e === 'string') data.push(utf8.encode(e));
          else {
            const b = Buffer.from((e as { b64: string }).b64, 'base64');
            data.push(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
          }
        }
      }
      return { name, datatype, shape, data };
    }
    const out = new ARRAYS[datatype]!(n * perItem);
    // One view per element kind: 64-bit integers take BigInts, every other array numbers.
    const nums = out as Float64Array;
    const bigs = datatype === 'INT64' || datatype === 'UINT64' ? (out as BigInt64Array) : null;
    for (let j = 0; j < n; j++) {
      const s = sample(j);
      const offset = j * perItem;
      if (Array.isArray(s)) {
        for (let i = 0; i < perItem; i++) {
          const v = s[i] as number | boolean;
          if (bigs) bigs[offset + i] = BigInt(v as number);
          else nums[offset + i] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
        }
      } else if ('f32' in (s as Encoded)) {
        const buf = Buffer.from((s as { f32: string }).f32, 'base64');
        // Copy out first: a pooled Buffer's offset need not be 4-byte aligned.
        nums.set(new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + perItem * 4)), offset);
      } else {
        const buf = Buffer.from((s as { u8: string }).u8, 'base64');
        if (datatype === 'UINT8') nums.set(buf.subarray(0, perItem), offset);
        else for (let i = 0; i < perItem; i++) nums[offset + i] = buf[i]! / 127.5 - 1;
      }
    }
    return { name, datatype, shape, data: out };
  });
}
