import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { batchEnv, deleteQueueKeys, startTestBatch } from './support/batch-harness';
import { api, uploadJsonl, waitForStatus } from './support/file-batches-harness';
import { tempModelRepo, writeNodeModel, type TempRepo } from './support/model-repo';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';

const SLOW = '/v2/models/slow/infer';
const line = (x: number): Record<string, unknown> => ({
  custom_id: `r${x}`,
  method: 'POST',
  url: SLOW,
  body: { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [x] }] },
});

/**
 * Deadlines as a promise (issue 15, part 4): one declared 2-core CPU with a reserved batch share
 * (online 0.5 / batch 0.5: one owned unit), a node model taking 100 ms per request that logs the
 * order it ran requests in. EDF is observed from that order; admission from the 422.
 */
describe('file batch deadlines: EDF order and admission from measured throughput', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let repo: TempRepo;
  let log = '';

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    repo = tempModelRepo({});
    log = join(repo.dir, 'ran.log');
    writeFileSync(log, '');
    writeNodeModel(
      repo.dir,
      'slow',
      `import { appendFileSync } from 'node:fs';
import { defineModel } from '@tandem/sdk';
export default defineModel({ async execute({ x }) {
  appendFileSync(${JSON.stringify(log)}, String(x!.data[0]) + '\\n');
  await new Promise((r) => setTimeout(r, 100));
  return { y: x! };
} });`,
      { max_batch_size: 0, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1] }] },
    );
    app = await startTestBatch(
      batchEnv(db.url, prefix, {
        MODEL_REPOSITORY: repo.dir,
        SCHEDULER_NODE_NAME: `dl-${randomBytes(3).toString('hex')}`,
        SCHEDULER_DISCOVER_GPUS: 'false',
        SCHEDULER_DISCOVER_CPU: 'false',
        SCHEDULER_DECLARED_DEVICES: JSON.stringify([{ kind: 'cpu', id: 'cpu0', cores: 2, memoryMiB: 4096 }]),
        SCHEDULER_DEFAULT_ONLINE_SHARE: '0.5',
        SCHEDULER_DEFAULT_BATCH_SHARE: '0.5',
        BATCH_INFER_THREADS: '1',
        BATCH_CONCURRENCY: '1',
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    repo?.remove();
  });

  it('runs a later-submitted batch with an earlier deadline first; accepts without a measurement (estimate null)', async () => {
    const laxFile = await uploadJsonl(
      app.url,
      Array.from({ length: 12 }, (_, i) => line(1000 + i)),
    );
    const tightFile = await uploadJsonl(
      app.url,
      Array.from({ length: 4 }, (_, i) => line(2000 + i)),
    );
    const lax = await api(app.url, 'POST', '/v1/batches', { input_file_id: laxFile, endpoint: SLOW, completion_window: '24h', chunk_lines: 2 });
    const tight = await api(app.url, 'POST', '/v1/batches', {
      input_file_id: tightFile,
      endpoint: SLOW,
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
      chunk_lines: 2,
    });
    expect(lax.status).toBe(200);
    expect(tight.status).toBe(200);
    expect(lax.body).toMatchObject({ estimate: null, device_seconds: { owned: 0, borrowed: 0 } });
    expect(tight.body.estimate).toBeNull(); // nothing measured for this model yet: accepted best-effort
    expect(Math.abs(Date.parse(tight.body.deadline as string) - Date.now() - 3_600_000)).toBeLessThan(5_000);
    expect(tight.body.completion_window).toMatch(/^\d+s$/);
    for (const b of [lax, tight]) expect((await waitForStatus(app.url, b.body.id as string, ['completed', 'failed'])).status).toBe('completed');

    const order = readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number);
    const lastTight = Math.max(...[2000, 2001, 2002, 2003].map((x) => order.indexOf(x)));
    // The lax batch's first chunk was taken before the tight one existed (one chunk at a time);
    // every lax chunk after that waits behind the earlier deadline.
    const laxAfter = order.filter((x) => x >= 1004 && x < 2000).map((x) => order.indexOf(x));
    expect(Math.min(...laxAfter), `run order ${order.join(' ')}`).toBeGreaterThan(lastTight);
    const done = await api(app.url, 'GET', `/v1/batches/${tight.body.id as string}`);
    expect((done.body.device_seconds as { owned: number }).owned).toBeGreaterThan(0); // the reserved share's unit
  }, 120_000);

  it('refuses (422) a deadline the measured throughput cannot meet, naming the earliest feasible completion', async () => {
    const big = await uploadJsonl(
      app.url,
      Array.from({ length: 300 }, (_, i) => line(i)),
    );
    const t0 = Date.now();
    const refused = await api(app.url, 'POST', '/v1/batches', { input_file_id: big, endpoint: SLOW, completion_window: '5s' });
    expect(refused.status).toBe(422);
    const m = /earliest feasible completion (\S+)$/.exec(String(refused.body.error));
    expect(m, String(refused.body.error)).not.toBeNull();
    // 300 requests of ≥ 100 ms on one owned unit: at least 30 s away.
    expect(Date.parse(m![1]!) - t0).toBeGreaterThan(30_000);
    const byEpoch = await api(app.url, 'POST', '/v1/batches', { input_file_id: big, endpoint: SLOW, deadline: Math.floor(t0 / 1000) + 10 });
    expect(byEpoch.status).toBe(422);
    expect((await api(app.url, 'GET', '/v1/batches?limit=10')).body.data).toHaveLength(2); // nothing was created

    // The earliest feasible time is accepted, with the estimate recorded in the view.
    const feasible = Date.parse(m![1]!) + 5_000;
    const ok = await api(app.url, 'POST', '/v1/batches', { input_file_id: big, endpoint: SLOW, deadline: new Date(feasible).toISOString() });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const est = ok.body.estimate as { completion_at: string; units: number; per_unit_rate: number };
    expect(est.units).toBe(1);
    expect(est.per_unit_rate).toBeGreaterThan(0);
    expect(est.per_unit_rate).toBeLessThan(10.5); // 100 ms per request
    expect(Date.parse(est.completion_at)).toBeLessThanOrEqual(feasible);
    expect((await api(app.url, 'GET', `/v1/batches/${ok.body.id as string}`)).body.estimate).toEqual(est);
    expect((await api(app.url, 'POST', `/v1/batches/${ok.body.id as string}/cancel`)).status).toBe(200);
  }, 120_000);

  it('rejects a malformed or out-of-range deadline (400)', async () => {
    const f = await uploadJsonl(app.url, [line(1)]);
    for (const deadline of ['tomorrow', Math.floor(Date.now() / 1000) - 60, new Date(Date.now() + 9 * 86_400_000).toISOString()]) {
      const r = await api(app.url, 'POST', '/v1/batches', { input_file_id: f, endpoint: SLOW, deadline });
      expect(r.status, JSON.stringify(deadline)).toBe(400);
    }
    expect((await api(app.url, 'POST', '/v1/batches', { input_file_id: f, endpoint: SLOW })).status).toBe(400);
  });
});
