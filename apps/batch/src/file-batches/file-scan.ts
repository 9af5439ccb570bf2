/** One chunk of a file batch: whole lines, bytes [start, end) of the input file. */
export interface LineRange {
  start: number;
  end: number;
  /** 0-based physical line number of the range's first line. */
  firstLine: number;
  /** Non-blank lines (requests) in the range. */
  lines: number;
}

export interface ScanResult {
  ranges: LineRange[];
  /** Non-blank lines in the file. */
  requests: number;
  /** 1-based line numbers whose custom_id an earlier line already used. */
  duplicates: number[];
}

export interface ScanLimits {
  /** Requests per chunk. */
  chunkLines: number;
  /** A chunk is closed at the first line end past this many bytes. */
  chunkBytes: number;
}

const CUSTOM_ID = Buffer.from('"custom_id"');
const isWs = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/**
 * The custom_id of a line, if it has a string one (anything else is the line's own error later).
 * Where the line opens with it as a plain string (`{"custom_id":"…",` as OpenAI's clients and
 * examples write it) it is read there, without parsing a line of tensors; otherwise the line is
 * parsed. So a line whose custom_id leads but whose JSON breaks later still claims its id.
 */
export function customIdOf(line: Buffer): string | null {
  let i = 0;
  while (isWs(line[i])) i++;
  if (line[i++] === 0x7b) {
    while (isWs(line[i])) i++;
    if (line.subarray(i, i + CUSTOM_ID.length).equals(CUSTOM_ID)) {
      i += CUSTOM_ID.length;
      while (isWs(line[i])) i++;
      if (line[i++] === 0x3a) {
        while (isWs(line[i])) i++;
        if (line[i] === 0x22) {
          const from = ++i;
          while (i < line.length && line[i] !== 0x22 && line[i] !== 0x5c && line[i]! >= 0x20) i++;
          const to = i;
          if (line[i++] === 0x22) {
            while (isWs(line[i])) i++;
            // A second "custom_id" key (JSON.parse keeps the last) is left to the parse.
            if ((line[i] === 0x2c || line[i] === 0x7d) && line.indexOf(CUSTOM_ID, i) === -1) return line.toString('utf8', from, to);
          }
        }
      }
    }
  }
  try {
    const v = JSON.parse(line.toString('utf8')) as { custom_id?: unknown } | null;
    return v && typeof v.custom_id === 'string' ? v.custom_id : null;
  } catch {
    return null;
  }
}

/**
 * Whether a line is blank as String.prototype.trim sees it. Byte by byte while the bytes are
 * ASCII (a request line is decided at its first byte, `{`); decoded only past a non-ASCII byte.
 */
export function isBlankLine(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) continue;
    if (c < 0x80) return false;
    return (
      Buffer.from(b.buffer, b.byteOffset + i, b.length - i)
        .toString('utf8')
        .trim() === ''
    );
  }
  return true;
}

/**
 * Streams the input file once: cuts line-aligned byte ranges (the chunks; only offsets are
 * stored, never the payload) and finds duplicate custom_ids. Holds one line and the set of ids.
 */
export async function scanLines(source: AsyncIterable<Uint8Array>, limits: ScanLimits): Promise<ScanResult> {
  const ranges: LineRange[] = [];
  const seen = new Set<string>();
  const duplicates: number[] = [];
  let offset = 0; // bytes consumed so far
  let lineNo = 0; // physical lines completed
  let requests = 0;
  let cur: LineRange = { start: 0, end: 0, firstLine: 0, lines: 0 };
  let pending: Buffer[] = [];

  const endLine = (line: Buffer, endOffset: number): void => {
    lineNo++;
    if (!isBlankLine(line)) {
      requests++;
      cur.lines++;
      const id = customIdOf(line);
      if (id !== null) {
        if (seen.has(id)) duplicates.push(lineNo);
        else seen.add(id);
      }
    }
    cur.end = endOffset;
    if (cur.lines >= limits.chunkLines || cur.end - cur.start >= limits.chunkBytes) {
      if (cur.lines > 0) ranges.push(cur);
      cur = { start: endOffset, end: endOffset, firstLine: lineNo, lines: 0 };
    }
  };

  for await (const c of source) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    let from = 0;
    for (let nl = b.indexOf(10, from); nl !== -1; nl = b.indexOf(10, from)) {
      pending.push(b.subarray(from, nl));
      endLine(pending.length === 1 ? pending[0]! : Buffer.concat(pending), offset + nl + 1);
      pending = [];
      from = nl + 1;
    }
    if (from < b.length) pending.push(Buffer.from(b.subarray(from)));
    offset += b.length;
  }
  if (pending.length > 0) endLine(Buffer.concat(pending), offset);
  if (cur.lines > 0) ranges.push(cur);
  return { ranges, requests, duplicates };
}

/** A chunk's lines: its bytes and, per non-blank line, its 1-based number and byte range in them. */
export interface ChunkLines {
  bytes: Uint8Array;
  lines: number[];
  starts: number[];
  ends: number[];
}

/** A chunk's bytes → its non-blank lines: 1-based physical numbers and byte ranges (no decoding: the units parse them). */
export function chunkLines(bytes: Uint8Array, firstLine: number): ChunkLines {
  const lines: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let from = 0, i = 0; from < b.length; i++) {
    let nl = b.indexOf(10, from);
    if (nl === -1) nl = b.length;
    if (!isBlankLine(b.subarray(from, nl))) {
      lines.push(firstLine + i);
      starts.push(from);
      ends.push(nl);
    }
    from = nl + 1;
  }
  return { bytes, lines, starts, ends };
}

/** A chunk's bytes → its lines with their 1-based physical numbers (blank lines dropped). */
export function splitRange(bytes: Buffer, firstLine: number): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const parts = bytes.toString('utf8').split('\n');
  if (parts.at(-1) === '') parts.pop();
  parts.forEach((p, i) => {
    const text = p.trim();
    if (text !== '') out.push({ line: firstLine + i, text });
  });
  return out;
}
