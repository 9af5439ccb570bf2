import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { Queue } from 'bullmq';
import { resolveQueueConnection } from '@tandem/queue';
import { BATCH_CHUNK_QUEUE, JOB_NAMES } from '../apps/batch/src/jobs/job-catalogue';
import { TEST_REDIS_URL } from './support/test-env';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, getBatch, postJson, range, startTestBatch, sumOfSquares, waitForState, waitUntil, deleteQueueKeys } from './support/batch-harness';

interface Probe {
  n: number;
  failAttempts?: number;
  sleepMs?: number;
}

const probes = (n: number, tweak: (i: number) => Partial<Probe> = () => ({})): Probe[] => range(n).map((i) => ({ n: i, ...tweak(i) }));

describe('batch failure policy, retries, dead-letter and cancel', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let base: string;
  let pg: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestBatch(batchEnv(db.url, (prefix = testQueuePrefix()), { BATCH_CONCURRENCY: '2' }));
    base = app.url;
    pg = new Client({ connectionString: db.url });
    await pg.connect();
  });

  afterAll(async () => {
    await pg?.end();
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  it('a chunk that fails twice then succeeds is counted exactly once', async () => {
    // Chunk 1 (items 10..19) throws on attempts 1 and 2, succeeds on 3.
    const items = probes(40, (i) => (i === 15 ? { failAttempts: 2 } : {}));
    const sub = await postJson(`${base}/v1/batches`, { task: 'test-probe', items, reducer: 'summarize', chunkSize: 10, maxAttempts: 3 });
    expect(sub.status).toBe(201);
    const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual({ count: 40, sum: sumOfSquares(40) });
    expect(done.counts).toMatchObject({ chunksDone: 4, chunksFailed: 0, itemsDone: 40 });
    const { rows } = await pg.query('SELECT idx, attempts, state, error FROM batch_chunk WHERE batch_id = $1 ORDER BY idx', [done.id]);
    expect(rows[1]).toEqual({ idx: 1, attempts: 3, state: 'done', error: null });
    expect(rows.filter((r: { attempts: number }) => r.attempts === 1).length).toBe(3);
  });

  it('a duplicated delivery of a settled chunk changes nothing', async () => {
    const sub = await postJson(`${base}/v1/batches`, { task: 'score', items: range(30), reducer: 'summarize', chunkSize: 10 });
    const id = sub.body.id as string;
    const first = await waitForState(base, id, ['succeeded']);
    const { connection } = resolveQueueConnection({ backend: 'redis', url: TEST_REDIS_URL, prefix });
    const queue = new Queue(BATCH_CHUNK_QUEUE, { connection, prefix });
    try {
      // Same chunk, a job id the enqueuer would never use: only Postgres can tell it is a duplicate.
      await queue.add(JOB_NAMES.chunk, { batchId: id, chunk: 1 }, { jobId: `dup-${id}`, removeOnComplete: false });
      await waitUntil(async () => (await queue.getJobState(`dup-${id}`)) === 'completed', 'the duplicate job to finish');
      expect((await queue.getJob(`dup-${id}`))?.returnvalue).toBe('duplicate');
      await queue.remove(`dup-${id}`);
    } finally {
      await queue.close();
    }
    const after = await getBatch(base, id);
    expect(after.counts).toEqual(first.counts);
    expect(after.result).toEqual({ count: 30, sum: sumOfSquares(30) });
  });

  it('a permanently failing chunk is dead-lettered and the fan-in still fires (policy continue)', async () => {
    const items = probes(30, (i) => (i === 25 ? { failAttempts: 1_000 } : {}));
    const sub = await postJson(`${base}/v1/batches`, {
      task: 'test-probe',
      items,
      reducer: 'summarize',
      chunkSize: 10,
      maxAttempts: 2,
      failurePolicy: 'continue',
    });
    const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.counts).toMatchObject({ chunksDone: 2, chunksFailed: 1, itemsDone: 20, itemsFailed: 10, chunksPending: 0 });
    expect(done.result).toEqual({ count: 20, sum: sumOfSquares(20) });
    expect(done.error).toMatch(/1 chunk\(s\) dead-lettered/);
    const errs = (await (await fetch(`${base}/v1/batches/${done.id}/errors`)).json()) as { items: Record<string, unknown>[] };
    expect(errs.items).toEqual([
      { chunk: 2, firstItem: 20, lastItem: 29, state: 'dead-letter', attempts: 2, error: 'injected failure on attempt 2 of chunk 2' },
    ]);
    const lines = (await (await fetch(`${base}/v1/batches/${done.id}/results`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(30);
    expect(lines[19]).toEqual({ index: 19, output: 361 });
    expect(lines[20]).toEqual({ index: 20, state: 'dead', error: 'injected failure on attempt 2 of chunk 2' });
  });

  it('policy fail: the first dead chunk fails the batch once, and it never hangs', async () => {
    const items = probes(30, (i) => (i === 0 ? { failAttempts: 1_000 } : {}));
    const sub = await postJson(`${base}/v1/batches`, { task: 'test-probe', items, reducer: 'summarize', chunkSize: 10, maxAttempts: 2 });
    const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
    expect(done.state).toBe('failed');
    expect(done.error).toMatch(/chunk 0 failed after 2 attempts: injected failure/);
    expect(done.result).toBeNull();
    const { rows } = await pg.query(`SELECT state FROM batch_chunk WHERE batch_id = $1 AND idx = 0`, [done.id]);
    expect(rows[0].state).toBe('dead');
  });

  it('cancel stops work, aborts running chunks and releases the workers', async () => {
    // Every chunk would sleep 120 s: only an abort frees the two worker slots in time.
    const slow = probes(20, () => ({ sleepMs: 120_000 }));
    const sub = await postJson(`${base}/v1/batches`, { task: 'test-probe', items: slow, reducer: 'summarize', chunkSize: 2 });
    const id = sub.body.id as string;
    // Wait until both worker slots are inside a sleeping chunk.
    await waitUntil(async () => {
      const m = /tandem_batch_queue_depth\{state="active"\} (\d+)/.exec(await (await fetch(`${base}/metrics`)).text());
      return Number(m?.[1]) === 2;
    }, 'two active chunk jobs');
    const res = await fetch(`${base}/v1/batches/${id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { state: string }).state).toBe('cancelled');
    const again = await fetch(`${base}/v1/batches/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);

    const quick = await postJson(`${base}/v1/batches`, { task: 'score', items: range(50), reducer: 'summarize', chunkSize: 10 });
    const done = await waitForState(base, quick.body.id as string, ['succeeded'], 45_000);
    expect(done.result).toEqual({ count: 50, sum: sumOfSquares(50) });

    const after = await getBatch(base, id);
    expect(after.state).toBe('cancelled');
    expect(after.counts.chunksDone).toBe(0);
    const { rows } = await pg.query(`SELECT state, count(*)::int AS n FROM batch_chunk WHERE batch_id = $1 GROUP BY state`, [id]);
    expect(rows).toEqual([{ state: 'cancelled', n: 10 }]);
  });

  it('pause holds pending chunks and resume finishes exactly', async () => {
    const items = probes(40, () => ({ sleepMs: 150 }));
    const sub = await postJson(`${base}/v1/batches`, { task: 'test-probe', items, reducer: 'summarize', chunkSize: 2 });
    const id = sub.body.id as string;
    const paused = await fetch(`${base}/v1/batches/${id}/pause`, { method: 'POST' });
    expect(paused.status).toBe(201);
    expect(((await paused.json()) as { state: string }).state).toBe('paused');
    const p1 = await getBatch(base, id);
    await new Promise((r) => setTimeout(r, 1_000));
    const p2 = await getBatch(base, id);
    expect(p2.state).toBe('paused');
    // Nothing new commits while paused (at most chunks that were already committing).
    expect(p2.counts.chunksDone).toBeLessThanOrEqual(p1.counts.chunksDone + 2);
    expect(p2.counts.chunksDone).toBeLessThan(20);
    const resumed = await fetch(`${base}/v1/batches/${id}/resume`, { method: 'POST' });
    expect(resumed.status).toBe(201);
    const done = await waitForState(base, id, ['succeeded', 'failed']);
    expect(done.result).toEqual({ count: 40, sum: sumOfSquares(40) });
    expect(done.counts.chunksDone).toBe(20);
  });

  it('a chunk paused mid-run does not spend an attempt: one attempt allowed, paused twice, still succeeds', async () => {
    const sub = await postJson(`${base}/v1/batches`, {
      task: 'test-probe',
      items: probes(1, () => ({ sleepMs: 1_500 })),
      reducer: 'summarize',
      chunkSize: 1,
      maxAttempts: 1,
    });
    const id = sub.body.id as string;
    for (let i = 0; i < 2; i++) {
      await waitUntil(async () => (await getBatch(base, id)).state === 'running', 'the chunk running', 10_000);
      await new Promise((r) => setTimeout(r, 300)); // mid-chunk
      expect((await fetch(`${base}/v1/batches/${id}/pause`, { method: 'POST' })).status).toBe(201);
      await new Promise((r) => setTimeout(r, 800)); // the runner sees the pause (500 ms poll) and aborts
      expect((await fetch(`${base}/v1/batches/${id}/resume`, { method: 'POST' })).status).toBe(201);
    }
    const done = await waitForState(base, id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.counts).toMatchObject({ chunksDone: 1, chunksFailed: 0 });
  });
});
