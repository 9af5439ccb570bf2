import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBatch, type RunningBatch } from '../apps/batch/src/bootstrap';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { runFuzz } from '../scripts/fuzz/fuzz-runner';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';

// The short version of `npm run fuzz` (which runs ≥10,000 cases): same generator, other seeds.
const KEY = 'fuzz-test-admin-key-0123456789';

describe('fuzzing OIP REST and batch submissions (short run)', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let batch: RunningBatch;

  beforeAll(async () => {
    db = await createTestDatabase();
    const common = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: testQueuePrefix(),
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      TANDEM_ADMIN_KEY: KEY,
    };
    gw = await startGateway(
      loadGatewayConfig({
        ...common,
        GATEWAY_PORT: '0',
        GATEWAY_GRPC_PORT: '0',
        MODEL_REPOSITORY: resolve(process.cwd(), 'models'),
        GATEWAY_BODY_LIMIT_MB: '8',
      }),
    );
    batch = await startBatch(loadBatchConfig({ ...common, BATCH_PORT: '0', BATCH_BODY_LIMIT_MB: '8' }));
  });

  afterAll(async () => {
    await Promise.all([gw?.app.close(), batch?.app.close()]);
    await db?.drop();
  });

  it('800 generated and mutated requests: no 5xx, no hang, no dropped connection, every 4xx with {"error"}', async () => {
    const report = await runFuzz({ gatewayUrl: gw.url, batchUrl: batch.url, key: KEY }, 20261124, 800);
    expect(report.cases).toBe(800);
    expect(report.defects).toEqual([]);
    // the generator really exercises both success and rejection paths
    expect(report.byStatus['200'] ?? 0).toBeGreaterThan(50);
    expect(report.byStatus['400'] ?? 0).toBeGreaterThan(300);
    // and the servers are still healthy afterwards
    expect((await fetch(`${gw.url}/v2/health/ready`)).status).toBe(200);
    expect((await fetch(`${batch.url}/v2/health/ready`)).status).toBe(200);
  });
});
