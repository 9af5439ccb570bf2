import type { BlobStores } from '@tandem/persistence';
import { ndjsonItemsOf } from '@tandem/inference';
import type { ChunkWork } from './batch.types';

async function readAll(s: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(parts);
}

/**
 * An NDJSON upload's chunk: its byte range of the batch's items blob, read when the chunk runs
 * (never held by the API process); null for a chunk whose rows carry its items.
 */
export async function chordChunkBytes(work: ChunkWork, blobs: BlobStores): Promise<Buffer | null> {
  if (!work.itemsBlob || !work.range) return null;
  const { start, end } = work.range;
  const bytes = await readAll(await blobs.of(work.itemsBlob.store).get(work.itemsBlob.key, { start, end }));
  if (bytes.length !== end - start) throw new Error(`items blob ${work.itemsBlob.key} is shorter than the chunk's range`);
  return bytes;
}

/** A chord chunk's items: inline rows carry them; an NDJSON upload's are parsed from its byte range. */
export async function chordItemsOf(work: ChunkWork, blobs: BlobStores): Promise<unknown[]> {
  const bytes = await chordChunkBytes(work, blobs);
  return bytes ? ndjsonItemsOf(bytes, work.itemCount) : work.items;
}
