import type { OipDatatype, Tensor } from '@tandem/sdk';
import { DATATYPES, elementCount } from '../datatypes';
import type { TensorSpec } from '../tensor';

// By tag, not instanceof: a Buffer is a Uint8Array, and arrays from a vm context are fine too.
const tagOf = (x: unknown): string =>
  ArrayBuffer.isView(x) ? (x as Uint8Array)[Symbol.toStringTag] : Array.isArray(x) ? 'an array' : x === null ? 'null' : typeof x;
const ARRAY_OF = new Map<OipDatatype, string>();
const arrayOf = (dt: OipDatatype): string => {
  let name = ARRAY_OF.get(dt);
  if (!name) ARRAY_OF.set(dt, (name = tagOf(DATATYPES[dt].make(0))));
  return name;
};

/** What is wrong with `t` as the output `spec` of a batch of `rows` (undefined: no batch dimension), or null. */
function problemOf(t: unknown, spec: TensorSpec, rows: number | undefined): string | null {
  if (typeof t !== 'object' || t === null) return `is ${tagOf(t)}, not a tensor`;
  const { datatype, shape, data } = t as Partial<Tensor>;
  if (datatype !== spec.datatype) return `has datatype ${String(datatype)}, declared ${spec.datatype}`;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) return `has shape ${JSON.stringify(shape)}, not a list of sizes`;
  const fits = shape.length === spec.shape.length && spec.shape.every((d, i) => d === -1 || d === shape[i]);
  if (!fits) return `has shape [${shape}], declared [${spec.shape}]`;
  if (rows !== undefined && shape[0] !== rows) return `has ${shape[0]} rows for a batch of ${rows}`;
  if (datatype === 'BYTES') {
    if (!Array.isArray(data)) return `is BYTES: its data must be an array of Uint8Array (got ${tagOf(data)})`;
    const bad = data.findIndex((b) => tagOf(b) !== 'Uint8Array');
    if (bad >= 0) return `is BYTES: element ${bad} is ${tagOf(data[bad])}, not a Uint8Array (bytesOf() encodes strings)`;
  } else if (tagOf(data) !== arrayOf(datatype)) {
    return `is ${datatype}: its data must be a ${arrayOf(datatype)} (got ${tagOf(data)})`;
  }
  const n = elementCount(shape);
  if ((data as { length: number }).length !== n) return `has ${(data as { length: number }).length} elements, shape [${shape}] needs ${n}`;
  return null;
}

/**
 * Checks what `execute` returned against the declared outputs and returns the tensors asked for
 * (`wanted`, or every declared output), in that order. Anything amiss is the model's fault: the
 * error says which output and why.
 */
export function collectOutputs(returned: unknown, declared: readonly TensorSpec[], rows: number | undefined, wanted?: readonly string[]): Tensor[] {
  if (typeof returned !== 'object' || returned === null || Array.isArray(returned)) {
    throw new Error(`execute returned ${tagOf(returned)}; it must return an object of output tensors by name`);
  }
  const record = returned as Record<string, unknown>;
  for (const k of Object.keys(record)) {
    if (!declared.some((s) => s.name === k))
      throw new Error(`execute returned an undeclared output '${k}' (config.json declares ${declared.map((s) => `'${s.name}'`).join(', ')})`);
  }
  const names = wanted ?? declared.map((s) => s.name);
  return names.map((name) => {
    const spec = declared.find((s) => s.name === name);
    if (!spec) throw new Error(`output '${name}' is not declared`);
    const t = record[name];
    if (t === undefined) throw new Error(`execute returned no output '${name}'`);
    const problem = problemOf(t, spec, rows);
    if (problem) throw new Error(`execute's output '${name}' ${problem}`);
    const { datatype, shape, data } = t as Tensor;
    return { name, datatype, shape: [...shape], data };
  });
}
