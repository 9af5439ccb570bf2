import { resolve } from 'node:path';
import { answerWhileUploading } from './support/grpc-raw';
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBatch, type RunningBatch } from '../apps/batch/src/bootstrap';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { GrpcServerService } from '../apps/gateway/src/grpc/grpc-server.service';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';

const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

describe('API keys, scopes and rate limits (auth on)', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let batch: RunningBatch;
  let grpcAddr: string;

  const req = (base: string, path: string, key?: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) },
    });
  const infer = (key?: string): Promise<Response> =>
    req(gw.url, '/v2/models/scorer/infer', key, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [0.5] }] }),
    });
  const newKey = async (name: string, scopes: string[]): Promise<string> => {
    const res = await req(gw.url, '/admin/api/keys', ADMIN_KEY, { method: 'POST', body: JSON.stringify({ name, scopes }) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { key: string }).key;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const common = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: testQueuePrefix(),
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      TANDEM_ADMIN_KEY: ADMIN_KEY,
      RATE_LIMIT_PER_KEY_RPS: '20',
      RATE_LIMIT_BURST: '20',
    };
    gw = await startGateway(loadGatewayConfig({ ...common, GATEWAY_PORT: '0', GATEWAY_GRPC_PORT: '0', MODEL_REPOSITORY: resolve(process.cwd(), 'models') }));
    batch = await startBatch(loadBatchConfig({ ...common, BATCH_PORT: '0' }));
    grpcAddr = `127.0.0.1:${gw.app.get(GrpcServerService).port}`;
  });

  afterAll(async () => {
    await Promise.all([gw?.app.close(), batch?.app.close()]);
    await db?.drop();
  });

  it('health and metrics stay open; everything else needs a key (401 with a JSON error)', async () => {
    expect((await req(gw.url, '/v2/health/ready')).status).toBe(200);
    expect((await req(batch.url, '/v2/health/live')).status).toBe(200);
    expect((await req(gw.url, '/metrics')).status).toBe(200);
    for (const [base, path] of [
      [gw.url, '/v2'],
      [gw.url, '/v2/models/scorer'],
      [gw.url, '/admin/api/devices'],
      [batch.url, '/v1/batches'],
    ] as const) {
      const res = await req(base, path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await res.json()).toEqual({ error: 'missing API key: send "Authorization: Bearer <key>"' });
      expect((await req(base, path, 'not-a-real-key-at-all')).status).toBe(401);
    }
    expect((await infer()).status).toBe(401);
  });

  it('the admin creates scoped keys: secrets shown once, stored hashed, audited', async () => {
    const me = await (await req(gw.url, '/admin/api/whoami', ADMIN_KEY)).json();
    expect(me).toEqual({ id: 'bootstrap', name: 'bootstrap admin (TANDEM_ADMIN_KEY)', scopes: ['admin'] });
    const inferKey = await newKey('svc-infer', ['infer']);
    expect(inferKey).toMatch(/^tdm_[0-9a-f]{12}_[\w-]{43}$/);
    const list = (await (await req(gw.url, '/admin/api/keys', ADMIN_KEY)).json()) as { keys: Record<string, unknown>[] };
    // The secret is all after the id: it may itself contain '_' (base64url), so not split('_')[2].
    expect(JSON.stringify(list)).not.toContain(inferKey.slice(inferKey.indexOf('_', 4) + 1));
    expect(list.keys.map((k) => k.name)).toEqual(expect.arrayContaining(['bootstrap admin (TANDEM_ADMIN_KEY)', 'svc-infer']));
    expect(list.keys.every((k) => !('hash' in k) && !('key' in k))).toBe(true);

    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    const rows = (await pg.query(`SELECT hash FROM api_key WHERE name = 'svc-infer'`)).rows as { hash: string }[];
    const audit = (await pg.query(`SELECT actor, action FROM audit_log WHERE action = 'api_key.create'`)).rows;
    await pg.end();
    expect(rows[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0]!.hash).not.toContain(inferKey);
    expect(audit).toEqual([{ actor: 'key:bootstrap (bootstrap admin (TANDEM_ADMIN_KEY))', action: 'api_key.create' }]);

    const bad = await req(gw.url, '/admin/api/keys', ADMIN_KEY, { method: 'POST', body: JSON.stringify({ name: 'x', scopes: ['root'] }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/scopes/);
  });

  it('scopes: 403 for the wrong scope on REST (gateway and batch app); revocation is immediate', async () => {
    const inferKey = await newKey('only-infer', ['infer']);
    const batchKey = await newKey('only-batch', ['batch']);
    expect((await infer(inferKey)).status).toBe(200);
    const forbidden = await req(gw.url, '/admin/api/devices', inferKey);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toEqual({ error: "this key lacks the 'admin' scope" });
    expect((await infer(batchKey)).status).toBe(403);

    const submit = (key: string): Promise<Response> =>
      req(batch.url, '/v1/batches', key, { method: 'POST', body: JSON.stringify({ task: 'score', items: [1, 2, 3], reducer: 'summarize', chunkSize: 10 }) });
    expect((await submit(inferKey)).status).toBe(403);
    expect([201, 202]).toContain((await submit(batchKey)).status);
    expect([201, 202]).toContain((await submit(ADMIN_KEY)).status); // admin implies every scope

    const id = inferKey.split('_')[1]!;
    expect((await req(gw.url, `/admin/api/keys/${id}`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(204);
    expect((await infer(inferKey)).status).toBe(401);
    expect((await req(gw.url, `/admin/api/keys/${id}`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(409);
    expect((await req(gw.url, '/admin/api/keys/nope', ADMIN_KEY, { method: 'DELETE' })).status).toBe(404);
  });

  it('gRPC checks the authorization metadata: UNAUTHENTICATED, PERMISSION_DENIED, OK', async () => {
    const defs = loadSync(resolve(process.cwd(), 'apps/gateway/src/grpc/proto/grpc_service.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = loadPackageDefinition(defs) as unknown as {
      inference: { GRPCInferenceService: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => Record<string, Function> & { close(): void } };
    };
    const client = new pkg.inference.GRPCInferenceService(grpcAddr, credentials.createInsecure());
    const live = (key?: string): Promise<number> =>
      new Promise((ok) => {
        const md = new Metadata();
        if (key) md.set('authorization', `Bearer ${key}`);
        client.ServerLive!({}, md, (err: ServiceError | null) => ok(err ? err.code : status.OK));
      });
    const batchKey = await newKey('grpc-batch', ['batch']);
    const inferKey = await newKey('grpc-infer', ['infer']);
    expect(await live()).toBe(status.UNAUTHENTICATED);
    expect(await live('garbage-garbage-garbage')).toBe(status.UNAUTHENTICATED);
    expect(await live(batchKey)).toBe(status.PERMISSION_DENIED);
    expect(await live(inferKey)).toBe(status.OK);
    client.close();
  });

  it('gRPC refuses a call without a key before reading its message: UNAUTHENTICATED while the upload is still open', async () => {
    // A 1 MiB message is announced and 1 KiB of it sent; the stream is never ended.
    const answer = await answerWhileUploading(grpcAddr, Buffer.concat([Buffer.from([0, 0, 0x10, 0, 0]), Buffer.alloc(1024)]));
    expect(answer['grpc-status']).toBe(String(status.UNAUTHENTICATED));
  });

  it('per-key rate limit: 429 with Retry-After past the burst, other keys unaffected', async () => {
    const noisy = await newKey('noisy', ['infer']);
    const quiet = await newKey('quiet', ['infer']);
    const statuses = await Promise.all(Array.from({ length: 40 }, () => req(gw.url, '/v2', noisy).then((r) => r)));
    const limited = statuses.filter((r) => r.status === 429);
    expect(statuses.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(15);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited[0]!.json()).toEqual({ error: 'rate limit of 20 requests/s for this key exceeded' });
    expect((await req(gw.url, '/v2', quiet)).status).toBe(200);
  });
});
