/**
 * An associative reducer: each chunk turns its outputs into a JSON-safe partial, the fan-in
 * combines partials (never the raw outputs), then finalizes. combine must be associative with
 * empty() as identity, so the order chunks finish in does not matter.
 */
export interface Reducer<P = unknown> {
  readonly name: string;
  empty(): P;
  partial(outputs: readonly unknown[]): P;
  combine(a: P, b: P): P;
  finalize(p: P): unknown;
}

/** Exact integer view of an output: numbers that are integers, or decimal integer strings. */
export function toBigInt(v: unknown): bigint | null {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d{1,400}$/.test(v)) return BigInt(v);
  if (typeof v === 'bigint') return v;
  return null;
}

/** Numeric view for comparisons (min/max/top-k). */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    if (!Number.isNaN(n)) return n;
  }
  throw new Error(`output ${JSON.stringify(v)?.slice(0, 60)} is not numeric`);
}

/** Compares two numeric outputs exactly when both are integers. */
export function compareNumeric(a: unknown, b: unknown): number {
  const ba = toBigInt(a);
  const bb = toBigInt(b);
  if (ba !== null && bb !== null) return ba < bb ? -1 : ba > bb ? 1 : 0;
  return toNumber(a) - toNumber(b);
}
