// The file, not @tandem/shared's index: batch units bundle this module (batch-unit/), and must
// not load Nest, pino and the rest of the shared library.
import { DomainException } from '../../shared/src/errors/domain.exception';
import { DATATYPES, elementCount, type OipDatatype, type TensorData } from './datatypes';
import type { InferTensor, ModelSignature } from './tensor';

/**
 * Checks one request's inputs against the model signature: every input present exactly once,
 * datatypes match, shapes fit (-1 = any), data holds exactly the shape's element count, and
 * the batch dimension stays within max_batch_size. Throws 400-mapped DomainExceptions.
 * Data is checked to be the datatype's container too: a node model's `ctx.infer` passes user-built
 * tensors (a string[] for BYTES would otherwise fail deep inside a runner).
 */
export function validateInputs(sig: ModelSignature, maxBatchSize: number, inputs: readonly InferTensor[]): void {
  const seen = new Set<string>();
  let batch: number | undefined;
  for (const t of inputs) {
    const spec = sig.inputs.find((s) => s.name === t.name);
    if (!spec) throw DomainException.invalid(`unexpected input '${t.name}'; the model takes ${sig.inputs.map((s) => `'${s.name}'`).join(', ')}`);
    if (seen.has(t.name)) throw DomainException.invalid(`input '${t.name}' given more than once`);
    seen.add(t.name);
    if (t.datatype !== spec.datatype) {
      throw DomainException.invalid(`input '${t.name}' has datatype ${t.datatype}, the model expects ${spec.datatype}`);
    }
    const fits =
      t.shape.length === spec.shape.length && spec.shape.every((d, i) => d === -1 || d === t.shape[i]) && t.shape.every((d) => Number.isInteger(d) && d >= 0);
    if (!fits) throw DomainException.invalid(`input '${t.name}' has shape [${t.shape}], the model expects [${spec.shape}]`);
    const wrong = containerProblem(t.datatype, t.data);
    if (wrong) throw DomainException.invalid(`input '${t.name}' ${wrong}`);
    const n = elementCount(t.shape);
    if (t.data.length !== n) {
      throw DomainException.invalid(`input '${t.name}' has ${t.data.length} elements, shape [${t.shape}] needs ${n}`);
    }
    if (maxBatchSize > 0) {
      const b = t.shape[0]!;
      if (b < 1) throw DomainException.invalid(`input '${t.name}' has an empty batch dimension`);
      if (b > maxBatchSize) throw DomainException.invalid(`input '${t.name}' batch size ${b} exceeds max_batch_size ${maxBatchSize}`);
      if (batch !== undefined && b !== batch) throw DomainException.invalid(`inputs disagree on the batch size (${batch} vs ${b})`);
      batch = b;
    }
  }
  for (const s of sig.inputs) if (!seen.has(s.name)) throw DomainException.invalid(`missing input '${s.name}'`);
}

// The tag, not instanceof: typed arrays from another realm (a vm context) are fine too; a Buffer is a Uint8Array.
const tagOf = (x: unknown): string => (ArrayBuffer.isView(x) ? (x as Uint8Array)[Symbol.toStringTag] : Array.isArray(x) ? 'an array' : typeof x);

/** Why `data` is not what `dt` is held in (BYTES: one Uint8Array per element; else its typed array), or null. */
function containerProblem(dt: OipDatatype, data: TensorData): string | null {
  if (dt === 'BYTES') {
    if (!Array.isArray(data)) return `is BYTES: its data must be an array of Uint8Array, one per element (got ${tagOf(data)})`;
    for (let i = 0; i < data.length; i++) if (tagOf(data[i]) !== 'Uint8Array') return `is BYTES: element ${i} is not a Uint8Array (got ${tagOf(data[i])})`;
    return null;
  }
  const want = DATATYPES[dt].arrayName;
  return tagOf(data) === want ? null : `is ${dt}: its data must be a ${want} (got ${tagOf(data)})`;
}

/** Batch size of a validated request (1 for models without a batch dimension). */
export function batchSizeOf(inputs: readonly InferTensor[], maxBatchSize: number): number {
  return maxBatchSize > 0 ? (inputs[0]?.shape[0] ?? 1) : 1;
}
