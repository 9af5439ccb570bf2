import type { BatchTask } from './batch-task';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** n*n as a JSON number when it is exactly representable, else as an exact decimal string. */
export function exactSquare(n: number): number | string {
  const sq = n * n;
  if (Number.isSafeInteger(sq)) return sq;
  const b = BigInt(n) * BigInt(n);
  return b <= MAX_SAFE ? Number(b) : b.toString();
}

/** The seed's Celery example: score(n) => n * n over integers. */
export const scoreTask: BatchTask = {
  name: 'score',
  needsModel: false,
  validateItem(item) {
    return Number.isSafeInteger(item) ? null : 'must be an integer within ±(2^53-1)';
  },
  run(items) {
    const out = new Array<number | string>(items.length);
    for (let i = 0; i < items.length; i++) out[i] = exactSquare(items[i] as number);
    return out;
  },
};
