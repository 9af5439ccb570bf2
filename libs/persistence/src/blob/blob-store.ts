import type { Readable } from 'node:stream';
import { DomainException } from '@tandem/shared';

export type BlobStoreKind = 'postgres' | 'disk';

/** What a completed put stored. */
export interface BlobInfo {
  key: string;
  size: number;
  /** Hex SHA-256 of the bytes, computed while they streamed through. */
  sha256: string;
}

/** Bytes [start, end) of a blob; `end` defaults to the blob's size and is clamped to it. */
export interface ByteRange {
  start: number;
  end?: number;
}

/**
 * Immutable blobs under caller-chosen keys. A put is all or nothing: until it resolves, no
 * reader sees the key, and a put that fails (its source threw, the process died) leaves no
 * readable bytes behind. Nothing holds a whole blob in memory.
 */
export interface BlobStore {
  readonly kind: BlobStoreKind;
  /**
   * Streams `data` in under a new key. If the source throws (a limit, a bad line, a client that
   * went away), the put is abandoned and the error rethrown. A key that already exists is a
   * Conflict.
   */
  put(key: string, data: AsyncIterable<Uint8Array>): Promise<BlobInfo>;
  /** A stream of the blob (or of a byte range of it); NotFound for a missing key, before any byte. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** The blob's size, or null when it does not exist. */
  size(key: string): Promise<number | null>;
  exists(key: string): Promise<boolean>;
  /** Removes the blob; false when there was none (deleting twice is fine). */
  delete(key: string): Promise<boolean>;
  /** Removes leftovers of puts interrupted before `olderThanMs` ago (a crashed process); returns how many. */
  sweepPartials(olderThanMs: number): Promise<number>;
}

// Keys become file names in the disk store: no separators, no dots-only names, bounded length.
const KEY = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export function assertBlobKey(key: string): void {
  if (!KEY.test(key)) throw DomainException.invalid(`invalid blob key '${key.slice(0, 64)}'`);
}

/** The range as absolute offsets within a blob of `size` bytes. */
export function resolveRange(size: number, range?: ByteRange): { start: number; end: number } {
  if (!range) return { start: 0, end: size };
  const { start, end = Math.max(size, start) } = range;
  if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(end) || end < start) {
    throw DomainException.invalid(`invalid byte range [${String(start)}, ${String(range.end)})`);
  }
  return { start: Math.min(start, size), end: Math.min(end, size) };
}

/** Fixed-size pieces for the writer: many small socket chunks become few large writes. */
export async function* coalesce(data: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of data) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    parts.push(b);
    n += b.length;
    if (n >= size) {
      yield Buffer.concat(parts, n);
      parts = [];
      n = 0;
    }
  }
  if (n > 0) yield Buffer.concat(parts, n);
}
