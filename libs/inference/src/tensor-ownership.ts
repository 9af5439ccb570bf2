// The file, not @tandem/shared's index: replica and unit threads load this module, and the index brings Nest.
import { BufferPool } from '../../shared/src/runtime/buffer-pool';
import { DATATYPES, type NumericTypedArray, type OipDatatype, type TensorData } from './datatypes';

/**
 * Buffers a decoder allocated for one request's tensors (JSON numbers, misaligned or typed
 * gRPC contents): nothing else holds them, so the replica thread may take them (transfer)
 * where a buffer of unknown owner would be copied by the structured clone.
 */
const owned = new WeakSet<ArrayBufferLike>();

/**
 * Above this size an array the caller keeps is copied once (`slice`) and the copy moved: a
 * structured clone copies it into a growing serialization buffer and again out of it on the
 * other side (110 KB: ~70 µs of CPU against ~25 for slice + transfer). Below it the clone is cheaper.
 */
const CLONE_MAX_BYTES = 4096;

export function markOwned<T extends TensorData>(d: T): T {
  // Small arrays are cloned whatever their owner, and reading `.buffer` of one materializes its
  // on-heap storage (~260 ns; 1.9 % of the gateway's main thread on one-number requests).
  if (!Array.isArray(d) && (d as ArrayBufferView).byteLength > CLONE_MAX_BYTES) owned.add((d as ArrayBufferView).buffer);
  return d;
}

/** Whether a buffer was marked; arrays of up to CLONE_MAX_BYTES never are (they are cloned). */
export function isOwned(buffer: ArrayBufferLike): boolean {
  return owned.has(buffer);
}

/**
 * Batch inputs for replicas that give their input buffers back after a run (onnxruntime
 * replicas, `InferenceRunner.returnsInputs`): a merged batch, or the copy of a request body's
 * view, is written into a recycled buffer, moved to the replica thread and adopted again when it
 * comes back, so no batch pays a fresh allocation's page faults and GC pressure (see BufferPool).
 */
const batchInputs = new BufferPool(64 * 1024 * 1024, 8192, 16 * 1024 * 1024);

/** A typed array for `elements` of `datatype`, in a recycled buffer when it is large enough to be moved (not cloned). Not zeroed. */
export function batchArray(datatype: Exclude<OipDatatype, 'BYTES'>, elements: number): NumericTypedArray {
  const t = DATATYPES[datatype];
  if (elements * t.size <= CLONE_MAX_BYTES) return t.make(elements) as NumericTypedArray;
  return t.fromBuffer!(batchInputs.take(elements * t.size), 0, elements);
}

/** Buffers a replica thread gave back after a run: recycled when they came from batchArray's pool (by size class). */
export function recycleInputs(buffers: readonly ArrayBuffer[] | undefined): void {
  if (buffers) for (const b of buffers) batchInputs.adopt(b);
}

/** Bytes of recycled batch inputs waiting to be taken again (tests). */
export function batchInputIdleBytes(): number {
  return batchInputs.idleBytes;
}

/**
 * How a numeric tensor crosses to another thread: `move` is its buffer to transfer, if any.
 * A batchArray buffer, and owned whole buffers (`owned`, or marked), are moved as they are;
 * views (of a request body, whose clone would copy the whole body) and large arrays the caller
 * keeps are copied once and the copy moved (into a batchArray when `recycled`: the receiver
 * gives its inputs back); small whole arrays are left to the clone.
 */
export function forPostMessage<T extends NumericTypedArray>(data: T, owned: boolean, recycled = false): { data: T; move?: ArrayBuffer } {
  // A pooled buffer belongs whole to the batch that took it, even where the tensor views only its start.
  if (batchInputs.owns(data.buffer)) return { data, move: data.buffer as ArrayBuffer };
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  if (whole && (owned || isOwned(data.buffer))) return { data, move: data.buffer as ArrayBuffer };
  if (!whole || data.byteLength > CLONE_MAX_BYTES) {
    const copy = (recycled && data.byteLength > CLONE_MAX_BYTES ? copyToBatchArray(data) : data.slice()) as T;
    return { data: copy, move: copy.buffer as ArrayBuffer };
  }
  return { data };
}

function copyToBatchArray(data: NumericTypedArray): NumericTypedArray {
  const C = data.constructor as new (b: ArrayBuffer, o: number, n: number) => NumericTypedArray;
  const out = new C(batchInputs.take(data.byteLength), 0, data.length);
  (out as Uint8Array).set(data as Uint8Array);
  return out;
}
