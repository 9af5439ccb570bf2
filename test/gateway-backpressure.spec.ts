import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { InferenceService } from '../apps/gateway/src/inference/inference.service';
import type { ModelInstance, Replica } from '@tandem/inference';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

// Fixture repository: the scorer with max_batch_size 8, one replica, queue of 4 requests.
const REPO = 'test/fixtures/inference/models';
const DEFAULT_TIMEOUT_MS = 3000;

/**
 * These tests hold the only replica busy (pool.acquire from the test) so that requests
 * deterministically queue, then release it: no timing assumptions about model speed.
 */
describe('batching, back-pressure and deadlines over a real socket', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let scorer: ModelInstance;

  const infer = (xs: number[], parameters?: object) =>
    fetch(`${gw.url}/v2/models/scorer/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', shape: [xs.length, 1], datatype: 'FP32', data: xs }], ...(parameters ? { parameters } : {}) }),
    });

  /** Waits (bounded) until `n` requests sit in the scorer's queue. */
  async function queued(n: number): Promise<void> {
    for (let i = 0; i < 2000 && scorer.batcher.queueDepth < n; i++) await new Promise((r) => setTimeout(r, 5));
    expect(scorer.batcher.queueDepth).toBe(n);
  }

  function hold(): Replica {
    const r = scorer.pool.acquire();
    if (!r) throw new Error('replica already busy');
    return r;
  }

  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    gw = await startGateway(
      loadGatewayConfig({
        ...gatewayEnv(db.url),
        MODEL_REPOSITORY: REPO,
        INFERENCE_DEFAULT_TIMEOUT_MS: String(DEFAULT_TIMEOUT_MS),
      }),
    );
    scorer = gw.app.get(InferenceService)['engine'].instance('scorer'); // the test holds its replica: white-box
  });

  afterAll(async () => {
    await gw?.app.close();
    await db?.drop();
  });

  it('merges concurrent requests into one batch and scatters each its own rows', async () => {
    const batchesBefore = await metric('tandem_inference_batch_size_count{model="scorer"}');
    const itemsBefore = await metric('tandem_inference_batch_size_sum{model="scorer"}');
    const r = hold();
    const pending = [infer([0.1]), infer([0.2, 0.3]), infer([-0.4])];
    await queued(3);
    scorer.pool.release(r);
    const responses = await Promise.all(pending);
    const bodies = (await Promise.all(responses.map((x) => x.json()))) as { outputs: { shape: number[]; data: number[] }[] }[];
    expect(responses.map((x) => x.status)).toEqual([200, 200, 200]);
    expect(bodies.map((b) => b.outputs[0]!.shape)).toEqual([
      [1, 1],
      [2, 1],
      [1, 1],
    ]);
    [[0.1], [0.2, 0.3], [-0.4]].forEach((xs, i) => xs.forEach((v, j) => expect(bodies[i]!.outputs[0]!.data[j]).toBeCloseTo(Math.tanh(v), 6)));
    // One batch of 4 rows, visible in Prometheus.
    expect(await metric('tandem_inference_batch_size_count{model="scorer"}')).toBe(batchesBefore + 1);
    expect(await metric('tandem_inference_batch_size_sum{model="scorer"}')).toBe(itemsBefore + 4);
  });

  it('never merges more than max_batch_size rows; the rest runs in the next batch', async () => {
    const before = scorer.batcher.stats.batches;
    const r = hold();
    const pending = [infer([1, 1, 1, 1, 1]), infer([2, 2, 2, 2])];
    await queued(2);
    scorer.pool.release(r);
    expect((await Promise.all(pending)).map((x) => x.status)).toEqual([200, 200]);
    expect(scorer.batcher.stats.batches - before).toBe(2);
  });

  it('answers 503 with Retry-After once the queue is full, and serves the queued ones after', async () => {
    const r = hold();
    const pending = [infer([1]), infer([2]), infer([3]), infer([4])];
    await queued(4);
    const rejectedBefore = await metric('tandem_inference_failures_total{model="scorer",reason="queue_full"}');
    const over = await infer([5]);
    expect(over.status).toBe(503);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await over.json()).toEqual({ error: expect.stringMatching(/overloaded/) });
    expect(await metric('tandem_inference_failures_total{model="scorer",reason="queue_full"}')).toBe(rejectedBefore + 1);
    scorer.pool.release(r);
    expect((await Promise.all(pending)).map((x) => x.status)).toEqual([200, 200, 200, 200]);
  });

  it('refuses a request to a full queue before its body is read (onRequest): the 503 comes back with no upload sent', async () => {
    const r = hold();
    const pending = [infer([1]), infer([2]), infer([3]), infer([4])];
    await queued(4);
    const { connect } = await import('node:net');
    const { port } = new URL(gw.url);
    const sock = connect({ host: '127.0.0.1', port: Number(port) });
    let text = '';
    const answered = new Promise<void>((done) =>
      sock.on('data', (d: Buffer) => ((text += d.toString('latin1')), text.includes('\r\n\r\n') && text.includes('}') && done())),
    );
    // Headers only: a 10 MB binary body is announced and never sent.
    sock.write(
      `POST /v2/models/scorer/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ninference-header-content-length: 80\r\ncontent-length: ${10 << 20}\r\n\r\n`,
    );
    await answered;
    sock.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 503 /);
    expect(text).toMatch(/\r\nretry-after: \d+\r\n/i);
    expect(text).toMatch(/\{"error":"model 'scorer' is overloaded: 4 requests queued"\}/);
    scorer.pool.release(r);
    expect((await Promise.all(pending)).map((x) => x.status)).toEqual([200, 200, 200, 200]);
  });

  it('an admitted upload holds its place while its body is read, and gives it back when the upload is abandoned', async () => {
    const r = hold();
    const pending = [infer([1]), infer([2]), infer([3])];
    await queued(3);
    const { connect } = await import('node:net');
    const { port } = new URL(gw.url);
    const sock = connect({ host: '127.0.0.1', port: Number(port) });
    await new Promise((done) => sock.once('connect', done));
    // Admitted on its headers (3 queued + 1 in transit = the limit of 4); half the body sent.
    sock.write(`POST /v2/models/scorer/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{"inputs":[`);
    for (let i = 0; i < 400 && scorer.batcher.admissionsInTransit < 1; i++) await new Promise((res) => setTimeout(res, 5));
    expect(scorer.batcher.admissionsInTransit).toBe(1);
    const over = await infer([4]); // its place is taken by the upload in transit
    expect(over.status).toBe(503);
    expect(await over.json()).toEqual({ error: "model 'scorer' is overloaded: 3 requests queued" });
    sock.destroy(); // abandoned: the place comes back at once, not after the 2 s safety net
    for (let i = 0; i < 100 && scorer.batcher.admissionsInTransit > 0; i++) await new Promise((res) => setTimeout(res, 5)); // well under 2 s
    expect(scorer.batcher.admissionsInTransit).toBe(0);
    pending.push(infer([5]));
    await queued(4);
    scorer.pool.release(r);
    expect((await Promise.all(pending)).map((x) => x.status)).toEqual([200, 200, 200, 200]);
    expect(scorer.batcher.admissionsInTransit).toBe(0); // read bodies gave theirs back too
  });

  it('expires a request at its `timeout` (µs) while queued: 504, and it never reaches a replica', async () => {
    const ranBefore = scorer.batcher.stats.requests;
    const r = hold();
    const res = await infer([0.5], { timeout: 50_000 });
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: expect.stringMatching(/deadline of 50 ms exceeded while queued/) });
    expect(scorer.batcher.queueDepth).toBe(0);
    scorer.pool.release(r);
    expect(scorer.batcher.stats.requests).toBe(ranBefore);
  });

  it('applies the server default deadline when the request names none', async () => {
    const ranBefore = scorer.batcher.stats.requests;
    const r = hold();
    const res = await infer([0.5]);
    scorer.pool.release(r);
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: expect.stringMatching(new RegExp(`deadline of ${DEFAULT_TIMEOUT_MS} ms`)) });
    expect(scorer.batcher.stats.requests).toBe(ranBefore);
  });

  it('reports replicas and queue depth in /metrics', async () => {
    expect(await metric('tandem_inference_replicas{model="scorer",version="1"}')).toBe(1);
    expect(await metric('tandem_inference_queue_depth{model="scorer",version="1"}')).toBe(0);
  });
});
