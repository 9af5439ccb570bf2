import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, startTestBatch } from './support/batch-harness';
import { gatewayEnv } from './support/gateway-harness';
import { api, fileLines, sameResponse, uploadJsonl, waitForStatus } from './support/file-batches-harness';

/** Deterministic pseudo-random floats (no Math.random: reruns compare the same inputs). */
function floats(n: number, seed: number): number[] {
  let x = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return Math.round(((x >>> 0) / 2 ** 32 - 0.5) * 2000) / 1000;
  });
}

const SCORER = '/v2/models/scorer/infer';
const CLS = '/v2/models/ppocr_cls/infer';

describe('file batches (OpenAI Batch API over OIP requests)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let gw: RunningGateway;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    app = await startTestBatch(batchEnv(db.url, prefix, { MODEL_REPOSITORY: 'models', BATCH_INFER_THREADS: '1', BATCH_DEVICE_SHARES: 'fixed' }));
    gw = await startGateway(loadGatewayConfig(gatewayEnv(db.url)));
  }, 120_000);

  afterAll(async () => {
    await gw?.app.close();
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  async function online(url: string, body: unknown): Promise<unknown> {
    const res = await fetch(`${gw.url}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return res.json();
  }

  it('answers every line as the online endpoint does (node scorer and ONNX ppocr_cls), in input order', async () => {
    const scorer = Array.from({ length: 11 }, (_, i) => {
      const rows = (i % 3) + 1;
      return { custom_id: `s${i}`, method: 'POST', url: SCORER, body: { ...(i % 4 === 0 ? { id: `req-${i}` } : {}), inputs: [{ name: 'x', shape: [rows, 1], datatype: 'FP32', data: floats(rows, i + 1) }] } };
    });
    const cls = Array.from({ length: 3 }, (_, i) => ({
      custom_id: `c${i}`,
      method: 'POST',
      url: CLS,
      body: { inputs: [{ name: 'x', shape: [1, 3, 48, 192], datatype: 'FP32', data: floats(3 * 48 * 192, 100 + i) }] },
    }));
    for (const [endpoint, lines] of [
      [SCORER, scorer],
      [CLS, cls],
    ] as const) {
      const input = await uploadJsonl(app.url, lines);
      const created = await api(app.url, 'POST', '/v1/batches', { input_file_id: input, endpoint, completion_window: '24h', metadata: { run: 'e2e' }, chunk_lines: 4 });
      expect(created.status).toBe(200);
      expect(created.body).toMatchObject({ object: 'batch', endpoint, input_file_id: input, completion_window: '24h', status: 'in_progress', metadata: { run: 'e2e' } });
      expect(created.body.id).toMatch(/^batch_[0-9a-f]{32}$/);
      const done = await waitForStatus(app.url, created.body.id as string, ['completed', 'failed']);
      expect(done.status).toBe('completed');
      expect(done.request_counts).toEqual({ total: lines.length, completed: lines.length, failed: 0 });
      expect(done.error_file_id).toBeNull();
      const out = await fileLines(app.url, done.output_file_id);
      expect(out.map((l) => l.custom_id)).toEqual(lines.map((l) => l.custom_id));
      for (let i = 0; i < lines.length; i++) {
        const want = await online(endpoint, lines[i]!.body);
        const got = out[i]!;
        expect(got.id).toMatch(/^batch_req_/);
        expect(got.error).toBeNull();
        const resp = got.response as { status_code: number; request_id: string; body: unknown };
        expect(resp.status_code).toBe(200);
        expect(typeof resp.request_id).toBe('string');
        expect(sameResponse(resp.body, want), `${lines[i]!.custom_id}: ${JSON.stringify(resp.body).slice(0, 300)} vs ${JSON.stringify(want).slice(0, 300)}`).toBe(true);
      }
    }
  }, 300_000);
});
