import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { batchEnv, deleteQueueKeys, getBatch, postJson, startTestBatch, waitForState } from './support/batch-harness';
import { api, uploadJsonl, waitForStatus } from './support/file-batches-harness';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';

const SCORER = '/v2/models/scorer/infer';
type Seconds = { owned: number; borrowed: number };

/**
 * Cost attribution (issue 15, part 5): device-seconds per batch and per key, split by the share
 * the units came from. With the shipped partition (online 1.0 / batch 0.0, borrowing on) an idle
 * node's batch runs on borrowed share; with a reserved batch share it runs on owned units.
 */
describe('batch cost: device-seconds on owned and borrowed share', () => {
  let db: TestDatabase | undefined;
  let app: RunningBatch | undefined;
  let repo: TempRepo | undefined;
  let prefix = '';

  afterEach(async () => {
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    repo?.remove();
  });

  async function start(online: string, batch: string): Promise<RunningBatch> {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: {} } });
    return (app = await startTestBatch(
      batchEnv(db.url, prefix, {
        MODEL_REPOSITORY: repo.dir,
        SCHEDULER_NODE_NAME: `cost-${randomBytes(3).toString('hex')}`,
        SCHEDULER_DISCOVER_GPUS: 'false',
        SCHEDULER_DISCOVER_CPU: 'false',
        SCHEDULER_DECLARED_DEVICES: JSON.stringify([{ kind: 'cpu', id: 'cpu0', cores: 2, memoryMiB: 4096 }]),
        SCHEDULER_DEFAULT_ONLINE_SHARE: online,
        SCHEDULER_DEFAULT_BATCH_SHARE: batch,
        BATCH_INFER_THREADS: '1',
      }),
    ));
  }

  /** One file batch and one chord over the scorer; their device-seconds and the /metrics counters. */
  async function runBoth(a: RunningBatch): Promise<{ file: Seconds; chord: Seconds; metrics: string }> {
    const lines = Array.from({ length: 20 }, (_, i) => ({
      custom_id: `r${i}`,
      method: 'POST',
      url: SCORER,
      body: { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [i / 10] }] },
    }));
    const created = await api(a.url, 'POST', '/v1/batches', {
      input_file_id: await uploadJsonl(a.url, lines),
      endpoint: SCORER,
      completion_window: '1h',
      chunk_lines: 5,
    });
    expect(created.status).toBe(200);
    expect(created.body.device_seconds).toEqual({ owned: 0, borrowed: 0 });
    expect((await waitForStatus(a.url, created.body.id as string, ['completed', 'failed'])).status).toBe('completed');
    const chord = await postJson(`${a.url}/v1/batches`, {
      task: 'infer',
      model: 'scorer',
      reducer: 'count',
      chunkSize: 4,
      items: Array.from({ length: 12 }, (_, i) => [i / 12]),
    });
    expect(chord.status).toBe(201);
    await waitForState(a.url, chord.body.id as string, ['succeeded']);
    const file = (await api(a.url, 'GET', `/v1/batches/${created.body.id as string}`)).body.device_seconds as Seconds;
    const c = (await getBatch(a.url, chord.body.id as string)) as unknown as { deviceSeconds: Seconds };
    return { file, chord: c.deviceSeconds, metrics: await (await fetch(`${a.url}/metrics`)).text() };
  }

  const counter = (metrics: string, share: string): number =>
    Number(new RegExp(`tandem_batch_device_seconds_total\\{owner="anonymous",share="${share}"\\} ([0-9.e+-]+)`).exec(metrics)?.[1] ?? 0);

  it('the shipped partition (online 1.0 / batch 0.0, borrowing): an idle node runs batches on borrowed share', async () => {
    const a = await start('1', '0');
    const borrowed0 = counter(await (await fetch(`${a.url}/metrics`)).text(), 'borrowed');
    const { file, chord, metrics } = await runBoth(a);
    for (const s of [file, chord]) {
      expect(s.borrowed).toBeGreaterThan(0);
      expect(s.owned).toBe(0);
    }
    expect(counter(metrics, 'borrowed') - borrowed0).toBeCloseTo(file.borrowed + chord.borrowed, 1);
  }, 120_000);

  it('a reserved batch share: the same batches run on owned units; per-batch views and per-key metrics agree', async () => {
    const a = await start('0.5', '0.5');
    const owned0 = counter(await (await fetch(`${a.url}/metrics`)).text(), 'owned'); // the process-wide registry outlives apps
    const { file, chord, metrics } = await runBoth(a);
    for (const s of [file, chord]) {
      expect(s.owned).toBeGreaterThan(0);
      expect(s.borrowed).toBe(0);
    }
    expect(counter(metrics, 'owned') - owned0).toBeCloseTo(file.owned + chord.owned, 1);
  }, 120_000);
});
