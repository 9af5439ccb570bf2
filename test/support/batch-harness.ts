import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { loadBatchConfig } from '../../apps/batch/src/config/batch.config';
import { startBatch, type RunningBatch } from '../../apps/batch/src/bootstrap';
import { TEST_REDIS_URL } from './test-env';

export interface BatchBody {
  id: string;
  state: string;
  progress: number;
  result: unknown;
  error: string | null;
  counts: { items: number; itemsDone: number; itemsFailed: number; chunks: number; chunksDone: number; chunksFailed: number; chunksPending: number };
}

/** Env for a batch app on a test database and queue prefix (test tasks on, fast retries/reconcile). */
export function batchEnv(dbUrl: string, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: dbUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
    TANDEM_AUTH: 'off', // auth has its own tests (test/auth.e2e.spec.ts)
    HOST: '127.0.0.1',
    BATCH_PORT: '0',
    BATCH_ENABLE_TEST_TASKS: 'true',
    BATCH_BACKOFF_MS: '50',
    BATCH_RECONCILE_MS: '1000',
    ...extra,
  };
}

export async function startTestBatch(env: Record<string, string>): Promise<RunningBatch> {
  return startBatch(loadBatchConfig(env));
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function getBatch(base: string, id: string): Promise<BatchBody> {
  const res = await fetch(`${base}/v1/batches/${id}`);
  if (res.status !== 200) throw new Error(`GET batch ${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as BatchBody;
}

/** Polls until the batch reaches one of `states` (generous deadline: the machine is shared). */
export async function waitForState(base: string, id: string, states: string[], timeoutMs = 60_000): Promise<BatchBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await getBatch(base, id);
    if (states.includes(b.state)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.state} after ${timeoutMs} ms: ${JSON.stringify(b.counts)}`);
    await sleep(100);
  }
}

export async function waitUntil(pred: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => i + from);
}

/** Σ i² for i in [0, n): the seed's exact answer. */
export function sumOfSquares(n: number): string {
  const b = BigInt(n);
  return (((b - 1n) * b * (2n * b - 1n)) / 6n).toString();
}

/** Deletes this test's queue keys (only its own prefix: the Redis server is shared). */
export async function deleteQueueKeys(prefix: string): Promise<void> {
  const r = new Redis(TEST_REDIS_URL);
  try {
    const keys = await r.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 500) await r.del(...keys.slice(i, i + 500));
  } finally {
    r.disconnect();
  }
}
