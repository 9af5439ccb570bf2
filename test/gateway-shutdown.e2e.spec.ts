import { mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestsReceived } from '../scripts/support/gateway-requests';
import { inferBinaryFp32 } from './support/oip-client';
import { freePort, spawnNode, type Spawned } from './support/processes';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';

const MAIN = resolve(process.cwd(), 'dist/apps/gateway/src/main.js');
const PROTO = resolve(process.cwd(), 'apps/gateway/src/grpc/proto');
type Stream = NodeJS.EventEmitter;
type GrpcPkg = {
  inference: {
    GRPCInferenceService: new (
      a: string,
      c: ReturnType<typeof credentials.createInsecure>,
    ) => { ModelInfer(r: object, md: Metadata, cb: (e: ServiceError | null) => void): void; close(): void };
  };
  grpc: { health: { v1: { Health: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => { Watch(r: object): Stream; close(): void } } } };
};
const grpcPkg = loadPackageDefinition(
  loadSync([resolve(PROTO, 'grpc_service.proto'), resolve(PROTO, 'health.proto')], {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  }),
) as unknown as GrpcPkg;
const ITEM = 3 * 48 * 192;

/**
 * The shipped ppocr_cls without its queue time bound: this test is about draining what was
 * admitted, and 40 × 8 images at once are more than 400 ms of work on a loaded 2-core box
 * (the rest would be refused 503 by admission, models/README.md).
 */
function clsWithoutTimeBound(): string {
  const repo = mkdtempSync(join(tmpdir(), 'tandem-shutdown-'));
  mkdirSync(join(repo, 'ppocr_cls', '1'), { recursive: true });
  const config = JSON.parse(readFileSync(resolve('models/ppocr_cls/config.json'), 'utf8')) as { dynamic_batching: Record<string, unknown> };
  delete config.dynamic_batching.max_queue_time_ms;
  writeFileSync(join(repo, 'ppocr_cls', 'config.json'), JSON.stringify(config));
  symlinkSync(realpathSync(resolve('models/ppocr_cls/1/model.onnx')), join(repo, 'ppocr_cls', '1', 'model.onnx'));
  return repo;
}

describe('gateway SIGTERM under load', () => {
  let db: TestDatabase;
  let gw: Spawned;
  let port: number;
  let grpcPort: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    port = await freePort();
    grpcPort = await freePort();
    gw = spawnNode(MAIN, {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: testQueuePrefix(),
      HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      GATEWAY_GRPC_PORT: String(grpcPort),
      MODEL_REPOSITORY: clsWithoutTimeBound(),
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

  it('finishes every in-flight and queued request (REST and gRPC), ends health watches with NOT_SERVING, then exits 0', async () => {
    const input = new Float32Array(8 * ITEM).map((_, i) => Math.cos(i * 0.01));
    // A health Watch that must see NOT_SERVING and then its end; REST and gRPC calls in flight.
    const addr = `127.0.0.1:${grpcPort}`;
    const client = new grpcPkg.inference.GRPCInferenceService(addr, credentials.createInsecure());
    const health = new grpcPkg.grpc.health.v1.Health(addr, credentials.createInsecure());
    const watch = health.Watch({ service: '' });
    const seen: string[] = [];
    watch.on('data', (m: { status: string }) => seen.push(m.status));
    const watchEnded = new Promise<void>((ok) => watch.on('end', ok));
    // The watch's first status comes after a readiness check: SERVING before the SIGTERM.
    await new Promise((ok) => watch.once('data', ok));
    const started: Promise<number>[] = [];
    for (let i = 0; i < 40; i++) started.push(inferBinaryFp32(`http://127.0.0.1:${port}`, 'ppocr_cls', input, [8, 3, 48, 192]).then((r) => r.status));
    // 10 × 32 images behind the REST ones: more than the 500 ms drain delay, so gRPC's own drain is what finishes them.
    const big = new Float32Array(32 * ITEM).map((_, i) => Math.sin(i * 0.01));
    const req = { model_name: 'ppocr_cls', inputs: [{ name: 'x', datatype: 'FP32', shape: [32, 3, 48, 192] }], raw_input_contents: [Buffer.from(big.buffer)] };
    const grpcCalls = Array.from({ length: 10 }, () => new Promise<number>((ok) => client.ModelInfer(req, new Metadata(), (e) => ok(e ? e.code : 0))));
    // SIGTERM once every request has reached the server (a call that arrives after it is refused,
    // rightly: a fixed sleep made this test depend on the host's speed), while work is still queued.
    let ongoing = 0;
    for (const t0 = Date.now(); Date.now() - t0 < 30_000; await new Promise((r) => setTimeout(r, 10))) {
      const got = await requestsReceived(`http://127.0.0.1:${port}`, 'ppocr_cls');
      ongoing = got.ongoing;
      if (got.answered + got.ongoing >= 50) break;
    }
    gw.proc.kill('SIGTERM');
    const statuses = await Promise.all(started);
    const grpcCodes = await Promise.all(grpcCalls);
    await watchEnded;
    client.close();
    health.close();
    const { code } = await gw.exited;
    expect(ongoing).toBeGreaterThan(0); // the drain had work to finish
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(grpcCodes).toEqual(Array(10).fill(0));
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    expect(code).toBe(0);
    expect(gw.output()).toMatch(/"msg":"stopped"/);
  });
});
