import OpenAI from 'openai';
import type { BatchCreateParams } from 'openai/resources/batches';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '@tandem/auth';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, startTestBatch } from './support/batch-harness';
import { slowModelEnv, writeSlowModel } from './support/file-batches-harness';
import { tempModelRepo, type TempRepo } from './support/model-repo';

const ADMIN_KEY = 'file-batches-openai-admin-key-0123';
// The client's create types close `endpoint` over OpenAI's own paths and `completion_window` to
// "24h"; the wire accepts any string, so an OIP path (and a short window) need a cast.
const SCORER = '/v2/models/scorer/infer' as BatchCreateParams['endpoint'];
const SLOW = '/v2/models/slow/infer' as BatchCreateParams['endpoint'];

const jsonl = (url: string, n: number): string =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({ custom_id: `r${i}`, method: 'POST', url, body: { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [i / 4] }] } }),
  ).join('\n') + '\n';

describe('the official openai npm client: files + batches over OIP requests (real sockets)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let repo: TempRepo;
  let client: OpenAI;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: {} } });
    writeSlowModel(repo.dir);
    app = await startTestBatch(batchEnv(db.url, prefix, slowModelEnv(ADMIN_KEY, repo.dir)));
    const key = (await app.app.get(ApiKeyService).create('openai-batches', ['batch'], 'test')).key;
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
  }, 120_000);

  afterAll(async () => {
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    repo?.remove();
  });

  it('files.create → batches.create → retrieve until completed → files.content(output_file_id); list; cancel', async () => {
    const file = await client.files.create({ file: await OpenAI.toFile(Buffer.from(jsonl(SCORER, 7)), 'requests.jsonl'), purpose: 'batch' });
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: SCORER, completion_window: '24h', metadata: { job: 'nightly' } });
    expect(batch).toMatchObject({ object: 'batch', endpoint: SCORER, input_file_id: file.id, completion_window: '24h', metadata: { job: 'nightly' } });
    let b = batch;
    for (const deadline = Date.now() + 60_000; b.status !== 'completed' && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 100));
      b = await client.batches.retrieve(batch.id);
    }
    expect(b.status).toBe('completed');
    expect(b.request_counts).toEqual({ total: 7, completed: 7, failed: 0 });
    expect(b.completed_at).toBeGreaterThan(0);
    const text = await (await client.files.content(b.output_file_id!)).text();
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: { model_name: string; outputs: { data: number[] }[] } } });
    expect(lines.map((l) => l.custom_id)).toEqual(Array.from({ length: 7 }, (_, i) => `r${i}`));
    lines.forEach((l, i) => {
      expect(l.response.status_code).toBe(200);
      expect(l.response.body.model_name).toBe('scorer');
      expect(l.response.body.outputs[0]!.data[0]).toBeCloseTo(Math.tanh(i / 4), 5);
    });
    const out = await client.files.retrieve(b.output_file_id!);
    expect(out.purpose).toBe('batch_output');

    const slowFile = await client.files.create({ file: await OpenAI.toFile(Buffer.from(jsonl(SLOW, 30)), 'slow.jsonl'), purpose: 'batch' });
    const slow = await client.batches.create({ input_file_id: slowFile.id, endpoint: SLOW, completion_window: '24h' });
    const cancelling = await client.batches.cancel(slow.id);
    expect(['cancelling', 'cancelled']).toContain(cancelling.status);
    let c = cancelling;
    for (const deadline = Date.now() + 60_000; c.status !== 'cancelled' && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 100));
      c = await client.batches.retrieve(slow.id);
    }
    expect(c.status).toBe('cancelled');
    expect(c.request_counts!.completed + c.request_counts!.failed).toBe(30);

    const seen: string[] = [];
    for await (const x of client.batches.list({ limit: 1 })) seen.push(x.id);
    expect(seen).toEqual([slow.id, batch.id]);
    await expect(client.batches.retrieve('batch_00000000000000000000000000000000')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(
      client.batches.create({ input_file_id: file.id, endpoint: '/v2/models/nope/infer' as BatchCreateParams['endpoint'], completion_window: '24h' }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  }, 180_000);
});
