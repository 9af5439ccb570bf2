import type { BlobStores } from '@tandem/persistence';
import { ndjsonItemsOf } from '@tandem/inference';
import type { ChunkWork } from './batch.types';
import { readPayload } from './chunk-payload';

/**
 * An NDJSON upload's chunk: its byte range of the batch's items blob, read when the chunk runs
 * (never held by the API process); null for a chunk whose rows carry its items.
 */
export async function chordChunkBytes(work: ChunkWork, blobs: BlobStores, between?: () => Promise<void>): Promise<Buffer | null> {
  if (!work.itemsBlob || !work.range) return null;
  return readPayload(blobs.of(work.itemsBlob.store), work.itemsBlob.key, work.range, between);
}

/** A chord chunk's items: inline rows carry them; an NDJSON upload's are parsed from its byte range. */
export async function chordItemsOf(work: ChunkWork, blobs: BlobStores): Promise<unknown[]> {
  const bytes = await chordChunkBytes(work, blobs);
  return bytes ? ndjsonItemsOf(bytes, work.itemCount) : work.items;
}
