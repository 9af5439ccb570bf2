import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, startTestBatch, waitUntil } from './support/batch-harness';
import { buildWorkerBundle, killHard, spawnWorker } from './support/batch-worker-process';
import { api, fileLines, uploadJsonl, waitForStatus, type OpenAiBatch, writeSlowModel } from './support/file-batches-harness';
import { tempModelRepo, type TempRepo } from './support/model-repo';

const SLOW = '/v2/models/slow/infer';
const line = (i: number): Record<string, unknown> => ({
  custom_id: `r${i}`,
  method: 'POST',
  url: SLOW,
  body: { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [i] }] },
});

describe('file batches: every line exactly once through a killed worker and a wiped queue store', () => {
  let db: TestDatabase;
  let app: RunningBatch;
  let bundle: ReturnType<typeof buildWorkerBundle>;
  let pg: Client;
  let redis: Redis;
  let env: Record<string, string>;
  let prefix = '';
  let repo: TempRepo;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    bundle = buildWorkerBundle();
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    repo = tempModelRepo({});
    writeSlowModel(repo.dir);
    env = batchEnv(db.url, prefix, {
      MODEL_REPOSITORY: repo.dir,
      BATCH_CONCURRENCY: '2',
      BATCH_INFER_THREADS: '2',
      BATCH_DEVICE_SHARES: 'fixed',
      BATCH_LOCK_MS: '2000',
      BATCH_STALLED_INTERVAL_MS: '1000',
    });
    app = await startTestBatch({ ...env, BATCH_ROLE: 'api' });
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    redis = new Redis(TEST_REDIS_URL);
  }, 120_000);

  afterAll(async () => {
    for (const c of children) await killHard(c);
    redis?.disconnect();
    await pg?.end();
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    bundle?.cleanup();
    repo?.remove();
  });

  async function start(n: number): Promise<string> {
    const input = await uploadJsonl(
      app.url,
      Array.from({ length: n }, (_, i) => line(i)),
    );
    const created = await api(app.url, 'POST', '/v1/batches', { input_file_id: input, endpoint: SLOW, completion_window: '1h', chunk_lines: 2 });
    expect(created.status).toBe(200);
    return created.body.id as string;
  }

  const completed = async (id: string): Promise<number> =>
    ((await api(app.url, 'GET', `/v1/batches/${id}`)).body as unknown as OpenAiBatch).request_counts.completed;

  /** The output holds every line once, in input order, with the model's answer; no part blob is left. */
  async function checkExactlyOnce(done: OpenAiBatch, n: number): Promise<void> {
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: n, completed: n, failed: 0 });
    expect(done.error_file_id).toBeNull();
    const out = await fileLines(app.url, done.output_file_id);
    expect(out.map((l) => l.custom_id)).toEqual(Array.from({ length: n }, (_, i) => `r${i}`));
    out.forEach((l, i) => expect((l.response as { body: { outputs: { data: number[] }[] } }).body.outputs[0]!.data).toEqual([i]));
    // Part blobs are deleted right after the commit that completed the batch.
    await waitUntil(async () => (await pg.query(`SELECT count(*)::int AS n FROM file_batch_blob`)).rows[0].n === 0, 'the part blobs to be deleted', 10_000);
    const { rows } = await pg.query(`SELECT count(*)::int AS n FROM blob_object WHERE key LIKE 'part-%'`);
    expect(rows[0].n).toBe(0);
  }

  it('a worker killed with SIGKILL mid-batch: the next worker finishes it, every line once', async () => {
    const first = spawnWorker(bundle.main, env);
    children.push(first);
    const id = await start(30);
    await waitUntil(async () => (await completed(id)) >= 4, 'four answered lines', 60_000);
    await killHard(first);
    expect(await completed(id)).toBeLessThan(30);
    const second = spawnWorker(bundle.main, env);
    children.push(second);
    await checkExactlyOnce(await waitForStatus(app.url, id, ['completed', 'failed'], 120_000), 30);
  }, 240_000);

  it('the queue store wiped mid-batch: the reconciler re-enqueues from Postgres, every line once', async () => {
    const id = await start(40);
    await waitUntil(async () => (await completed(id)) >= 4, 'four answered lines', 60_000);
    const keys = await redis.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await redis.del(...keys);
    expect(await completed(id)).toBeLessThan(40);
    await checkExactlyOnce(await waitForStatus(app.url, id, ['completed', 'failed'], 120_000), 40);
  }, 240_000);
});
