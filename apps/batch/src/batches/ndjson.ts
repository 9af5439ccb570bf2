import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { DomainException, ErrorCode } from '@tandem/shared';

/**
 * Streams NDJSON items with their 1-based line numbers; blank lines are skipped. The byte limit
 * is enforced here because a streamed body bypasses Fastify's bodyLimit.
 */
export async function* ndjsonItems(stream: Readable, maxBytes: number, maxLineBytes = 1 << 20): AsyncGenerator<{ item: unknown; line: number }> {
  let bytes = 0;
  let tooBig = false;
  stream.on('data', (b: Buffer) => {
    bytes += b.length;
    if (bytes > maxBytes && !tooBig) {
      tooBig = true;
      stream.destroy();
    }
  });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      if (tooBig) break;
      if (text.length > maxLineBytes) throw DomainException.invalid(`line ${line}: longer than ${maxLineBytes} bytes`);
      const t = text.trim();
      if (t === '') continue;
      let item: unknown;
      try {
        item = JSON.parse(t);
      } catch {
        throw DomainException.invalid(`line ${line}: malformed JSON`);
      }
      yield { item, line };
    }
  } catch (e) {
    if (!tooBig) throw e;
  } finally {
    rl.close();
  }
  if (tooBig) throw new DomainException(ErrorCode.PayloadTooLarge, `request body too large (over ${maxBytes} bytes)`);
}
