import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inferBinaryFp32 } from './support/oip-client';
import { freePort, spawnNode, type Spawned } from './support/processes';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';

const MAIN = resolve(process.cwd(), 'dist/apps/gateway/src/main.js');
const ITEM = 3 * 48 * 192;

describe('gateway SIGTERM under load', () => {
  let db: TestDatabase;
  let gw: Spawned;
  let port: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    port = await freePort();
    gw = spawnNode(MAIN, {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: testQueuePrefix(),
      HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      GATEWAY_GRPC_PORT: String(await freePort()),
      MODEL_REPOSITORY: resolve(process.cwd(), 'models'),
      LOG_LEVEL: 'info',
      TANDEM_AUTH: 'off', // auth has its own tests (test/auth.e2e.spec.ts)
      SHUTDOWN_GRACE_S: '30',
    });
    await gw.waitFor(/gateway REST listening/, 30_000);
  });

  afterAll(async () => {
    if (gw?.proc.exitCode === null) gw.proc.kill('SIGKILL');
    await db?.drop();
  });

  it('finishes every in-flight and queued request, then exits 0', async () => {
    const input = new Float32Array(8 * ITEM).map((_, i) => Math.cos(i * 0.01));
    const started: Promise<number>[] = [];
    for (let i = 0; i < 40; i++) started.push(inferBinaryFp32(`http://127.0.0.1:${port}`, 'ppocr_cls', input, [8, 3, 48, 192]).then((r) => r.status));
    // Let the requests reach the server and queue behind the single cls replica.
    await new Promise((r) => setTimeout(r, 150));
    gw.proc.kill('SIGTERM');
    const statuses = await Promise.all(started);
    const { code } = await gw.exited;
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(code).toBe(0);
    expect(gw.output()).toMatch(/"msg":"stopped"/);
  });
});
