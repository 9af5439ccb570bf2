import type { Readable } from 'node:stream';
import { DomainException, ErrorCode } from '@tandem/shared';
import { chunksOf } from './stream-chunks';

const NL = 0x0a;

export interface NdjsonLimits {
  /** Most bytes of the whole body; checked on every chunk as it arrives. */
  maxBytes: number;
  /** Most bytes of one line (without its newline); checked before the line is complete. */
  maxLineBytes: number;
}

function tooLarge(message: string): DomainException {
  return new DomainException(ErrorCode.PayloadTooLarge, message);
}

/**
 * Splits raw Buffer chunks into lines on 0x0A, holding at most `maxLineBytes` of an unfinished
 * line: a line over the cap (or a body over the total) throws as soon as the cap is passed, so a
 * huge upload without newlines costs neither memory nor a crash (readline would build the string).
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private total = 0;
  private lineNo = 0;

  constructor(private readonly limits: NdjsonLimits) {}

  /** Complete lines in `chunk`, with their 1-based numbers; the unfinished tail is kept. */
  *push(chunk: Buffer): Generator<{ text: Buffer; line: number }> {
    this.total += chunk.length;
    if (this.total > this.limits.maxBytes) throw tooLarge(`request body too large (over ${this.limits.maxBytes} bytes)`);
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      const end = nl < 0 ? chunk.length : nl;
      if (this.partBytes + (end - start) > this.limits.maxLineBytes) {
        throw tooLarge(`line ${this.lineNo + 1}: longer than ${this.limits.maxLineBytes} bytes`);
      }
      if (nl < 0) {
        if (end > start) this.keep(chunk.subarray(start, end));
        return;
      }
      yield { text: this.take(chunk.subarray(start, nl)), line: ++this.lineNo };
      start = nl + 1;
    }
  }

  /** The last line when the body does not end with a newline. */
  end(): { text: Buffer; line: number } | null {
    if (this.partBytes === 0) return null;
    return { text: this.take(Buffer.alloc(0)), line: ++this.lineNo };
  }

  private keep(b: Buffer): void {
    // Copy: the chunk's memory may be a slice of a larger pooled buffer we must not pin.
    this.parts.push(Buffer.from(b));
    this.partBytes += b.length;
  }

  private take(tail: Buffer): Buffer {
    if (this.parts.length === 0) return tail;
    const out = Buffer.concat([...this.parts, tail], this.partBytes + tail.length);
    this.parts = [];
    this.partBytes = 0;
    return out;
  }
}

function parseLine(text: Buffer, line: number): { item: unknown; line: number } | null {
  const t = text.toString('utf8').trim(); // trim also drops a CR of CRLF
  if (t === '') return null;
  try {
    return { item: JSON.parse(t) as unknown, line };
  } catch {
    throw DomainException.invalid(`line ${line}: malformed JSON`);
  }
}

/**
 * Streams NDJSON items with their 1-based line numbers; blank lines are skipped. Limits are
 * enforced here, as bytes arrive, because a streamed body bypasses Fastify's bodyLimit. On an
 * early stop (a limit, a bad line, a quota) the stream is left paused, not destroyed (that would
 * reset the socket before the 4xx is written); the rest is drained after the answer.
 */
export async function* ndjsonItems(stream: Readable, limits: NdjsonLimits): AsyncGenerator<{ item: unknown; line: number }> {
  const splitter = new LineSplitter(limits);
  for await (const buf of chunksOf(stream)) {
    for (const { text, line } of splitter.push(buf)) {
      const parsed = parseLine(text, line);
      if (parsed) yield parsed;
    }
  }
  const last = splitter.end();
  const parsed = last ? parseLine(last.text, last.line) : null;
  if (parsed) yield parsed;
}
