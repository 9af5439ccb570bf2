import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { GrpcServerService } from '../apps/gateway/src/grpc/grpc-server.service';
import { InferenceService } from '../apps/gateway/src/inference/inference.service';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

const PROTO = resolve(process.cwd(), 'apps/gateway/src/grpc/proto');
const defs = loadSync([resolve(PROTO, 'grpc_service.proto')], { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
type Callback = (err: ServiceError | null, res: Record<string, unknown>) => void;
type Client = Record<string, (req: object, md: Metadata, cb: Callback) => void> & { close(): void };
const pkg = loadPackageDefinition(defs) as unknown as {
  inference: { GRPCInferenceService: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => Client };
};

const N = 5_000;
const randomName = (): string => `m${randomBytes(6).toString('hex')}`;
const inputs = [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [0.5] }];

/** Runs `fn` over `xs` with at most `width` calls in flight (sockets, not a promise storm). */
async function pool<T, R>(xs: T[], width: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(xs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < xs.length) {
        const i = next++;
        out[i] = await fn(xs[i]!);
      }
    }),
  );
  return out;
}

describe('unknown model names create no per-model state (REST and gRPC over real sockets)', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let gw: RunningGateway;
  let grpc: Client;

  const metricsText = async (): Promise<string> => (await fetch(`${gw.url}/metrics`)).text();
  const inferenceLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('tandem_inference_'));
  const grpcInfer = (req: object): Promise<number> => new Promise((ok) => grpc.ModelInfer!(req, new Metadata(), (err) => ok(err ? err.code : status.OK)));

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = tempModelRepo({
      scorer: { from: 'scorer', config: { max_batch_size: 64, inputs: [{ name: 'x', shape: [-1, 1] }] } },
      spare: { from: 'scorer', config: { max_batch_size: 64, inputs: [{ name: 'x', shape: [-1, 1] }] } },
    });
    gw = await startGateway(loadGatewayConfig({ ...gatewayEnv(db.url), MODEL_REPOSITORY: repo.dir }));
    grpc = new pkg.inference.GRPCInferenceService(`127.0.0.1:${gw.app.get(GrpcServerService).port}`, credentials.createInsecure());
    // One known request per model, so every per-model series the known models will have exists.
    for (const m of ['scorer', 'spare']) {
      const res = await fetch(`${gw.url}/v2/models/${m}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs }),
      });
      expect(res.status).toBe(200);
    }
  });

  afterAll(async () => {
    grpc?.close();
    await gw?.app.close();
    await db?.drop();
    repo?.remove();
  });

  it(`${N} random names over REST and ${N} over gRPC: all 404 / NOT_FOUND, /metrics and the service's maps unchanged`, async () => {
    const service = gw.app.get(InferenceService);
    const before = inferenceLines(await metricsText());
    const trackedBefore = service.trackedModels();
    expect(trackedBefore).toBe(2);
    expect(before.some((l) => l.includes('model="scorer"'))).toBe(true);

    const restNames = Array.from({ length: N }, randomName);
    const rest = await pool(restNames, 32, async (name) => {
      const res = await fetch(`${gw.url}/v2/models/${name}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs }),
      });
      return { status: res.status, body: (await res.json()) as { error?: string } };
    });
    expect(rest.filter((r) => r.status !== 404)).toEqual([]);
    expect(rest[0]!.body).toEqual({ error: `unknown model '${restNames[0]}'` });

    const grpcNames = Array.from({ length: N }, randomName);
    const codes = await pool(grpcNames, 32, (name) =>
      grpcInfer({ model_name: name, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [0.5] } }] }),
    );
    expect(codes.filter((c) => c !== status.NOT_FOUND)).toEqual([]);

    // Requests the transports reject before the service (bad bodies, unknown versions, no name)
    // must not create series either.
    const bad = await fetch(`${gw.url}/v2/models/${randomName()}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs": 7}',
    });
    expect(bad.status).toBe(400);
    const badVersion = await fetch(`${gw.url}/v2/models/scorer/versions/999/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs }),
    });
    expect(badVersion.status).toBe(404);
    expect(await grpcInfer({ model_name: '', inputs: [] })).toBe(status.INVALID_ARGUMENT);
    expect(await grpcInfer({ model_name: randomName(), inputs: [{ name: 'x', datatype: 'NOPE', shape: [1], contents: {} }] })).toBe(status.INVALID_ARGUMENT);

    const after = inferenceLines(await metricsText());
    const models = new Set(after.flatMap((l) => [...l.matchAll(/model="([^"]*)"/g)].map((m) => m[1])));
    expect([...models].sort()).toEqual(['scorer', 'spare']);
    expect(after.filter((l) => /version="999"/.test(l))).toEqual([]);
    expect(after.length).toBe(before.length);
    expect(service.trackedModels()).toBe(trackedBefore);
  });

  it('the idle → busy hook (the co-location hint) fires at admission for known models only, once per request after idle', async () => {
    const service = gw.app.get(InferenceService);
    const fired: number[] = [];
    service.onRequestAfterIdle(() => fired.push(Date.now()));
    const post = (model: string): Promise<number> =>
      fetch(`${gw.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs }) }).then(
        (r) => r.status,
      );
    expect(await Promise.all(Array.from({ length: 20 }, () => post(randomName())))).toEqual(Array(20).fill(404));
    expect(fired).toEqual([]); // an unknown name is not traffic to make room for
    expect(await post('scorer')).toBe(200);
    expect(fired).toHaveLength(2); // at admission (before the body is read), and as the request starts
  });

  it('unloading a model removes its series from /metrics; the other model keeps its own', async () => {
    expect(inferenceLines(await metricsText()).some((l) => l.includes('model="spare"'))).toBe(true);
    const res = await fetch(`${gw.url}/v2/repository/models/spare/unload`, { method: 'POST' });
    expect(res.status).toBe(200);
    const lines = inferenceLines(await metricsText());
    expect(lines.filter((l) => l.includes('model="spare"'))).toEqual([]);
    expect(lines.some((l) => l.includes('model="scorer"'))).toBe(true);
  });
});
