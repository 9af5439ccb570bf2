import type { TensorData } from './datatypes';

/**
 * Buffers a decoder allocated for one request's tensors (JSON numbers, misaligned or typed
 * gRPC contents): nothing else holds them, so the replica thread may take them (transfer)
 * where a buffer of unknown owner would be copied by the structured clone.
 */
const owned = new WeakSet<ArrayBufferLike>();

export function markOwned<T extends TensorData>(d: T): T {
  if (!Array.isArray(d)) owned.add((d as ArrayBufferView).buffer);
  return d;
}

export function isOwned(buffer: ArrayBufferLike): boolean {
  return owned.has(buffer);
}
