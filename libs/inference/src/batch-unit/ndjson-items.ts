/**
 * A chunk's NDJSON lines → its items. Every line was checked at upload to be one JSON value
 * (blank lines skipped), so joining the lines with commas and parsing once yields exactly those
 * values; that one parse is several times cheaper than a parse per line. A blank line (or
 * whitespace JSON does not allow but String.trim drops) makes it throw: then line by line, as at
 * upload. Batch units run it on their own share (the `infer` task sends them raw lines).
 */
export function parseNdjsonItems(text: string): unknown[] {
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

/** `count` items from NDJSON bytes, or an error naming the mismatch (a range cut mid-line, a changed blob). */
export function ndjsonItemsOf(bytes: Uint8Array, count: number): unknown[] {
  const items = parseNdjsonItems(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  if (items.length !== count) throw new Error(`chunk range holds ${items.length} items, expected ${count}`);
  return items;
}
