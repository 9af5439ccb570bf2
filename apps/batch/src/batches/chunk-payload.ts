import type { BlobStore } from '@tandem/persistence';

/**
 * A chunk's payload, bytes [start, end) of a blob, as one Buffer (each piece the store yields is
 * copied once into it). `between` runs after each piece (BatchCapacity.whenRunnable): a worker
 * whose units online has just taken waits there, so a read in flight stops within one piece (a Postgres
 * store reads 512 KiB per statement) instead of keeping Postgres and this thread busy beside
 * online's first requests.
 */
export async function readPayload(store: BlobStore, key: string, range: { start: number; end: number }, between?: () => Promise<void>): Promise<Buffer> {
  const want = range.end - range.start;
  const out = Buffer.allocUnsafe(want);
  let at = 0;
  for await (const piece of await store.get(key, range)) {
    const b = piece as Uint8Array;
    if (at + b.length > want) throw new Error(`blob ${key} yielded more than the ${want} bytes asked for`);
    out.set(b, at);
    at += b.length;
    if (between && at < want) await between();
  }
  if (at !== want) throw new Error(`blob ${key} is shorter than the chunk's range (deleted or replaced?)`);
  return out;
}
