import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { batchEnv, deleteQueueKeys, postJson, startTestBatch, waitForState } from './support/batch-harness';
import { launchChromium } from './support/browser';
import { characterErrorRate, renderSheet, type Sheet } from './support/ocr-render';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';

/**
 * The shipped `ocr` node model as a batch `infer` over the shipped repository: each item is a
 * PNG that Chromium renders here ({"b64": ...}); the pipeline and the three ONNX models it
 * calls through ctx.infer run inside the batch unit; the text read back must match.
 */
const SHEETS: Sheet[] = [
  { name: 'batch-invoice', lines: [{ text: 'Invoice 7731 for Tandem Books' }, { text: 'Due 118 dollars by May 2' }] },
  { name: 'batch-upside-down', lines: [{ text: 'Gate 14 closes at 0930' }, { text: 'Row 22 seat C', upsideDown: true }] },
  { name: 'batch-digits', lines: [{ text: '3141592653 2718281828' }] },
];

describe('batch infer over the ocr node model', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let browser: Browser;
  const items: { b64: string }[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    for (const s of SHEETS) items.push({ b64: (await renderSheet(browser, s)).toString('base64') });
    db = await createTestDatabase();
    app = await startTestBatch(batchEnv(db.url, (prefix = testQueuePrefix()), { MODEL_REPOSITORY: 'models', BATCH_INFER_THREADS: '1' }));
  });

  afterAll(async () => {
    await app?.app.close();
    await browser?.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  it('reads every rendered image, in item order, with CER <= 5 %', async () => {
    const sub = await postJson(`${app.url}/v1/batches`, { task: 'infer', model: 'ocr', items, reducer: 'concat', chunkSize: 2 });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const done = await waitForState(app.url, sub.body.id as string, ['succeeded', 'failed'], 120_000);
    expect(done.state, done.error ?? '').toBe('succeeded');
    const out = done.result as string[][];
    expect(out).toHaveLength(SHEETS.length);
    SHEETS.forEach((s, i) => {
      const expected = s.lines.map((l) => l.text).join('\n');
      const got = out[i]!.join('\n');
      expect(characterErrorRate(expected, got), `${s.name}: read ${JSON.stringify(out[i])}`).toBeLessThanOrEqual(0.05);
    });
  }, 180_000);

  it('an item that is not an image fails its chunk (the model says why); with failurePolicy continue the rest still run', async () => {
    const sub = await postJson(`${app.url}/v1/batches`, {
      task: 'infer',
      model: 'ocr',
      items: ['not an image', items[2]],
      reducer: 'count',
      chunkSize: 1,
      maxAttempts: 1,
      failurePolicy: 'continue',
    });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const done = await waitForState(app.url, sub.body.id as string, ['succeeded', 'failed'], 60_000);
    expect(done.state, done.error ?? '').toBe('succeeded');
    expect(done.counts).toMatchObject({ items: 2, itemsDone: 1, itemsFailed: 1 });
    expect(done.result).toBe(1);
  }, 90_000);
});
