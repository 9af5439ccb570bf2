import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { startBatch, type RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';

describe('health endpoints over a real socket', () => {
  let db: TestDatabase;
  let gateway: RunningGateway;
  let batch: RunningBatch;
  let brokenGateway: RunningGateway;

  beforeAll(async () => {
    db = await createTestDatabase();
    const common = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: testQueuePrefix(),
      LOG_LEVEL: 'silent',
      TANDEM_AUTH: 'off',
      HOST: '127.0.0.1',
    };
    gateway = await startGateway(loadGatewayConfig({ ...common, GATEWAY_PORT: '0', GATEWAY_GRPC_PORT: '0' }));
    batch = await startBatch(loadBatchConfig({ ...common, BATCH_PORT: '0' }));
    // Same gateway, but its queue store points at a port where nothing listens.
    brokenGateway = await startGateway(loadGatewayConfig({ ...common, REDIS_URL: 'redis://127.0.0.1:1', GATEWAY_PORT: '0', GATEWAY_GRPC_PORT: '0' }));
  });

  afterAll(async () => {
    await Promise.all([gateway?.app.close(), batch?.app.close(), brokenGateway?.app.close()]);
    await db?.drop();
  });

  it('live and ready answer 200 on both apps when Postgres and Redis answer', async () => {
    for (const base of [gateway.url, batch.url]) {
      const live = await fetch(`${base}/v2/health/live`);
      expect(live.status).toBe(200);
      const ready = await fetch(`${base}/v2/health/ready`);
      expect(ready.status).toBe(200);
      // The gateway also waits for its model repository to load (issue 3).
      const models = base === gateway.url ? { models: 'ok' } : {};
      expect(await ready.json()).toEqual({ ready: true, checks: { postgres: 'ok', 'queue(redis)': 'ok', ...models } });
    }
  });

  it('ready is 503 naming the failing dependency when the queue store is down', async () => {
    const res = await fetch(`${brokenGateway.url}/v2/health/ready`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: string; checks: Record<string, string> };
    expect(body.checks.postgres).toBe('ok');
    expect(body.checks['queue(redis)']).not.toBe('ok');
    expect(body.error).toMatch(/queue\(redis\)/);
  });

  it('unknown routes get a JSON 404 with an error field and a request id header', async () => {
    const res = await fetch(`${gateway.url}/v2/nope`, { headers: { 'x-request-id': 'abc-123' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe('abc-123');
    expect(await res.json()).toEqual({ error: 'Cannot GET /v2/nope' });
  });
});
