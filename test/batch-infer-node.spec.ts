import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { buildIdentityModel } from '../scripts/generate-models';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, postJson, startTestBatch, waitForState } from './support/batch-harness';

/**
 * A node model over an ONNX model: y = 3 * ident(x) through ctx.infer; label = tag + ':' + the
 * row's sum; pid = the process it runs in (a batch unit's, not the worker's).
 */
const PIPE = `
import { defineModel, bytesOf, textOf } from '@tandem/sdk';
export default defineModel({
  async execute({ x, tag }, _state, ctx) {
    const { out_FP32 } = await ctx.infer('ident', [{ name: 'in_FP32', datatype: 'FP32', shape: x.shape, data: x.data }]);
    const y = (out_FP32.data as Float32Array).map((v) => 3 * v);
    const rows = x.shape[0];
    const labels = textOf(tag.data).map((t, r) => t + ':' + (y[2 * r] + y[2 * r + 1]));
    return {
      y: { datatype: 'FP32', shape: x.shape, data: y },
      label: { datatype: 'BYTES', shape: [rows, 1], data: bytesOf(labels) },
      pid: { datatype: 'INT32', shape: [rows, 1], data: new Int32Array(rows).fill(process.pid) },
    };
  },
});
`;

/** No batch dimension (max_batch_size 0): one text in, its words out, however many. */
const WORDS = `
import { defineModel, textOf, textTensor } from '@tandem/sdk';
export default defineModel({
  execute({ s }) {
    return { words: textTensor(textOf(s.data)[0].split(' ')) };
  },
});
`;

describe('batch `infer` runs node models: the model and the ONNX model it calls run in the batch unit', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let repo: string;

  beforeAll(async () => {
    repo = mkdtempSync(join(tmpdir(), 'tandem-batch-node-'));
    mkdirSync(join(repo, 'ident', '1'), { recursive: true });
    writeFileSync(join(repo, 'ident', '1', 'model.onnx'), buildIdentityModel(['FP32']));
    writeFileSync(join(repo, 'ident', 'config.json'), JSON.stringify({ max_batch_size: 16 }));
    mkdirSync(join(repo, 'pipe', '1'), { recursive: true });
    writeFileSync(join(repo, 'pipe', '1', 'model.ts'), PIPE);
    const io = (name: string, datatype: string, w: number) => ({ name, datatype, shape: [-1, w] });
    writeFileSync(
      join(repo, 'pipe', 'config.json'),
      JSON.stringify({
        backend: 'node',
        max_batch_size: 4,
        inputs: [io('x', 'FP32', 2), io('tag', 'BYTES', 1)],
        outputs: [io('y', 'FP32', 2), io('label', 'BYTES', 1), io('pid', 'INT32', 1)],
      }),
    );
    mkdirSync(join(repo, 'words', '1'), { recursive: true });
    writeFileSync(join(repo, 'words', '1', 'model.ts'), WORDS);
    writeFileSync(
      join(repo, 'words', 'config.json'),
      JSON.stringify({
        backend: 'node',
        max_batch_size: 0,
        inputs: [{ name: 's', datatype: 'BYTES', shape: [1] }],
        outputs: [{ name: 'words', datatype: 'BYTES', shape: [-1] }],
      }),
    );
    db = await createTestDatabase();
    app = await startTestBatch(batchEnv(db.url, (prefix = testQueuePrefix()), { MODEL_REPOSITORY: repo, BATCH_INFER_THREADS: '1' }));
  });

  afterAll(async () => {
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    if (repo) rmSync(repo, { recursive: true, force: true });
  });

  it('each item is one sample of every input; each output is its rows by output name', async () => {
    const n = 10; // > max_batch_size 4: several model batches per chunk
    const items = Array.from({ length: n }, (_, i) => ({ x: [i, i + 0.5], tag: i % 2 ? `é${i}` : { b64: Buffer.from(`t${i}`).toString('base64') } }));
    const sub = await postJson(`${app.url}/v1/batches`, { task: 'infer', model: 'pipe', items, reducer: 'concat', chunkSize: 5 });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const done = await waitForState(app.url, sub.body.id as string, ['succeeded', 'failed'], 60_000);
    expect(done.state, done.error ?? '').toBe('succeeded');
    const out = done.result as { y: number[]; label: string[]; pid: number[] }[];
    expect(out.map(({ y, label }) => ({ y, label }))).toEqual(
      items.map((_, i) => ({ y: [3 * i, 3 * i + 1.5], label: [`${i % 2 ? 'é' : 't'}${i}:${6 * i + 1.5}`] })),
    );
    const pids = new Set(out.map((o) => o.pid[0]));
    expect(pids.has(process.pid)).toBe(false);
    expect([...pids].every((p) => Number.isInteger(p) && p! > 0)).toBe(true);
  });

  it('a model without a batch dimension runs item by item; each output is the whole output tensor', async () => {
    const items = ['a b c', { b64: Buffer.from('héllo wörld').toString('base64') }, 'x'];
    const sub = await postJson(`${app.url}/v1/batches`, { task: 'infer', model: 'words', items, reducer: 'concat' });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const done = await waitForState(app.url, sub.body.id as string, ['succeeded', 'failed'], 60_000);
    expect(done.state, done.error ?? '').toBe('succeeded');
    expect(done.result).toEqual([['a', 'b', 'c'], ['héllo', 'wörld'], ['x']]);
  });

  it('rejects items that do not fit the inputs with a 400 naming the input', async () => {
    const r = await postJson(`${app.url}/v1/batches`, { task: 'infer', model: 'pipe', items: [{ x: [1, 2] }], reducer: 'count' });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/items\[0\]: misses "tag"/);
  });
});
