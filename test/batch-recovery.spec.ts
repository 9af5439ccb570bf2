import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';
import { batchEnv, getBatch, postJson, range, startTestBatch, sumOfSquares, waitForState, waitUntil, deleteQueueKeys } from './support/batch-harness';
import { buildWorkerBundle, killHard, spawnWorker } from './support/batch-worker-process';

async function activeJobs(base: string): Promise<number> {
  const m = /tandem_batch_queue_depth\{state="active"\} (\d+)/.exec(await (await fetch(`${base}/metrics`)).text());
  return Number(m?.[1] ?? 0);
}

describe('recovery: worker processes killed with SIGKILL, queue store wiped', () => {
  let db: TestDatabase;
  let api: RunningBatch;
  let bundle: ReturnType<typeof buildWorkerBundle>;
  let pg: Client;
  let redis: Redis;
  let env: Record<string, string>;
  let prefix: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    bundle = buildWorkerBundle();
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    // Short worker locks so a killed worker's chunk is declared stalled within seconds.
    env = batchEnv(db.url, prefix, { BATCH_CONCURRENCY: '2', BATCH_LOCK_MS: '2000', BATCH_STALLED_INTERVAL_MS: '1000' });
    api = await startTestBatch({ ...env, BATCH_ROLE: 'api' });
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    redis = new Redis(TEST_REDIS_URL);
  });

  afterAll(async () => {
    for (const c of children) await killHard(c);
    redis?.disconnect();
    await pg?.end();
    await api?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    bundle?.cleanup();
  });

  it('a worker process killed with SIGKILL mid-chunk loses nothing and counts nothing twice', async () => {
    const first = spawnWorker(bundle.main, env);
    children.push(first);
    const items = range(24).map((n) => ({ n, sleepMs: 1_500 }));
    const sub = await postJson(`${api.url}/v1/batches`, { task: 'test-probe', items, reducer: 'summarize', chunkSize: 2 });
    expect(sub.status).toBe(201);
    const id = sub.body.id as string;
    await waitUntil(async () => (await activeJobs(api.url)) === 2, 'the worker process to hold two chunks', 30_000);
    await killHard(first);
    const mid = await getBatch(api.url, id);
    expect(mid.counts.chunksDone).toBeLessThan(12);

    const second = spawnWorker(bundle.main, env);
    children.push(second);
    const done = await waitForState(api.url, id, ['succeeded', 'failed'], 90_000);
    expect(done.state, second.logs.join('')).toBe('succeeded');
    expect(done.result).toEqual({ count: 24, sum: sumOfSquares(24) });
    expect(done.counts).toMatchObject({ chunks: 12, chunksDone: 12, chunksFailed: 0, itemsDone: 24 });
    const { rows } = await pg.query(`SELECT count(*)::int AS n FROM batch_chunk WHERE batch_id = $1 AND state = 'done'`, [id]);
    expect(rows[0].n).toBe(12);
  });

  it('wiping every queue key mid-batch (simulated FLUSHALL) still completes exactly via the reconciler', async () => {
    const items = range(40).map((n) => ({ n, sleepMs: 200 }));
    const sub = await postJson(`${api.url}/v1/batches`, { task: 'test-probe', items, reducer: 'summarize', chunkSize: 2 });
    const id = sub.body.id as string;
    await waitUntil(async () => (await getBatch(api.url, id)).counts.chunksDone >= 2, 'two chunks done', 30_000);
    // Other engineers' tests share this Redis, so rather than FLUSHALL we delete every key under
    // this test's prefix: for this queue that is the same loss.
    const keys = await redis.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await redis.del(...keys);
    const after = await getBatch(api.url, id);
    expect(after.counts.chunksDone).toBeLessThan(20);

    const done = await waitForState(api.url, id, ['succeeded', 'failed'], 90_000);
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual({ count: 40, sum: sumOfSquares(40) });
    expect(done.counts).toMatchObject({ chunksDone: 20, chunksFailed: 0, itemsDone: 40 });
  });
});
