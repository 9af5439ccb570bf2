import type { NumericTypedArray, TensorData } from './datatypes';

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
 * How a numeric tensor crosses to another thread: `move` is its buffer to transfer, if any.
 * Owned whole buffers (`owned`, or marked) are moved as they are; views (of a request body,
 * whose clone would copy the whole body) and large arrays the caller keeps are copied once and
 * the copy moved; small whole arrays are left to the clone.
 */
export function forPostMessage<T extends NumericTypedArray>(data: T, owned: boolean): { data: T; move?: ArrayBuffer } {
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  if (whole && (owned || isOwned(data.buffer))) return { data, move: data.buffer as ArrayBuffer };
  if (!whole || data.byteLength > CLONE_MAX_BYTES) {
    const copy = data.slice() as T;
    return { data: copy, move: copy.buffer as ArrayBuffer };
  }
  return { data };
}
