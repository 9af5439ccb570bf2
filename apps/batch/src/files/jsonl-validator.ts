import { DomainException, ErrorCode } from '@tandem/shared';
import { LineSplitter } from '../batches/ndjson';

export interface JsonlLimits {
  /** Most bytes of the whole file (413 beyond). */
  maxBytes: number;
  /** Most bytes of one line (413 beyond, before the line ends). */
  maxLineBytes: number;
  /** Most non-blank lines (413 beyond). */
  maxLines: number;
}

/** Filled in while the file streams through; final once the generator has returned. */
export interface JsonlStats {
  bytes: number;
  lines: number;
}

// fatal: a byte sequence that is not UTF-8 is an error, not a silent U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

function checkLine(text: Buffer, line: number): boolean {
  let s: string;
  try {
    s = utf8.decode(text).trim(); // trim also drops the CR of CRLF
  } catch {
    throw DomainException.invalid(`line ${line}: not valid UTF-8`);
  }
  if (s === '') return false;
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    throw DomainException.invalid(`line ${line}: malformed JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw DomainException.invalid(`line ${line}: not a JSON object`);
  return true;
}

/**
 * Passes the file's bytes through unchanged while checking, as they arrive, that it is JSONL:
 * every non-blank line one JSON object, within the size, line-length and line-count limits.
 * A chunk is yielded only after the complete lines in it passed; the unfinished last line is
 * checked at the end, before the generator returns, so a consumer that commits only on a clean
 * return (a blob store put) never keeps a file that fails. Blank lines are allowed, not counted.
 */
export async function* validatedJsonl(source: AsyncIterable<Buffer>, limits: JsonlLimits, stats: JsonlStats): AsyncGenerator<Buffer> {
  const splitter = new LineSplitter({ maxBytes: limits.maxBytes, maxLineBytes: limits.maxLineBytes });
  const count = (text: Buffer, line: number): void => {
    if (checkLine(text, line) && ++stats.lines > limits.maxLines) {
      throw new DomainException(ErrorCode.PayloadTooLarge, `file has more than ${limits.maxLines} lines`);
    }
  };
  for await (const chunk of source) {
    for (const { text, line } of splitter.push(chunk)) count(text, line);
    stats.bytes += chunk.length;
    yield chunk;
  }
  const last = splitter.end();
  if (last) count(last.text, last.line);
  if (stats.lines === 0) throw DomainException.invalid('file has no JSON lines');
}
