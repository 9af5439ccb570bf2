import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, postJson, range, startTestBatch, sumOfSquares, waitForState } from './support/batch-harness';

// Its own file: BullMQ's backend choice is process-wide, and vitest runs each file in its own fork.
describe('batch chord on BullMQ’s PostgreSQL backend (QUEUE_BACKEND=postgres, as `npm start` without Redis)', () => {
  let db: TestDatabase;
  let app: RunningBatch;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestBatch(batchEnv(db.url, testQueuePrefix(), { QUEUE_BACKEND: 'postgres' }));
  });

  afterAll(async () => {
    await app?.app.close();
    await db?.drop();
  });

  it('runs a small batch to the exact result, including a retried chunk', async () => {
    const sub = await postJson(`${app.url}/v1/batches`, { task: 'score', items: range(5_000), reducer: 'summarize', chunkSize: 250 });
    expect(sub.status).toBe(201);
    const done = await waitForState(app.url, sub.body.id as string, ['succeeded', 'failed'], 90_000);
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual({ count: 5_000, sum: sumOfSquares(5_000) });
    expect(done.counts.chunksDone).toBe(20);

    const flaky = range(20).map((n) => ({ n, failAttempts: n === 3 ? 1 : 0 }));
    const sub2 = await postJson(`${app.url}/v1/batches`, { task: 'test-probe', items: flaky, reducer: 'summarize', chunkSize: 5 });
    const done2 = await waitForState(app.url, sub2.body.id as string, ['succeeded', 'failed'], 90_000);
    expect(done2.result).toEqual({ count: 20, sum: sumOfSquares(20) });
  });
});
