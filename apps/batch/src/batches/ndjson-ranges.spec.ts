import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseNdjsonItems } from '@tandem/inference';
import { RangeScanner, type ItemRange } from './ndjson-ranges';

/** Feeds `text` in pieces of `piece` bytes; returns the passed bytes, the ranges and the accepted items. */
async function scan(text: string, chunkSize: number, piece: number, limits = { maxBytes: 1 << 30, maxLineBytes: 1 << 20 }) {
  const buf = Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += piece) parts.push(buf.subarray(i, i + piece));
  const ranges: ItemRange[] = [];
  const accepted: [unknown, number][] = [];
  const s = new RangeScanner(limits, {
    chunkSize,
    flushEvery: 3,
    accept: (item, line) => void accepted.push([item, line]),
    flush: async (r) => void ranges.push(...r),
  });
  const out: Buffer[] = [];
  for await (const b of s.pass(Readable.from(parts, { objectMode: false }))) out.push(b);
  return { bytes: Buffer.concat(out), ranges, accepted, count: s.count };
}

/** The reference: a parse per non-blank line, with 1-based physical line numbers. */
function perLine(text: string): [unknown, number][] {
  const out: [unknown, number][] = [];
  text.split('\n').forEach((l, i) => {
    if (l.trim() !== '') out.push([JSON.parse(l.trim()) as unknown, i + 1]);
  });
  return out;
}

describe('RangeScanner', () => {
  const samples = [
    Array.from({ length: 1000 }, (_, i) => String(i * 7919 - 3)).join('\n') + '\n',
    Array.from({ length: 300 }, (_, i) => (i % 17 === 0 ? '' : i % 5 === 0 ? `{"a":[${i},"x\\n"]}` : i % 3 === 0 ? ` ${i}\r` : String(i))).join('\n'),
    '\n\n1\n\n2\n3',
    '\ufeff5\n6\n',
  ];
  for (const [n, text] of samples.entries()) {
    for (const chunkSize of [1, 7, 64, 5000]) {
      for (const piece of [1, 5, 64, 100_000]) {
        it(`sample ${n}, chunk ${chunkSize}, pieces of ${piece}: same items and lines as a parse per line; ranges read back exactly`, async () => {
          const r = await scan(text, chunkSize, piece);
          const ref = perLine(text);
          expect(r.bytes.toString('utf8')).toBe(text);
          expect(r.accepted).toEqual(ref);
          expect(r.count).toBe(ref.length);
          const back: unknown[] = [];
          let prevEnd = 0;
          for (const [i, g] of r.ranges.entries()) {
            expect(g.start).toBe(prevEnd);
            prevEnd = g.end;
            const items = parseNdjsonItems(r.bytes.subarray(g.start, g.end).toString('utf8'));
            expect(items.length).toBe(g.items);
            if (i < r.ranges.length - 1) expect(g.items).toBe(chunkSize);
            back.push(...items);
          }
          expect(back).toEqual(ref.map(([v]) => v));
        });
      }
    }
  }

  it('reports malformed lines (even ones a comma join would accept) with their line numbers', async () => {
    await expect(scan('1\n2\n1,2\n', 10, 1000)).rejects.toThrow('line 3: malformed JSON');
    await expect(scan('[1\n2]\n', 10, 1000)).rejects.toThrow('line 1: malformed JSON');
    await expect(scan('1\n2\n3 4\n', 10, 1000)).rejects.toThrow('line 3: malformed JSON');
  });

  it('enforces the body and line limits as bytes arrive', async () => {
    await expect(scan('1\n2\n3\n', 10, 2, { maxBytes: 4, maxLineBytes: 100 })).rejects.toThrow(/request body too large/);
    await expect(scan('1\n' + 'x'.repeat(50), 10, 8, { maxBytes: 1000, maxLineBytes: 20 })).rejects.toThrow('line 2: longer than 20 bytes');
    await expect(scan('1\n' + '9'.repeat(50) + '\n', 10, 1000, { maxBytes: 1000, maxLineBytes: 20 })).rejects.toThrow('line 2: longer than 20 bytes');
  });
});
