import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '@tandem/auth';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, range, startTestBatch, waitUntil } from './support/batch-harness';

const ADMIN_KEY = 'tenancy-admin-key-0123456789abcdef';
const MISSING = '00000000-0000-4000-8000-000000000000';

interface Res {
  status: number;
  body: Record<string, unknown>;
}

describe('batches belong to the key that submitted them; per-key quotas (auth on, real sockets)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch; // quotas: 3 open batches, 5000 queued items
  let tight: RunningBatch; // the same database and keys; quota: 10,485 stored bytes
  let gw: RunningGateway;
  let emptyRepo = '';
  const keys: Record<'a' | 'b' | 'q1' | 'q2' | 'q3', { key: string; id: string }> = {} as never;

  const call = async (base: string, method: string, path: string, key: string, body?: unknown): Promise<Res> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text.split('\n')[0]) as Record<string, unknown>) : {} };
  };
  const submit = (key: string, items: unknown[], extra: Record<string, unknown> = {}, base = app.url): Promise<Res> =>
    call(base, 'POST', '/v1/batches', key, { task: 'score', reducer: 'summarize', chunkSize: 1000, items, ...extra });
  const listIds = async (key: string, base = app.url): Promise<string[]> =>
    ((await call(base, 'GET', '/v1/batches?limit=500', key)).body.items as { id: string }[]).map((b) => b.id);

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    // API role only: no workers, so batches stay queued and each quota's state is exact.
    const common = { TANDEM_AUTH: 'on', TANDEM_ADMIN_KEY: ADMIN_KEY, BATCH_ROLE: 'api', SCHEDULER_AGENT: 'false' };
    app = await startTestBatch(
      batchEnv(db.url, prefix, { ...common, BATCH_QUOTA_CONCURRENT_BATCHES: '3', BATCH_QUOTA_QUEUED_ITEMS: '5000', BATCH_QUOTA_STORED_MB: '0' }),
    );
    tight = await startTestBatch(
      batchEnv(db.url, prefix, {
        ...common,
        BATCH_QUOTA_CONCURRENT_BATCHES: '0',
        BATCH_QUOTA_QUEUED_ITEMS: '0',
        BATCH_QUOTA_STORED_MB: String(10_485 / 1024 / 1024),
      }),
    );
    const svc = app.app.get(ApiKeyService);
    for (const name of ['a', 'b', 'q1', 'q2', 'q3'] as const) {
      const k = await svc.create(`tenant-${name}`, ['batch'], 'test');
      keys[name] = { key: k.key, id: k.id };
    }
    emptyRepo = mkdtempSync(join(tmpdir(), 'tenancy-models-'));
    gw = await startGateway(
      loadGatewayConfig({
        DATABASE_URL: db.url,
        REDIS_URL: TEST_REDIS_URL,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'silent',
        HOST: '127.0.0.1',
        TANDEM_ADMIN_KEY: ADMIN_KEY,
        GATEWAY_PORT: '0',
        GATEWAY_GRPC_PORT: '0',
        MODEL_REPOSITORY: emptyRepo,
        BATCH_API_URL: app.url,
        SCHEDULER_NODE_NAME: 'tenancy-gw',
        SCHEDULER_DISCOVER_GPUS: 'false',
      }),
    );
  });

  afterAll(async () => {
    await Promise.all([app?.app.close(), tight?.app.close(), gw?.app.close()]);
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    if (emptyRepo) rmSync(emptyRepo, { recursive: true, force: true });
  });

  it("another key gets 404 on every route of A's batch, exactly as for a batch that does not exist", async () => {
    const a = await submit(keys.a.key, [1, 2, 3]);
    expect(a.status).toBe(201);
    const id = a.body.id as string;
    expect(a.body.owner).toBe(keys.a.id);
    const routes: [string, string][] = [
      ['GET', ''],
      ['GET', '/results'],
      ['GET', '/errors'],
      ['GET', '/events'],
      ['POST', '/pause'],
      ['POST', '/resume'],
      ['POST', '/cancel'],
      ['DELETE', ''],
    ];
    for (const [method, tail] of routes) {
      const theirs = await call(app.url, method, `/v1/batches/${id}${tail}`, keys.b.key);
      const none = await call(app.url, method, `/v1/batches/${MISSING}${tail}`, keys.b.key);
      expect(theirs, `${method} ${tail}`).toEqual({ status: 404, body: { error: `batch ${id} not found` } });
      expect(none, `${method} ${tail}`).toEqual({ status: 404, body: { error: `batch ${MISSING} not found` } });
    }
    // B's attempts changed nothing; A still controls its batch.
    expect((await call(app.url, 'GET', `/v1/batches/${id}`, keys.a.key)).body.state).toBe('queued');
    expect((await call(app.url, 'GET', `/v1/batches/${id}/results`, keys.a.key)).body).toEqual({ index: 0, state: 'pending' });
    expect((await call(app.url, 'POST', `/v1/batches/${id}/pause`, keys.a.key)).body.state).toBe('paused');
    expect((await call(app.url, 'POST', `/v1/batches/${id}/resume`, keys.b.key)).status).toBe(404);
    expect((await call(app.url, 'POST', `/v1/batches/${id}/resume`, keys.a.key)).body.state).toBe('queued');
    expect((await call(app.url, 'POST', `/v1/batches/${id}/cancel`, keys.a.key)).body.state).toBe('cancelled');
    expect((await call(app.url, 'DELETE', `/v1/batches/${id}`, keys.b.key)).status).toBe(404);
    expect((await call(app.url, 'DELETE', `/v1/batches/${id}`, keys.a.key)).status).toBe(204);
    expect((await call(app.url, 'GET', `/v1/batches/${id}`, keys.a.key)).status).toBe(404);
  });

  it('lists show a key only its own batches; admins see every batch and act on any', async () => {
    const a1 = (await submit(keys.a.key, [1])).body.id as string;
    const a2 = (await submit(keys.a.key, [2])).body.id as string;
    const b1 = (await submit(keys.b.key, [3])).body.id as string;
    const ofA = await listIds(keys.a.key);
    const ofB = await listIds(keys.b.key);
    expect(ofA).toEqual(expect.arrayContaining([a1, a2]));
    expect(ofA).not.toContain(b1);
    expect(ofB).toEqual([b1]);
    const all = await listIds(ADMIN_KEY);
    expect(all).toEqual(expect.arrayContaining([a1, a2, b1]));
    const viaAdmin = await call(app.url, 'GET', `/v1/batches/${b1}`, ADMIN_KEY);
    expect(viaAdmin.status).toBe(200);
    expect(viaAdmin.body.owner).toBe(keys.b.id);
    // The gateway's admin panel relays with the admin's own key, so it sees every tenant's batches.
    const panel = await call(gw.url, 'GET', '/admin/api/batches?limit=500', ADMIN_KEY);
    expect(panel.status).toBe(200);
    expect((panel.body.items as { id: string }[]).map((b) => b.id)).toEqual(expect.arrayContaining([a1, a2, b1]));
    expect((await call(gw.url, 'POST', `/admin/api/batches/${a1}/cancel`, ADMIN_KEY)).body.state).toBe('cancelled');
    expect((await call(app.url, 'POST', `/v1/batches/${a2}/cancel`, ADMIN_KEY)).body.state).toBe('cancelled');
    expect((await call(app.url, 'POST', `/v1/batches/${b1}/cancel`, keys.b.key)).body.state).toBe('cancelled');
  });

  it('idempotency keys are scoped per key: the same key string from two keys makes two batches', async () => {
    const a = await submit(keys.a.key, [5], { idempotencyKey: 'nightly-run' });
    const b = await submit(keys.b.key, [6], { idempotencyKey: 'nightly-run' });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body.id).not.toBe(a.body.id);
    const aAgain = await submit(keys.a.key, [7], { idempotencyKey: 'nightly-run' });
    const bAgain = await submit(keys.b.key, [8], { idempotencyKey: 'nightly-run' });
    expect([aAgain.status, aAgain.body.id]).toEqual([200, a.body.id]);
    expect([bAgain.status, bAgain.body.id]).toEqual([200, b.body.id]);
    expect(bAgain.body.counts).toMatchObject({ items: 1 });
    for (const [k, id] of [
      [keys.a.key, a.body.id],
      [keys.b.key, b.body.id],
    ] as const) {
      expect((await call(app.url, 'POST', `/v1/batches/${id as string}/cancel`, k)).status).toBe(201);
    }
  });

  it('open batches per key: 429 beyond the quota, admitted again once one finishes; admins are exempt', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await submit(keys.q1.key, [i]);
      expect(r.status).toBe(201);
      ids.push(r.body.id as string);
    }
    const over = await submit(keys.q1.key, [9]);
    expect(over).toEqual({
      status: 429,
      body: { error: 'quota exceeded: this key already has 3 open batches (queued, running or paused; at most 3); wait for one to finish or cancel one' },
    });
    // Other keys are not affected by q1's usage.
    expect((await submit(keys.q2.key, [1])).status).toBe(201);
    expect((await call(app.url, 'POST', `/v1/batches/${ids[0]}/cancel`, keys.q1.key)).status).toBe(201);
    expect((await submit(keys.q1.key, [9])).status).toBe(201);
    for (let i = 0; i < 4; i++) expect((await submit(ADMIN_KEY, [i])).status).toBe(201);
  });

  it('queued items per key: 429 once the new batch would pass the quota (JSON and streamed NDJSON)', async () => {
    // q2 already holds one open batch of 1 item from the previous test.
    expect((await submit(keys.q2.key, range(3000))).status).toBe(201);
    const over = await submit(keys.q2.key, range(2500));
    expect(over.status).toBe(429);
    expect(over.body.error).toBe(
      'quota exceeded: at most 5000 queued items per key (3001 already queued, this batch has more than 1999); wait for batches to finish',
    );
    const nd = await fetch(`${app.url}/v1/batches?task=score&reducer=summarize`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.q2.key}`, 'content-type': 'application/x-ndjson' },
      body: range(2500).join('\n'),
    });
    expect(nd.status).toBe(429);
    expect(((await nd.json()) as { error: string }).error).toMatch(/^quota exceeded: at most 5000 queued items per key/);
    expect((await submit(keys.q2.key, range(1999))).status).toBe(201);
  });

  it('stored bytes per key: 413 once items would pass the quota; deleting a finished batch frees it', async () => {
    const small = await submit(keys.q3.key, range(1000), {}, tight.url); // [[0,…,999]]: 3,893 bytes
    expect(small.status).toBe(201);
    const big = range(1000, 1_000_000); // 8,003 bytes
    const over = await submit(keys.q3.key, big, {}, tight.url);
    expect(over).toEqual({
      status: 413,
      body: {
        error:
          'quota exceeded: this key would store 11896 bytes of batch data (at most 10485); delete finished batches (DELETE /v1/batches/<id>) to free space',
      },
    });
    // Still open: not deletable. Once finished (here: cancelled) and deleted, the space is free.
    const id = small.body.id as string;
    expect(await call(tight.url, 'DELETE', `/v1/batches/${id}`, keys.q3.key)).toEqual({ status: 409, body: { error: 'cannot delete a batch that is queued' } });
    expect((await call(tight.url, 'POST', `/v1/batches/${id}/cancel`, keys.q3.key)).status).toBe(201);
    expect((await call(tight.url, 'DELETE', `/v1/batches/${id}`, keys.q3.key)).status).toBe(204);
    expect((await submit(keys.q3.key, big, {}, tight.url)).status).toBe(201);
    // 8,003 stored + 2,693 more would pass 10,485.
    expect((await submit(keys.q3.key, range(700), {}, tight.url)).body.error).toMatch(/would store 10696 bytes/);
  });

  it("a key's submissions are serialized: one still uploading makes the next wait, then 429", async () => {
    const url = new URL(`${app.url}/v1/batches?task=score&reducer=summarize`);
    // An NDJSON upload that sends a few lines and then holds the transaction open.
    const slow = request(url, { method: 'POST', headers: { authorization: `Bearer ${keys.b.key}`, 'content-type': 'application/x-ndjson' } });
    const answered = new Promise<number>((resolve, reject) => {
      slow.on('response', (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      slow.on('error', reject);
    });
    slow.write('1\n2\n');
    // Its transaction takes the key's (advisory) lock before it reads a line.
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      await waitUntil(
        async () => (await pg.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted`)).rowCount === 1,
        'the upload to hold the lock',
      );
    } finally {
      await pg.end();
    }
    const second = await submit(keys.b.key, [1]);
    expect(second).toEqual({ status: 429, body: { error: 'another submission by this key is still being stored; retry when it has finished' } });
    expect((await submit(keys.a.key, [1])).status).toBe(201); // other keys are not held up
    slow.end('3\n');
    expect(await answered).toBe(201);
  });
});
