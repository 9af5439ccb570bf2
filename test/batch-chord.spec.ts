import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, getBatch, postJson, range, startTestBatch, sumOfSquares, waitForState, type BatchBody, deleteQueueKeys } from './support/batch-harness';

describe('batch chord API (real Postgres + Redis)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestBatch(batchEnv(db.url, (prefix = testQueuePrefix()), { BATCH_MAX_ITEMS: '50000', BATCH_UPLOAD_LIMIT_MB: '1' }));
    base = app.url;
  });

  afterAll(async () => {
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  it('score/summarize gives the exact sum, progress 100 and item-ordered results', async () => {
    const items = range(10_000);
    const sub = await postJson(`${base}/v1/batches`, { task: 'score', items, reducer: 'summarize', chunkSize: 333 });
    expect(sub.status).toBe(201);
    const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual({ count: 10_000, sum: sumOfSquares(10_000) });
    expect(done.progress).toBe(100);
    expect(done.counts).toMatchObject({ items: 10_000, itemsDone: 10_000, chunks: 31, chunksDone: 31, chunksFailed: 0 });
    const res = await fetch(`${base}/v1/batches/${done.id}/results`);
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; output: number });
    expect(lines.length).toBe(10_000);
    expect(lines[0]).toEqual({ index: 0, output: 0 });
    expect(lines[9_999]).toEqual({ index: 9_999, output: 9_999 * 9_999 });
    expect(lines.every((l, i) => l.index === i && l.output === i * i)).toBe(true);
  });

  it('sums exactly past 2^53 (squares of large integers come back as decimal strings)', async () => {
    const big = 3_037_000_499; // big² ≈ 9.2e18 > 2^53
    const sub = await postJson(`${base}/v1/batches`, { task: 'score', items: [big, big, 1], reducer: 'summarize', chunkSize: 2 });
    const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
    const exact = (2n * BigInt(big) * BigInt(big) + 1n).toString();
    expect(done.result).toEqual({ count: 3, sum: exact });
  });

  it('the other reducers combine partials associatively', async () => {
    const items = [5, -3, 7, 7, 0, 2];
    const want: Record<string, unknown> = {
      count: 6,
      sum: '136',
      min: 0,
      max: 49,
      mean: 136 / 6,
      'top-k': [49, 49, 25, 9, 4, 0],
      histogram: { '25': 1, '9': 1, '49': 2, '0': 1, '4': 1 },
      concat: [25, 9, 49, 49, 0, 4],
    };
    for (const [reducer, result] of Object.entries(want)) {
      const sub = await postJson(`${base}/v1/batches`, { task: 'score', items, reducer, chunkSize: 4 });
      expect(sub.status, reducer).toBe(201);
      const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
      expect(done.result, reducer).toEqual(result);
    }
  });

  it('resubmitting with the same idempotency key returns the same batch', async () => {
    const body = { task: 'score', items: [1, 2, 3], reducer: 'summarize', chunkSize: 10, idempotencyKey: 'same-key-1' };
    const a = await postJson(`${base}/v1/batches`, body);
    const b = await postJson(`${base}/v1/batches`, { ...body, items: [9] });
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    const done = await waitForState(base, a.body.id as string, ['succeeded']);
    expect(done.result).toEqual({ count: 3, sum: '14' });
  });

  it('accepts a streamed NDJSON upload and reports a malformed line by number', async () => {
    const ndjson =
      range(2_500)
        .map((n) => JSON.stringify(n))
        .join('\n') + '\n';
    const ok = await fetch(`${base}/v1/batches?task=score&reducer=summarize&chunkSize=1000`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: ndjson,
    });
    expect(ok.status).toBe(201);
    const { id } = (await ok.json()) as { id: string };
    const done = await waitForState(base, id, ['succeeded', 'failed']);
    expect(done.result).toEqual({ count: 2_500, sum: sumOfSquares(2_500) });

    const before = await (await fetch(`${base}/v1/batches?limit=500`)).json();
    const bad = await fetch(`${base}/v1/batches?task=score&reducer=summarize&chunkSize=10`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: '1\n2\n\n{oops\n5\n',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/line 4: malformed JSON/);
    const after = await (await fetch(`${base}/v1/batches?limit=500`)).json();
    expect((after as { items: unknown[] }).items.length).toBe((before as { items: unknown[] }).items.length);
  });

  it('answers 413 to an NDJSON upload over the upload limit, and stores nothing of it', async () => {
    const line = JSON.stringify(123456789) + ' '.repeat(1_000) + '\n'; // ~1 kB lines: under the item cap
    const body = line.repeat(Math.ceil((1.5 * 1024 * 1024) / line.length));
    const res = await fetch(`${base}/v1/batches?task=score&reducer=summarize&chunkSize=100&idempotencyKey=too-big-upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/too large/);
    const again = await postJson(`${base}/v1/batches`, { task: 'score', items: [2], reducer: 'summarize', idempotencyKey: 'too-big-upload' });
    expect(again.status).toBe(201);
  });

  it('rejects bad input with a 4xx before anything is enqueued', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ task: 'nope', items: [1], reducer: 'summarize' }, 400, /unknown task "nope"/],
      [{ task: 'score', items: [1], reducer: 'nope' }, 400, /unknown reducer/],
      [{ task: 'score', items: [], reducer: 'summarize' }, 400, /empty batch/],
      [{ task: 'score', items: [1, 'x'], reducer: 'summarize' }, 400, /items\[1\]: must be an integer/],
      [{ task: 'score', items: [1.5], reducer: 'summarize' }, 400, /items\[0\]/],
      [{ task: 'score', items: [1], reducer: 'summarize', chunkSize: 0 }, 400, /chunkSize/],
      [{ task: 'score', items: [1], reducer: 'summarize', chunkSize: 10_000_000 }, 400, /chunkSize/],
      [{ task: 'score', reducer: 'summarize' }, 400, /items/],
      [{ task: 'infer', model: 'no-such-model', items: [[1]], reducer: 'count' }, 400, /model/],
      [{ task: 'score', items: range(50_001), reducer: 'summarize' }, 413, /too many items/],
    ];
    for (const [body, status, msg] of cases) {
      const r = await postJson(`${base}/v1/batches`, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect(r.body.error).toMatch(msg);
    }
    const list = (await (await fetch(`${base}/v1/batches?limit=500`)).json()) as { items: BatchBody[] };
    expect(list.items.every((b) => b.counts.items > 0)).toBe(true);
    expect((await fetch(`${base}/v1/batches/not-a-uuid`)).status).toBe(404);
    expect((await fetch(`${base}/v1/batches/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await fetch(`${base}/v1/batches?limit=0`)).status).toBe(400);
  });

  it('lists with a state filter and cursor pagination', async () => {
    const page1 = (await (await fetch(`${base}/v1/batches?state=succeeded&limit=2`)).json()) as { items: BatchBody[]; nextCursor: string };
    expect(page1.items.length).toBe(2);
    expect(page1.items.every((b) => b.state === 'succeeded')).toBe(true);
    const page2 = (await (await fetch(`${base}/v1/batches?state=succeeded&limit=2&cursor=${page1.nextCursor}`)).json()) as { items: BatchBody[] };
    expect(page2.items.length).toBeGreaterThan(0);
    expect(page2.items.map((b) => b.id)).not.toContain(page1.items[0].id);
  });

  it('streams progress as server-sent events ending at the terminal state', async () => {
    const sub = await postJson(`${base}/v1/batches`, { task: 'score', items: range(100), reducer: 'summarize', chunkSize: 10 });
    const res = await fetch(`${base}/v1/batches/${sub.body.id as string}/events`);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await res.text();
    expect(text).toMatch(/event: progress\ndata: \{/);
    expect(text).toMatch(/event: end\ndata: \{"id":"[^"]+","state":"succeeded"\}/);
    expect((await getBatch(base, sub.body.id as string)).result).toEqual({ count: 100, sum: sumOfSquares(100) });
  });

  it('exposes tandem_batch_* metrics', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/tandem_batch_chunks_processed_total \d+/);
    expect(Number(/tandem_batch_items_processed_total (\d+)/.exec(text)?.[1])).toBeGreaterThan(10_000);
    expect(text).toMatch(/tandem_batch_queue_depth\{state="waiting"\} \d+/);
    expect(text).toMatch(/tandem_batch_items_per_second/);
  });
});
