import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelRunner, type ModelRunner } from '@tandem/inference';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, postJson, startTestBatch, waitForState, deleteQueueKeys } from './support/batch-harness';

const PER_ITEM = 3 * 48 * 192;

function pixels(seed: number): Buffer {
  const b = Buffer.alloc(PER_ITEM);
  for (let i = 0; i < PER_ITEM; i++) b[i] = (i * 31 + seed * 97) % 256;
  return b;
}

describe('batch `infer` with ppocr_cls from the model repository (real onnxruntime)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let raw: ModelRunner;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestBatch(batchEnv(db.url, (prefix = testQueuePrefix()), { MODEL_REPOSITORY: 'models', BATCH_INFER_THREADS: '1' }));
    raw = await loadModelRunner('models', 'ppocr_cls', { placement: { kind: 'cpu', intraOpThreads: 1 } });
  });

  afterAll(async () => {
    await raw?.release();
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  it('runs chunks through the model in batches and matches onnxruntime run directly', async () => {
    const n = 70; // > max_batch_size 64: one chunk runs two model batches
    const items = Array.from({ length: n }, (_, i) => ({ u8: pixels(i).toString('base64') }));
    const sub = await postJson(`${app.url}/v1/batches`, { task: 'infer', model: 'ppocr_cls', items, reducer: 'concat', chunkSize: 35 });
    expect(sub.status).toBe(201);
    const done = await waitForState(app.url, sub.body.id as string, ['succeeded', 'failed'], 60_000);
    expect(done.state, done.error ?? '').toBe('succeeded');
    const outputs = done.result as number[][];
    expect(outputs).toHaveLength(n);

    const data = new Float32Array(n * PER_ITEM);
    for (let i = 0; i < n; i++) {
      const px = pixels(i);
      for (let k = 0; k < PER_ITEM; k++) data[i * PER_ITEM + k] = px[k] / 127.5 - 1;
    }
    const [want] = await raw.runUnchecked([{ name: 'x', datatype: 'FP32', shape: [n, 3, 48, 192], data }]);
    expect(want.shape).toEqual([n, 2]);
    const w = want.data as Float32Array;
    for (let i = 0; i < n; i++) {
      expect(outputs[i]).toHaveLength(2);
      expect(outputs[i][0]).toBeCloseTo(w[i * 2], 4);
      expect(outputs[i][1]).toBeCloseTo(w[i * 2 + 1], 4);
    }
    // Probabilities of two classes.
    expect(outputs[0][0] + outputs[0][1]).toBeCloseTo(1, 4);
  });

  it('accepts FP32 base64 and plain arrays, and rejects bad items and models with a 400', async () => {
    const f32 = Buffer.from(new Float32Array(PER_ITEM).fill(0.25).buffer).toString('base64');
    const ok = await postJson(`${app.url}/v1/batches`, {
      task: 'infer',
      model: 'ppocr_cls',
      items: [{ f32 }, new Array(PER_ITEM).fill(0.25)],
      reducer: 'concat',
    });
    expect(ok.status).toBe(201);
    const done = await waitForState(app.url, ok.body.id as string, ['succeeded', 'failed'], 60_000);
    const [a, b] = done.result as number[][];
    expect(a[0]).toBeCloseTo(b[0], 6);

    const bad: [unknown, RegExp][] = [
      [{ task: 'infer', model: 'ppocr_cls', items: [[1, 2, 3]], reducer: 'count' }, /items\[0\]: must hold 27648 numbers \(got 3\)/],
      [{ task: 'infer', model: 'ppocr_cls', items: [{ u8: 'AAAA' }], reducer: 'count' }, /items\[0\]: u8 must decode to 27648 bytes/],
      [{ task: 'infer', model: 'nope', items: [[1]], reducer: 'count' }, /unknown model "nope"/],
      [{ task: 'infer', items: [[1]], reducer: 'count' }, /needs a "model"/],
      [{ task: 'score', model: 'ppocr_cls', items: [1], reducer: 'count' }, /takes no model/],
    ];
    for (const [body, msg] of bad) {
      const r = await postJson(`${app.url}/v1/batches`, body);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(msg);
    }
  });
});
