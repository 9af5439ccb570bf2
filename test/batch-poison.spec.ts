import type { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { batchEnv, deleteQueueKeys, postJson, range, startTestBatch, sumOfSquares, waitForState } from './support/batch-harness';
import { buildWorkerBundle, killHard, spawnWorker } from './support/batch-worker-process';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';

/**
 * A worker process that is restarted whenever it exits, as a process manager (or `npm start`'s
 * launcher) would; counts its exits by code.
 */
class RestartingWorker {
  child: ChildProcess & { logs: string[] };
  readonly exits: (number | null)[] = [];
  private stopped = false;

  constructor(
    private readonly main: string,
    private readonly env: Record<string, string>,
  ) {
    this.child = this.start();
  }

  private start(): ChildProcess & { logs: string[] } {
    const c = spawnWorker(this.main, this.env);
    c.once('exit', (code) => {
      if (this.stopped) return;
      this.exits.push(code);
      this.child = this.start();
    });
    return c;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await killHard(this.child);
  }
}

describe('a poison chunk that kills its worker process is dead-lettered after maxAttempts', () => {
  let db: TestDatabase;
  let api: RunningBatch;
  let bundle: ReturnType<typeof buildWorkerBundle>;
  let pg: Client;
  let prefix: string;
  let worker: RestartingWorker | undefined;
  let continued = '';

  beforeAll(async () => {
    bundle = buildWorkerBundle();
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    // One chunk at a time, so the crash takes only the poison chunk's attempt with it; short
    // locks so the dead worker's chunk is declared stalled (and retried) within seconds.
    const env = batchEnv(db.url, prefix, { BATCH_CONCURRENCY: '1', BATCH_LOCK_MS: '2000', BATCH_STALLED_INTERVAL_MS: '1000', BATCH_RECONCILE_MS: '500' });
    api = await startTestBatch({ ...env, BATCH_ROLE: 'api' });
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    worker = new RestartingWorker(bundle.main, env);
  });

  afterAll(async () => {
    await worker?.stop();
    await pg?.end();
    await api?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    bundle?.cleanup();
  });

  const chunkRow = async (id: string, idx: number): Promise<{ state: string; attempts: number; error: string | null }> =>
    (await pg.query(`SELECT state, attempts, error FROM batch_chunk WHERE batch_id = $1 AND idx = $2`, [id, idx])).rows[0];

  // Items 0..9 in chunks of 2: chunk 2 holds item 4, which ends the worker process.
  const items = range(10).map((n) => (n === 4 ? { n, crash: true } : { n }));

  it('failurePolicy continue: the chunk ends dead with attempts = maxAttempts, the batch succeeds with the rest, the worker crashed exactly maxAttempts times', async () => {
    const sub = await postJson(`${api.url}/v1/batches`, {
      task: 'test-probe',
      items,
      reducer: 'summarize',
      chunkSize: 2,
      maxAttempts: 2,
      failurePolicy: 'continue',
    });
    expect(sub.status).toBe(201);
    const id = sub.body.id as string;
    continued = id;
    const done = await waitForState(api.url, id, ['succeeded', 'failed'], 120_000);
    expect(done.state).toBe('succeeded');
    expect(done.counts).toMatchObject({ chunks: 5, chunksDone: 4, chunksFailed: 1, itemsDone: 8, itemsFailed: 2 });
    expect(done.result).toEqual({ count: 8, sum: String(BigInt(sumOfSquares(10)) - 16n - 25n) });
    const poison = await chunkRow(id, 2);
    expect(poison.state).toBe('dead');
    expect(poison.attempts).toBe(2);
    expect(poison.error).toMatch(/no attempt left: 2 attempt\(s\) started/);
    expect(worker!.exits).toEqual([70, 70]);
    for (const idx of [0, 1, 3, 4]) expect(await chunkRow(id, idx)).toMatchObject({ state: 'done', attempts: 1 });
  });

  it('failurePolicy fail: the batch fails on the dead chunk; later work runs and the poison chunk never runs again', async () => {
    const sub = await postJson(`${api.url}/v1/batches`, {
      task: 'test-probe',
      items,
      reducer: 'summarize',
      chunkSize: 2,
      maxAttempts: 3,
      failurePolicy: 'fail',
    });
    const id = sub.body.id as string;
    const failed = await waitForState(api.url, id, ['succeeded', 'failed'], 120_000);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/chunk 2 failed after 3 attempts: no attempt left/);
    expect(await chunkRow(id, 2)).toMatchObject({ state: 'dead', attempts: 3 });
    expect(worker!.exits).toEqual([70, 70, 70, 70, 70]);

    // The restarted worker takes new work, and nothing brings either poison chunk back.
    const next = await postJson(`${api.url}/v1/batches`, { task: 'test-probe', items: range(6).map((n) => ({ n })), reducer: 'summarize', chunkSize: 2 });
    const ok = await waitForState(api.url, next.body.id as string, ['succeeded', 'failed'], 60_000);
    expect(ok.state).toBe('succeeded');
    expect(ok.result).toEqual({ count: 6, sum: sumOfSquares(6) });
    await new Promise((r) => setTimeout(r, 2_000)); // two reconcile periods
    expect(worker!.exits).toEqual([70, 70, 70, 70, 70]);
    expect(await chunkRow(id, 2)).toMatchObject({ state: 'dead', attempts: 3 });
    const { rows } = await pg.query(`SELECT count(*)::int AS n FROM batch_chunk WHERE state = 'pending' AND batch_id = ANY($1)`, [[continued, next.body.id]]);
    expect(rows[0].n).toBe(0);
  });
});
