import type { BlobStores } from '@tandem/persistence';
import type { ChunkWork } from './batch.types';

async function readAll(s: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(parts);
}

/**
 * A chunk's lines → its items. Every line was checked at upload to be one JSON value (blank
 * lines skipped), so joining the lines with commas and parsing once yields exactly those values;
 * that one parse is several times cheaper than a parse per line. A blank line (or whitespace
 * JSON does not allow but String.trim drops) makes it throw: then line by line, as at upload.
 */
export function parseChunkLines(text: string): unknown[] {
  const t = text.trim();
  if (t === '') return [];
  try {
    return JSON.parse(`[${t.replaceAll('\n', ',')}]`) as unknown[];
  } catch {
    const out: unknown[] = [];
    for (const line of t.split('\n')) {
      const s = line.trim();
      if (s !== '') out.push(JSON.parse(s) as unknown);
    }
    return out;
  }
}

/**
 * A chord chunk's items: inline rows carry them; an NDJSON upload's chunk is a byte range of the
 * batch's items blob, read when the chunk runs (never held by the API process).
 */
export async function chordItemsOf(work: ChunkWork, blobs: BlobStores): Promise<unknown[]> {
  if (!work.itemsBlob || !work.range) return work.items;
  const { start, end } = work.range;
  const bytes = await readAll(await blobs.of(work.itemsBlob.store).get(work.itemsBlob.key, { start, end }));
  if (bytes.length !== end - start) throw new Error(`items blob ${work.itemsBlob.key} is shorter than the chunk's range`);
  const items = parseChunkLines(bytes.toString('utf8'));
  if (items.length !== work.itemCount) throw new Error(`chunk range holds ${items.length} items, expected ${work.itemCount}`);
  return items;
}
