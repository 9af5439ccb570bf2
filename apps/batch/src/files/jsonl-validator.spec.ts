import { describe, expect, it } from 'vitest';
import { DomainException, ErrorCode } from '@tandem/shared';
import { validatedJsonl, type JsonlLimits, type JsonlStats } from './jsonl-validator';

const LIMITS: JsonlLimits = { maxBytes: 1_000, maxLineBytes: 100, maxLines: 5 };

async function run(chunks: (string | Buffer)[], limits = LIMITS): Promise<{ out: string; stats: JsonlStats } | { code: ErrorCode; message: string }> {
  const stats: JsonlStats = { bytes: 0, lines: 0 };
  async function* src(): AsyncGenerator<Buffer> {
    for (const c of chunks) yield Buffer.isBuffer(c) ? c : Buffer.from(c);
  }
  const parts: Buffer[] = [];
  try {
    for await (const b of validatedJsonl(src(), limits, stats)) parts.push(b);
  } catch (e) {
    if (e instanceof DomainException) return { code: e.code, message: e.message };
    throw e;
  }
  return { out: Buffer.concat(parts).toString(), stats };
}

describe('validatedJsonl', () => {
  it('passes the bytes through unchanged, lines split anywhere, CRLF and blank lines allowed', async () => {
    const text = '{"a":1}\r\n\n{"b":[2]}\n  \n{"c":"x"}';
    // Split at every byte boundary to prove line checks do not depend on chunking.
    for (let cut = 1; cut < text.length; cut++) {
      const res = await run([text.slice(0, cut), text.slice(cut)]);
      expect(res, `cut ${cut}`).toEqual({ out: text, stats: { bytes: Buffer.byteLength(text), lines: 3 } });
    }
  });

  it('refuses what is not JSONL with the line number (400)', async () => {
    expect(await run(['{"a":1}\n[1,2]\n'])).toEqual({ code: ErrorCode.InvalidArgument, message: 'line 2: not a JSON object' });
    expect(await run(['{"a":1}\n"str"\n'])).toMatchObject({ message: 'line 2: not a JSON object' });
    expect(await run(['{"a":1}\nnull'])).toMatchObject({ message: 'line 2: not a JSON object' });
    expect(await run(['{"a":1}\n{"a":'])).toEqual({ code: ErrorCode.InvalidArgument, message: 'line 2: malformed JSON' });
    expect(await run(['{"a":"', Buffer.from([0xff, 0xfe]), '"}\n'])).toEqual({ code: ErrorCode.InvalidArgument, message: 'line 1: not valid UTF-8' });
    expect(await run(['\n\n  \n'])).toEqual({ code: ErrorCode.InvalidArgument, message: 'file has no JSON lines' });
    expect(await run([])).toMatchObject({ message: 'file has no JSON lines' });
  });

  it('the last line without a newline is checked before the generator returns', async () => {
    expect(await run(['{"a":1}\n{"a":2}'])).toMatchObject({ stats: { lines: 2 } });
    expect(await run(['{"a":1}\n{"a":2'])).toMatchObject({ message: 'line 2: malformed JSON' });
  });

  it('limits: total bytes, one line, line count (413), as bytes arrive', async () => {
    expect(await run(['{"a":1}\n'.repeat(5)])).toMatchObject({ stats: { lines: 5 } });
    expect(await run(['{"a":1}\n'.repeat(6)])).toEqual({ code: ErrorCode.PayloadTooLarge, message: 'file has more than 5 lines' });
    expect(await run([`{"a":"${'x'.repeat(200)}`])).toEqual({ code: ErrorCode.PayloadTooLarge, message: 'line 1: longer than 100 bytes' });
    const many = Array.from({ length: 20 }, () => `${' '.repeat(60)}\n`);
    expect(await run(many)).toMatchObject({ code: ErrorCode.PayloadTooLarge, message: 'request body too large (over 1000 bytes)' });
  });
});
