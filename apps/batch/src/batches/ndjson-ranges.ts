import type { Readable } from 'node:stream';
import { DomainException, ErrorCode } from '@tandem/shared';
import type { NdjsonLimits } from './ndjson';
import { chunksOf } from './stream-chunks';

const NL = 0x0a;

/** One chord chunk as stored: whole lines, bytes [start, end) of the items blob, and how many items they hold. */
export interface ItemRange {
  start: number;
  end: number;
  items: number;
}

export interface RangeScanHooks {
  /** Items per chunk (a range closes at the end of the line holding its last item). */
  chunkSize: number;
  /** Why an item is not valid (the task's validateItem), or null; `line` is 1-based. Throws to stop. */
  accept(item: unknown, line: number): void;
  /** Called with closed ranges every `flushEvery` of them (and once at the end); awaited (backpressure). */
  flush(ranges: ItemRange[]): Promise<void>;
  flushEvery: number;
  /** Called with the bytes received so far, once per received piece (storage quota). */
  bytes?(total: number): void;
}

const tooLarge = (m: string): DomainException => new DomainException(ErrorCode.PayloadTooLarge, m);

// Bytes that can make two lines parse as one value (or one line as two) when lines are joined
// with commas: a block free of them is only scalar tokens, one per line, and one JSON.parse of the
// whole block is exactly the per-line parse (any blank or bad line makes that parse throw).
const STRUCTURAL = [0x22, 0x2c, 0x5b, 0x5d, 0x7b, 0x7d]; // " , [ ] { }

/**
 * Validates an NDJSON upload as it streams and passes its bytes on unchanged (to the blob
 * store), cutting line-aligned byte ranges of `chunkSize` items: only those offsets go to
 * Postgres. Same limits and messages as ndjsonItems (body size on every piece, line length
 * before the line is complete). Holds one unfinished line at most, never the items.
 */
export class RangeScanner {
  private tail: Buffer[] = [];
  private tailBytes = 0;
  /** Bytes before the current block (i.e. the offset of the block's first byte). */
  private offset = 0;
  private lineNo = 0;
  private items = 0;
  private cur: ItemRange = { start: 0, end: 0, items: 0 };
  private closed: ItemRange[] = [];

  constructor(
    private readonly limits: NdjsonLimits,
    private readonly hooks: RangeScanHooks,
  ) {}

  get count(): number {
    return this.items;
  }

  /** The upload's bytes, validated; ranges flushed as they close. */
  async *pass(stream: Readable): AsyncGenerator<Buffer> {
    let total = 0;
    for await (const piece of chunksOf(stream)) {
      total += piece.length;
      if (total > this.limits.maxBytes) throw tooLarge(`request body too large (over ${this.limits.maxBytes} bytes)`);
      this.hooks.bytes?.(total);
      this.push(piece);
      if (this.closed.length >= this.hooks.flushEvery) await this.flushClosed();
      yield piece;
    }
    if (this.tailBytes > 0) {
      const last = Buffer.concat(this.tail, this.tailBytes);
      this.tail = [];
      this.tailBytes = 0;
      this.block(last, false);
    }
    if (this.cur.items > 0) this.closed.push({ ...this.cur, end: this.offset });
    await this.flushClosed();
  }

  private async flushClosed(): Promise<void> {
    if (this.closed.length === 0) return;
    const out = this.closed;
    this.closed = [];
    await this.hooks.flush(out);
  }

  private push(piece: Buffer): void {
    const lastNl = piece.lastIndexOf(NL);
    if (lastNl < 0) {
      if (this.tailBytes + piece.length > this.limits.maxLineBytes) throw tooLarge(`line ${this.lineNo + 1}: longer than ${this.limits.maxLineBytes} bytes`);
      // Copy: the piece may be a slice of a larger pooled buffer we must not pin.
      this.tail.push(Buffer.from(piece));
      this.tailBytes += piece.length;
      return;
    }
    const head = piece.subarray(0, lastNl + 1);
    const block = this.tailBytes > 0 ? Buffer.concat([...this.tail, head], this.tailBytes + head.length) : head;
    this.tail = [];
    this.tailBytes = 0;
    this.block(block, true);
    const rest = piece.subarray(lastNl + 1);
    if (rest.length > this.limits.maxLineBytes) throw tooLarge(`line ${this.lineNo + 1}: longer than ${this.limits.maxLineBytes} bytes`);
    if (rest.length > 0) {
      this.tail.push(Buffer.from(rest));
      this.tailBytes = rest.length;
    }
  }

  /** Whole lines (ending in a newline unless `terminated` is false: the body's last line). */
  private block(b: Buffer, terminated: boolean): void {
    if (b.length <= this.limits.maxLineBytes && !STRUCTURAL.some((c) => b.includes(c))) {
      const items = this.parseBlock(b, terminated);
      if (items) {
        this.acceptBlock(b, items);
        return;
      }
    }
    this.lines(b);
  }

  /** One parse for the block, or null when it has blank or bad lines (the per-line path then finds which). */
  private parseBlock(b: Buffer, terminated: boolean): unknown[] | null {
    const text = b.toString('utf8', 0, terminated ? b.length - 1 : b.length);
    try {
      const items = JSON.parse(`[${text.replaceAll('\n', ',')}]`) as unknown[];
      return items.length > 0 ? items : null; // one blank line parses as []: its line still counts
    } catch {
      return null;
    }
  }

  private acceptBlock(b: Buffer, items: unknown[]): void {
    const size = this.hooks.chunkSize;
    let pos = 0; // byte position in b just after the last line located
    let located = 0; // lines located so far (one item per line in a parsed block)
    for (let i = 0; i < items.length; i++) {
      this.hooks.accept(items[i], this.lineNo + i + 1);
      this.items++;
      if (++this.cur.items !== size) continue;
      // Only at a chunk boundary are newlines located: most lines are never scanned one by one.
      while (located <= i) {
        const nl = b.indexOf(NL, pos);
        pos = nl < 0 ? b.length : nl + 1;
        located++;
      }
      this.close(this.offset + pos);
    }
    this.lineNo += items.length;
    this.offset += b.length;
  }

  private lines(b: Buffer): void {
    let start = 0;
    while (start < b.length) {
      let nl = b.indexOf(NL, start);
      if (nl < 0) nl = b.length;
      const len = nl - start;
      this.lineNo++;
      if (len > this.limits.maxLineBytes) throw tooLarge(`line ${this.lineNo}: longer than ${this.limits.maxLineBytes} bytes`);
      const t = b.toString('utf8', start, nl).trim(); // trim also drops a CR of CRLF
      if (t !== '') {
        let item: unknown;
        try {
          item = JSON.parse(t) as unknown;
        } catch {
          throw DomainException.invalid(`line ${this.lineNo}: malformed JSON`);
        }
        this.hooks.accept(item, this.lineNo);
        this.items++;
        if (++this.cur.items === this.hooks.chunkSize) this.close(this.offset + Math.min(nl + 1, b.length));
      }
      start = nl + 1;
    }
    this.offset += b.length;
  }

  private close(end: number): void {
    this.closed.push({ start: this.cur.start, end, items: this.cur.items });
    this.cur = { start: end, end, items: 0 };
  }
}
