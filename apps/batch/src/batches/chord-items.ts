import type { BlobStores } from '@tandem/persistence';
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
