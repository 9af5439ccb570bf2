import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DomainException, ErrorCode } from '@tandem/shared';
import { LineSplitter, ndjsonItems } from './ndjson';

const lines = (s: LineSplitter, chunk: string): string[] => [...s.push(Buffer.from(chunk))].map((l) => `${l.line}:${l.text.toString()}`);

async function collect(parts: (string | Buffer)[], limits = { maxBytes: 1 << 20, maxLineBytes: 1 << 10 }): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const { item } of ndjsonItems(Readable.from(parts, { objectMode: false }), limits)) out.push(item);
  return out;
}

function codeOf(e: unknown): ErrorCode | undefined {
  return e instanceof DomainException ? e.code : undefined;
}

describe('LineSplitter', () => {
  it('joins lines split across chunks and numbers them', () => {
    const s = new LineSplitter({ maxBytes: 100, maxLineBytes: 10 });
    expect(lines(s, '1\n2')).toEqual(['1:1']);
    expect(lines(s, '2')).toEqual([]);
    expect(lines(s, '\n\n3\n')).toEqual(['2:22', '3:', '4:3']);
    expect(s.end()).toBeNull();
    expect(lines(s, '44')).toEqual([]);
    expect(s.end()?.text.toString()).toBe('44');
  });

  it('throws a 413 as soon as an unfinished line passes the cap, not when it ends', () => {
    const s = new LineSplitter({ maxBytes: 1000, maxLineBytes: 8 });
    expect(lines(s, '1\nabcd')).toEqual(['1:1']);
    expect(lines(s, 'efgh')).toEqual([]);
    let err: unknown;
    try {
      lines(s, 'i');
    } catch (e) {
      err = e;
    }
    expect(codeOf(err)).toBe(ErrorCode.PayloadTooLarge);
    expect((err as Error).message).toBe('line 2: longer than 8 bytes');
  });

  it('throws a 413 once the total passes the cap, before splitting the chunk', () => {
    const s = new LineSplitter({ maxBytes: 6, maxLineBytes: 100 });
    expect(lines(s, '1\n2\n')).toEqual(['1:1', '2:2']);
    expect(() => lines(s, '3\n4\n')).toThrow('request body too large (over 6 bytes)');
  });
});

describe('ndjsonItems', () => {
  it('parses items across chunk boundaries, including a multi-byte character split in two', async () => {
    const snow = Buffer.from('"☃"\n');
    expect(await collect(['{"a":', '1}\r\n', '\n', snow.subarray(0, 2), snow.subarray(2), '[2]'])).toEqual([{ a: 1 }, '☃', [2]]);
  });

  it('reports a malformed line by its number (400)', async () => {
    await expect(collect(['1\n\n{oops\n'])).rejects.toThrow('line 3: malformed JSON');
  });
});

describe('stopping early', () => {
  it('leaves the stream paused and readable (not destroyed) so the answer can still be written', async () => {
    const stream = new PassThrough();
    stream.write('1\n' + 'x'.repeat(100));
    const it = ndjsonItems(stream, { maxBytes: 1 << 20, maxLineBytes: 10 });
    expect((await it.next()).value).toEqual({ item: 1, line: 1 });
    await expect(it.next()).rejects.toThrow('line 2: longer than 10 bytes');
    expect(stream.destroyed).toBe(false);
    stream.end('more');
    let rest = '';
    for await (const c of stream) rest += String(c);
    expect(rest).toBe('more');
  });
});
