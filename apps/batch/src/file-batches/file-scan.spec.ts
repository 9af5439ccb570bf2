import { describe, expect, it } from 'vitest';
import { chunkLines, customIdOf, isBlankLine, scanLines } from './file-scan';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('file-scan: reading a batch input file without parsing its tensors', () => {
  it('customIdOf reads a leading custom_id where JSON.parse would give the same, and parses otherwise', () => {
    const lines = [
      '{"custom_id":"r1","method":"POST","body":{"inputs":[{"data":[1,2,3]}]}}',
      ' { "custom_id" : "é x" , "url":"u"}',
      '{"custom_id":"only"}',
      '{"custom_id":""}',
      '{"custom_id":"a\\"b","x":1}', // escaped: parsed
      '{"method":"POST","custom_id":"later"}', // not leading: parsed
      '{"custom_id":"first","custom_id":"second"}', // JSON.parse keeps the last
      '{"custom_id":7}',
      '{"custom_id":["x"]}',
      '[1,2]',
      'null',
      '{"custom_id":"x"',
      'not json',
    ];
    for (const l of lines) {
      let want: string | null = null;
      try {
        const v = JSON.parse(l) as { custom_id?: unknown } | null;
        want = v && typeof v.custom_id === 'string' ? v.custom_id : null;
      } catch {
        want = null;
      }
      expect([l, customIdOf(b(l))]).toEqual([l, want]);
    }
    // A leading id on a line whose JSON breaks later still claims it (the line fails on its own).
    expect(customIdOf(b('{"custom_id":"kept","body":{'))).toBe('kept');
  });

  it('isBlankLine agrees with String.prototype.trim', () => {
    for (const l of ['', ' ', '\t\r', '\u00a0', ' \u2028 ', '\ufeff', ' {', 'x', ' \u00a0x']) {
      expect([l, isBlankLine(b(l))]).toEqual([l, l.trim() === '']);
    }
  });

  it('chunkLines numbers and cuts the same lines as the scan counts (blank ones skipped)', async () => {
    const text = '{"custom_id":"a"}\n\n  \n{"custom_id":"b"}\r\n{"custom_id":"a"}';
    const scan = await scanLines(
      (async function* () {
        yield b(text);
      })(),
      { chunkLines: 100, chunkBytes: 1 << 20 },
    );
    expect(scan.requests).toBe(3);
    expect(scan.duplicates).toEqual([5]);
    const c = chunkLines(b(text), 1);
    expect(c.lines).toEqual([1, 4, 5]);
    expect(c.lines.map((_, i) => b(text).toString('utf8', c.starts[i], c.ends[i]))).toEqual(['{"custom_id":"a"}', '{"custom_id":"b"}\r', '{"custom_id":"a"}']);
  });
});
