import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchTask } from './batch-task';

interface ProbeItem {
  n: number;
  /** The chunk holding this item throws on its first `failAttempts` attempts. */
  failAttempts?: number;
  /** The chunk holding this item sleeps this long (abortably) before answering. */
  sleepMs?: number;
  /** The chunk holding this item ends its worker process (exit code 70) on every attempt: a poison chunk. */
  crash?: boolean;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** n*n like the example `score` task (tasks/score.ts): a JSON number while exact, else a decimal string. */
function exactSquare(n: number): number | string {
  const sq = n * n;
  if (Number.isSafeInteger(sq)) return sq;
  const b = BigInt(n) * BigInt(n);
  return b <= MAX_SAFE ? Number(b) : b.toString();
}

function isProbe(x: unknown): x is ProbeItem {
  if (typeof x !== 'object' || x === null) return false;
  const p = x as Record<string, unknown>;
  const okInt = (v: unknown, max: number): boolean => v === undefined || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max);
  return Number.isSafeInteger(p.n) && okInt(p.failAttempts, 1_000) && okInt(p.sleepMs, 600_000) && (p.crash === undefined || typeof p.crash === 'boolean');
}

/**
 * Failure injection for the acceptance tests. Registered ONLY when BATCH_ENABLE_TEST_TASKS is on
 * (default off), so production configuration cannot reach it.
 */
export const testProbeTask: BatchTask = {
  name: 'test-probe',
  needsModel: false,
  validateItem(item) {
    return isProbe(item) ? null : 'must be {"n": int, "failAttempts"?: int, "sleepMs"?: int, "crash"?: bool}';
  },
  async run(items, ctx) {
    const probes = items as ProbeItem[];
    const failAttempts = Math.max(0, ...probes.map((p) => p.failAttempts ?? 0));
    const sleepMs = Math.max(0, ...probes.map((p) => p.sleepMs ?? 0));
    if (sleepMs > 0) await sleep(sleepMs, undefined, { signal: ctx.signal });
    if (probes.some((p) => p.crash)) process.exit(70);
    if (ctx.attempt <= failAttempts) throw new Error(`injected failure on attempt ${ctx.attempt} of chunk ${ctx.chunk}`);
    return probes.map((p) => exactSquare(p.n));
  },
};
