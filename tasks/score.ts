import { defineTask } from '@tandem/sdk';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** n*n as a JSON number when it is exactly representable, else as an exact decimal string. */
export function exactSquare(n: number): number | string {
  const sq = n * n;
  if (Number.isSafeInteger(sq)) return sq;
  const b = BigInt(n) * BigInt(n);
  return b <= MAX_SAFE ? Number(b) : b.toString();
}

/**
 * The seed's Celery example, score(n) => n * n over integers, as a user task: this file's name
 * is the task's name. Outputs past 2^53 are decimal strings, so the reducers sum them exactly.
 */
export default defineTask<number, number | string>({
  validateItem(item) {
    return Number.isSafeInteger(item) ? null : 'must be an integer within ±(2^53-1)';
  },
  run(items) {
    const out = new Array<number | string>(items.length);
    for (let i = 0; i < items.length; i++) out[i] = exactSquare(items[i]!);
    return out;
  },
});
