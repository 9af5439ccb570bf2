import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { DomainException, ErrorCode } from '@tandem/shared';

/**
 * Streams NDJSON items with their 1-based line numbers; blank lines are skipped. The byte limit
 * is enforced here because a streamed body bypasses Fastify's bodyLimit. On any early stop the
 * rest of the body is drained (not destroyed) so the client can read the 4xx; the controller
 * marks these responses `Connection: close`.
 */
export async function* ndjsonItems(stream: Readable, maxBytes: number, maxLineBytes = 1 << 20): AsyncGenerator<{ item: unknown; line: number }> {
  let bytes = 0;
  stream.on('data', (b: Buffer) => {
    bytes += b.length;
  });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      if (bytes > maxBytes) throw new DomainException(ErrorCode.PayloadTooLarge, `request body too large (over ${maxBytes} bytes)`);
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
    if (bytes > maxBytes) throw new DomainException(ErrorCode.PayloadTooLarge, `request body too large (over ${maxBytes} bytes)`);
  } finally {
    rl.close();
    if (!stream.readableEnded) stream.resume();
  }
}
