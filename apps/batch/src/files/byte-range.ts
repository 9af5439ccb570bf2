/** One satisfiable byte range, [start, end) in the blob store's terms. */
export interface ContentRange {
  start: number;
  end: number;
}

/**
 * A `Range: bytes=…` header against a file of `size` bytes (RFC 9110 §14): one range only
 * (`a-b`, `a-`, `-n`). `null`: no usable header (serve the whole file, as a multi-range or a
 * malformed one may be ignored); `'unsatisfiable'`: the range starts past the end (416).
 */
export function parseRange(header: string | undefined, size: number): ContentRange | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Number(m[2]);
  if (m[2] !== '' && last < start) return null; // invalid: ignored, the whole file
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(last + 1, size) };
}
