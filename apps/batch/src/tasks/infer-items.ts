/** Item encodings accepted by `infer` (one model input sample each). */
type Encoded = { f32: string } | { u8: string };

function isEncoded(x: unknown): x is Encoded {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const o = x as Record<string, unknown>;
  const keys = Object.keys(o);
  return keys.length === 1 && (typeof o.f32 === 'string' || typeof o.u8 === 'string');
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function b64Bytes(s: string): number {
  return Math.floor((s.length * 3) / 4) - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0);
}

/** Why an item is not one sample of `perItem` elements, or null. */
export function describeInferItem(item: unknown, perItem: number): string | null {
  if (Array.isArray(item)) {
    if (item.length !== perItem) return `must hold ${perItem} numbers (got ${item.length})`;
    for (const v of item) if (typeof v !== 'number' || !Number.isFinite(v)) return 'must hold finite numbers only';
    return null;
  }
  if (isEncoded(item)) {
    const [kind, s] = 'f32' in item ? ['f32', item.f32] : ['u8', item.u8];
    const want = kind === 'f32' ? perItem * 4 : perItem;
    if (s.length % 4 !== 0 || !B64.test(s)) return `${kind} must be base64`;
    if (b64Bytes(s) !== want) return `${kind} must decode to ${want} bytes (got ${b64Bytes(s)})`;
    return null;
  }
  return `must be ${perItem} numbers, {"f32": base64 FP32} or {"u8": base64 bytes}`;
}

/**
 * Writes one validated item into `out` at `offset`. u8 pixels map to [-1, 1] like PaddleOCR's
 * (x/255-0.5)/0.5. Keep it self-contained (globals only): CPU unit processes get it as source
 * and decode their items themselves.
 */
export function decodeInferItem(item: unknown, perItem: number, out: Float32Array, offset: number): void {
  if (Array.isArray(item)) {
    for (let i = 0; i < perItem; i++) out[offset + i] = item[i] as number;
    return;
  }
  const e = item as Encoded;
  if ('f32' in e) {
    const buf = Buffer.from(e.f32, 'base64');
    // Copy out first: a pooled Buffer's offset need not be 4-byte aligned.
    out.set(new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + perItem * 4)), offset);
    return;
  }
  const buf = Buffer.from(e.u8, 'base64');
  for (let i = 0; i < perItem; i++) out[offset + i] = buf[i] / 127.5 - 1;
}
