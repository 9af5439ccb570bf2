import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, startTestBatch } from './support/batch-harness';
import { gatewayEnv } from './support/gateway-harness';
import { api, fileLines, sameResponse, uploadJsonl, waitForStatus, writeSlowModel } from './support/file-batches-harness';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { readFileSync } from 'node:fs';

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
const SLOW = '/v2/models/slow/infer';
/** A node model that takes 100 ms per request (one at a time): batches that are still running when the test acts. */

const scorerLine = (i: number, url = SCORER): Record<string, unknown> => ({
  custom_id: `r${i}`,
  method: 'POST',
  url,
  body: { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [i / 10] }] },
});
const CLS = '/v2/models/ppocr_cls/infer';

describe('file batches (OpenAI Batch API over OIP requests)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let gw: RunningGateway;
  let repo: TempRepo;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    repo = tempModelRepo({
      scorer: { from: 'scorer', config: {} },
      ppocr_cls: { from: 'ppocr_cls', config: JSON.parse(readFileSync('models/ppocr_cls/config.json', 'utf8')) as Record<string, unknown> },
    });
    writeSlowModel(repo.dir);
    app = await startTestBatch(
      batchEnv(db.url, prefix, { MODEL_REPOSITORY: repo.dir, BATCH_INFER_THREADS: '1', BATCH_DEVICE_SHARES: 'fixed', BATCH_CONCURRENCY: '1' }),
    );
    gw = await startGateway(loadGatewayConfig(gatewayEnv(db.url, { MODEL_REPOSITORY: repo.dir })));
  }, 120_000);

  afterAll(async () => {
    repo?.remove();
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
      return {
        custom_id: `s${i}`,
        method: 'POST',
        url: SCORER,
        body: { ...(i % 4 === 0 ? { id: `req-${i}` } : {}), inputs: [{ name: 'x', shape: [rows, 1], datatype: 'FP32', data: floats(rows, i + 1) }] },
      };
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
      const created = await api(app.url, 'POST', '/v1/batches', {
        input_file_id: input,
        endpoint,
        completion_window: '24h',
        metadata: { run: 'e2e' },
        chunk_lines: 4,
      });
      expect(created.status).toBe(200);
      expect(created.body).toMatchObject({
        object: 'batch',
        endpoint,
        input_file_id: input,
        completion_window: '24h',
        status: 'in_progress',
        metadata: { run: 'e2e' },
      });
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
        expect(
          sameResponse(resp.body, want),
          `${lines[i]!.custom_id}: ${JSON.stringify(resp.body).slice(0, 300)} vs ${JSON.stringify(want).slice(0, 300)}`,
        ).toBe(true);
      }
    }
  }, 300_000);

  it('puts each bad line in the error file with the status and body online gives, and its line number', async () => {
    const badTensors = [
      { inputs: [{ name: 'x', shape: [1, 1], datatype: 'INT32', data: [1] }] },
      { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] },
      { inputs: [{ name: 'x', shape: [2, 1], datatype: 'FP32', data: [1] }] },
      { inputs: [{ name: 'y', shape: [1, 1], datatype: 'FP32', data: [1] }] },
      { inputs: [] },
    ];
    const lines: object[] = [
      scorerLine(0),
      ...badTensors.map((body, k) => ({ custom_id: `t${k}`, method: 'POST', url: SCORER, body })),
      { method: 'POST', url: SCORER, body: badTensors[0] }, // no custom_id
      scorerLine(0), // duplicate custom_id r0
      { ...scorerLine(7), method: 'GET' },
      scorerLine(8, '/v2/models/nope/infer'),
      scorerLine(9, '/v2/models/ppocr_cls/infer'),
      scorerLine(10, '/v2/models/scorer/ready'),
      scorerLine(11),
    ];
    const input = await uploadJsonl(app.url, lines);
    const created = await api(app.url, 'POST', '/v1/batches', { input_file_id: input, endpoint: SCORER, completion_window: '24h', chunk_lines: 3 });
    const done = await waitForStatus(app.url, created.body.id as string, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: lines.length, completed: 2, failed: lines.length - 2 });
    expect((await fileLines(app.url, done.output_file_id)).map((l) => l.custom_id)).toEqual(['r0', 'r11']);
    const errors = await fileLines(app.url, done.error_file_id);
    const byLine = new Map(errors.map((e) => [e.line as number, e]));
    expect([...byLine.keys()]).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const status = (l: number): number => (byLine.get(l)!.response as { status_code: number }).status_code;
    const message = (l: number): string => (byLine.get(l)!.response as { body: { error: string } }).body.error;
    // Bad tensors: exactly online's 400 and message.
    for (let k = 0; k < badTensors.length; k++) {
      const res = await fetch(`${gw.url}${SCORER}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(badTensors[k]) });
      expect([status(k + 2), message(k + 2), byLine.get(k + 2)!.custom_id]).toEqual([res.status, ((await res.json()) as { error: string }).error, `t${k}`]);
      expect(res.status).toBe(400);
    }
    expect([status(7), byLine.get(7)!.custom_id, message(7)]).toEqual([400, null, 'custom_id must be a non-empty string']);
    expect([status(8), byLine.get(8)!.custom_id]).toEqual([400, 'r0']);
    expect(message(8)).toMatch(/duplicate custom_id "r0"/);
    expect([status(9), message(9)]).toEqual([400, 'method must be "POST" (got "GET")']);
    const unknown = await fetch(`${gw.url}/v2/models/nope/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(badTensors[0]),
    });
    expect([status(10), message(10)]).toEqual([404, ((await unknown.json()) as { error: string }).error]);
    expect([status(11), message(11)]).toEqual([400, `url "/v2/models/ppocr_cls/infer" is not the batch's endpoint "${SCORER}"`]);
    expect(status(12)).toBe(400);
    for (const e of errors) {
      expect(e.error).toBeNull();
      expect(e.id).toMatch(/^batch_req_/);
    }
  }, 120_000);

  it('rejects bad creations: unknown file, another purpose, unknown model, bad endpoint, bad window', async () => {
    const input = await uploadJsonl(app.url, [scorerLine(0)]);
    const create = (b: Record<string, unknown>) =>
      api(app.url, 'POST', '/v1/batches', { input_file_id: input, endpoint: SCORER, completion_window: '24h', ...b });
    expect(await create({ input_file_id: 'file-000000000000000000000000' })).toMatchObject({
      status: 404,
      body: { error: 'file file-000000000000000000000000 not found' },
    });
    expect(await create({ endpoint: '/v2/models/nope/infer' })).toMatchObject({ status: 404, body: { error: "unknown model 'nope'" } });
    expect((await create({ endpoint: '/v1/chat/completions' })).status).toBe(400);
    expect((await create({ completion_window: '25x' })).status).toBe(400);
    expect((await create({ completion_window: '200h' })).status).toBe(400);
    expect((await create({ metadata: { a: 1 } })).status).toBe(400);
  });

  it('cancel: cancelling → cancelled, answered lines kept, every other line in the error file once', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => scorerLine(i, SLOW));
    const input = await uploadJsonl(app.url, lines);
    const created = await api(app.url, 'POST', '/v1/batches', { input_file_id: input, endpoint: SLOW, completion_window: '24h', chunk_lines: 2 });
    const id = created.body.id as string;
    for (;;) {
      const b = await api(app.url, 'GET', `/v1/batches/${id}`);
      if ((b.body.request_counts as { completed: number }).completed >= 4) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const c = await api(app.url, 'POST', `/v1/batches/${id}/cancel`);
    expect(c.status).toBe(200);
    expect(['cancelling', 'cancelled']).toContain(c.body.status);
    const done = await waitForStatus(app.url, id, ['cancelled']);
    expect(done.cancelled_at).toBeGreaterThan(0);
    const out = await fileLines(app.url, done.output_file_id);
    const err = await fileLines(app.url, done.error_file_id);
    expect(out.length).toBe(done.request_counts.completed);
    expect(out.length).toBeGreaterThanOrEqual(4);
    expect(out.length).toBeLessThan(40);
    expect(err.every((e) => (e.error as { code: string }).code === 'batch_cancelled')).toBe(true);
    const ids = [...out, ...err].map((l) => l.custom_id as string).sort();
    expect(ids).toEqual(lines.map((l) => l.custom_id as string).sort());
    expect(done.request_counts).toEqual({ total: 40, completed: out.length, failed: err.length });
    expect((await api(app.url, 'POST', `/v1/batches/${id}/cancel`)).body.status).toBe('cancelled');
  }, 120_000);

  it('expiry: past expires_at the batch ends expired, finished lines in the output, the rest batch_expired', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => scorerLine(i, SLOW));
    const input = await uploadJsonl(app.url, lines);
    const created = await api(app.url, 'POST', '/v1/batches', { input_file_id: input, endpoint: SLOW, completion_window: '2s', chunk_lines: 2 });
    expect((created.body.expires_at as number) - (created.body.created_at as number)).toBeLessThanOrEqual(3);
    const done = await waitForStatus(app.url, created.body.id as string, ['expired', 'completed']);
    expect(done.status).toBe('expired');
    expect(done.expired_at).toBeGreaterThan(0);
    const out = await fileLines(app.url, done.output_file_id);
    const err = await fileLines(app.url, done.error_file_id);
    expect(out.length).toBeGreaterThan(0);
    expect(err.length).toBeGreaterThan(0);
    expect(err.every((e) => (e.error as { code: string }).code === 'batch_expired' && e.response === null)).toBe(true);
    expect([...out, ...err].map((l) => l.custom_id as string).sort()).toEqual(lines.map((l) => l.custom_id as string).sort());
    expect(done.request_counts).toEqual({ total: 60, completed: out.length, failed: err.length });
  }, 120_000);

  it('GET /v1/batches: OpenAI list (data, after, has_more) and the chord page (items, nextCursor) in one answer', async () => {
    const chord = await api(app.url, 'POST', '/v1/batches', { task: 'test-probe', items: [{ n: 1 }, { n: 2 }], reducer: 'count' });
    expect(chord.status).toBe(201);
    const page = await api(app.url, 'GET', '/v1/batches?limit=2');
    const data = page.body.data as { id: string; object: string }[];
    const items = page.body.items as { id: string }[];
    expect(page.body.object).toBe('list');
    expect(data.length).toBe(2);
    expect(data[0]!.id).toBe(chord.body.id);
    expect(items.map((i) => i.id)[0]).toBe(chord.body.id);
    expect(page.body.has_more).toBe(true);
    expect(page.body.nextCursor).toMatch(/^\d+$/);
    const next = await api(app.url, 'GET', `/v1/batches?limit=2&after=${data[1]!.id}`);
    const byCursor = await api(app.url, 'GET', `/v1/batches?limit=2&cursor=${page.body.nextCursor as string}`);
    expect((next.body.data as { id: string }[]).map((d) => d.id)).toEqual((byCursor.body.data as { id: string }[]).map((d) => d.id));
    expect(data[1]!.id).toMatch(/^batch_/);
  });
});
