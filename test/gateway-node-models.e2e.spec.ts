import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { GrpcServerService } from '../apps/gateway/src/grpc/grpc-server.service';
import { InferenceService } from '../apps/gateway/src/inference/inference.service';
import { tempModelRepo, writeNodeModel, type TempRepo } from './support/model-repo';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

// Node models (models/<m>/<v>/model.ts, "backend": "node") over real REST and gRPC sockets: the
// shipped scorer, and throw-away models that misbehave in every way issue 14 names.

const FX = { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }] };

/** x[0] picks how it misbehaves; otherwise y = 2x. */
const FLAKY = `
import { defineModel, InputError } from '@tandem/sdk';
export default defineModel({
  initialize: () => ({ hog: [] as unknown[] }),
  async execute({ x }, state, ctx) {
    const xs = x.data as Float32Array;
    switch (xs[0]) {
      case 1: throw new InputError('x[0] = 1 is not allowed');
      case 2: throw new Error('flaky bug ' + ctx.name);
      case 3: setTimeout(() => { throw new Error('stray timer'); }, 1); await new Promise((r) => setTimeout(r, 10_000)); break;
      case 4: process.exit(1); break;
      case 5: for (;;) state.hog.push(new Array(1e5).fill({ s: 'x'.repeat(10) }));
      case 6: for (;;) {}
    }
    return { y: { datatype: 'FP32', shape: x.shape, data: xs.map((v) => 2 * v) } };
  },
});`;

/** BLS: scorer, then flaky (whose InputError surfaces as this model's 400). */
const PIPELINE = `
import { defineModel } from '@tandem/sdk';
export default defineModel({
  async execute({ x }, _s, ctx, info) {
    if (info.warmup) return { y: { datatype: 'FP32', shape: x.shape, data: new Float32Array(x.data.length) } };
    const { score } = await ctx.infer('scorer', [x]);
    const { y } = await ctx.infer('flaky', [{ ...score, name: 'x' }]);
    ctx.log.info('pipeline ran', { rows: x.shape[0] });
    return { y };
  },
});`;

const BYTES = `
import { defineModel, textOf, textTensor } from '@tandem/sdk';
export default defineModel({
  execute({ s }, _state, _ctx, info) {
    if (info.warmup && textOf(s.data).some((t) => t !== '')) throw new Error('warm-up elements are not empty');
    return { t: textTensor(textOf(s.data).map((t) => t.toUpperCase()), s.shape) };
  },
});`;

const MUTABLE = (k: number): string => `
import { defineModel } from '@tandem/sdk';
export default defineModel({ execute: ({ x }) => ({ y: { datatype: 'FP32', shape: x.shape, data: (x.data as Float32Array).map((v) => ${k} * v) } }) });`;

const PROTO = resolve(process.cwd(), 'apps/gateway/src/grpc/proto');
const pkg = loadPackageDefinition(
  loadSync([resolve(PROTO, 'grpc_service.proto')], { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }),
) as unknown as {
  inference: { GRPCInferenceService: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => Client };
};
type Client = Record<string, (req: object, md: Metadata, opts: object, cb: (err: ServiceError | null, res: Record<string, unknown>) => void) => void> & {
  close(): void;
};
const grpc = <T>(c: Client, method: string, req: object): Promise<T> =>
  new Promise((ok, fail) => c[method]!(req, new Metadata(), {}, (err, res) => (err ? fail(err) : ok(res as T))));

type Line = {
  level: number;
  msg: string;
  context?: string;
  model?: string;
  version?: string;
  errorId?: string;
  err?: { message?: string; stack?: string };
} & Record<string, unknown>;

describe('node models over REST and gRPC', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let gw: RunningGateway;
  let client: Client;
  const lines: Line[] = [];
  const logSink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });

  const post = async (path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${gw.url}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const infer = (model: string, xs: number[], timeoutUs?: number) =>
    post(`/v2/models/${model}/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [xs.length, 1], data: xs }],
      ...(timeoutUs ? { parameters: { timeout: timeoutUs } } : {}),
    });
  const ys = (r: { body: Record<string, unknown> }): number[] => (r.body.outputs as { data: number[] }[])[0]!.data;
  const metric = async (name: string): Promise<number> => {
    const m = (await (await fetch(`${gw.url}/metrics`)).text()).split('\n').find((l) => l.startsWith(name + ' '));
    return m ? Number(m.split(' ')[1]) : 0;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: { max_batch_size: 64 } } });
    writeNodeModel(repo.dir, 'flaky', FLAKY, { max_batch_size: 8, device: { memory_limit_mib: 32 }, ...FX });
    writeNodeModel(repo.dir, 'pipeline', PIPELINE, { max_batch_size: 8, warmup: { batch_sizes: [2] }, ...FX });
    writeNodeModel(repo.dir, 'bytes', BYTES, {
      max_batch_size: 4,
      warmup: { batch_sizes: [1, 4] },
      inputs: [{ name: 's', datatype: 'BYTES', shape: [-1, 1] }],
      outputs: [{ name: 't', datatype: 'BYTES', shape: [-1, 1] }],
    });
    writeNodeModel(repo.dir, 'mutable', MUTABLE(2), { max_batch_size: 8, ...FX });
    writeNodeModel(repo.dir, 'broken', `export default defineModel({ execute( });`, { max_batch_size: 8, ...FX });
    writeNodeModel(repo.dir, 'notmodel', `export default { execute: () => ({}) };`, { max_batch_size: 8, ...FX });
    writeNodeModel(
      repo.dir,
      'initfail',
      `import { defineModel } from '@tandem/sdk'; export default defineModel({ initialize() { throw new Error('weights missing'); }, execute: () => ({}) });`,
      { max_batch_size: 8, ...FX },
    );
    writeNodeModel(repo.dir, 'undeclared', MUTABLE(1), { max_batch_size: 8, inputs: FX.inputs });
    gw = await startGateway(loadGatewayConfig({ ...gatewayEnv(db.url), MODEL_REPOSITORY: repo.dir, LOG_LEVEL: 'info' }), { logDestination: logSink });
    client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${gw.app.get(GrpcServerService).port}`, credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await gw?.app.close();
    await db?.drop();
    repo?.remove();
  });

  it('the scorer is a node model: metadata, and tanh of the values sent over REST and gRPC', async () => {
    const meta = await get('/v2/models/scorer');
    expect(meta.body).toMatchObject({
      name: 'scorer',
      platform: 'node',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }],
      outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
    });
    const xs = [0.5, -1, 0, 2, -3.5];
    const rest = await post('/v2/models/scorer/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [5, 1], data: xs }] });
    expect(rest.status).toBe(200);
    ys(rest).forEach((v, i) => expect(v).toBeCloseTo(Math.tanh(xs[i]!), 6));
    const res = await grpc<{ outputs: { name: string; shape: string[]; contents: { fp32_contents: number[] } }[] }>(client, 'ModelInfer', {
      model_name: 'scorer',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [5, 1], contents: { fp32_contents: xs } }],
    });
    expect(res.outputs[0]).toMatchObject({ name: 'score', shape: ['5', '1'] });
    res.outputs[0]!.contents.fp32_contents.forEach((v, i) => expect(v).toBeCloseTo(Math.tanh(xs[i]!), 5));
    const g = await grpc<{ platform: string }>(client, 'ModelMetadata', { name: 'scorer', version: '' });
    expect(g.platform).toBe('node');
  });

  it('ctx.infer calls other models through the gateway; their 400 stays a 400; ctx.log reaches the log with model and version', async () => {
    const ok = await infer('pipeline', [0.5, -2]);
    expect(ok.status).toBe(200);
    expect(ys(ok)[0]).toBeCloseTo(2 * Math.tanh(0.5), 5);
    expect(ys(ok)[1]).toBeCloseTo(2 * Math.tanh(-2), 5);
    // tanh(x) is never 1 in FP32 for a small x, but flaky refuses 1 itself: send x so that tanh(x) rounds to 1.
    const refused = await infer('pipeline', [20]);
    expect(refused).toEqual({ status: 400, body: { error: 'x[0] = 1 is not allowed' } });
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'pipeline ran', model: 'pipeline', version: '1', rows: 2, context: 'NodeModel' }));
    expect(await metric('tandem_inference_requests_total{model="scorer",outcome="success"}')).toBeGreaterThanOrEqual(2);
  });

  it('BYTES in and out; its warm-up fed empty elements', async () => {
    const r = await post('/v2/models/bytes/infer', { inputs: [{ name: 's', datatype: 'BYTES', shape: [2, 1], data: ['ab', 'héllo'] }] });
    expect(r.status).toBe(200);
    expect((r.body.outputs as { data: string[] }[])[0]!.data).toEqual(['AB', 'HÉLLO']);
  });

  it('execute throws InputError → 400 with its message (gRPC INVALID_ARGUMENT); other throws → 500 with an error id, the stack in the log', async () => {
    expect(await infer('flaky', [1])).toEqual({ status: 400, body: { error: 'x[0] = 1 is not allowed' } });
    const bug = await infer('flaky', [2]);
    expect(bug.status).toBe(500);
    expect(bug.body).toEqual({ error: 'internal error', errorId: expect.any(String) });
    const logged = lines.find((l) => l.errorId === bug.body.errorId);
    expect(logged?.msg).toMatch(/model 'flaky' version 1 failed: flaky bug flaky/);
    expect(logged?.msg).toMatch(/model\.ts/);

    const input = await grpc(client, 'ModelInfer', {
      model_name: 'flaky',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [1] } }],
    }).catch((e: ServiceError) => e);
    expect(input).toMatchObject({ code: status.INVALID_ARGUMENT, details: 'x[0] = 1 is not allowed' });
    const internal = (await grpc(client, 'ModelInfer', {
      model_name: 'flaky',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [2] } }],
    }).catch((e: ServiceError) => e)) as ServiceError;
    expect(internal.code).toBe(status.INTERNAL);
    const id = /error id ([0-9a-f-]{36})/.exec(internal.details)?.[1];
    expect(internal.metadata.get('error-id')[0]).toBe(id);
    expect(lines.find((l) => l.errorId === id)?.msg).toMatch(/flaky bug/);

    // Nothing else was disturbed: the same replica answers, other models too.
    expect(ys(await infer('flaky', [0.25]))).toEqual([0.5]);
    expect((await infer('scorer', [0.1])).status).toBe(200);
  });

  it.each([
    [3, 'crashed'],
    [4, 'crashed'],
    [5, 'out_of_memory'],
  ] as const)('a model that kills its thread (x=%s) fails fast, its replica restarts, the gateway serves on', async (v, reason) => {
    const before = await metric(`tandem_inference_replica_restarts_total{model="flaky",version="1",reason="${reason}"}`);
    const t0 = Date.now();
    const others = Promise.all(Array.from({ length: 10 }, (_, i) => infer('scorer', [i / 10])));
    const [dying, beside] = await Promise.all([infer('flaky', [v]), infer('flaky', [0.5])]);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(dying.status).toBe(500);
    expect(dying.body.errorId).toEqual(expect.any(String));
    // A request batched with it fails as fast; one that came after runs on the new thread.
    expect([200, 500, 503]).toContain(beside.status);
    expect((await others).every((r) => r.status === 200)).toBe(true);
    expect(ys(await infer('flaky', [0.5]))).toEqual([1]);
    expect(await metric(`tandem_inference_replica_restarts_total{model="flaky",version="1",reason="${reason}"}`)).toBe(before + 1);
    expect(lines).toContainEqual(expect.objectContaining({ model: 'flaky', version: '1', event: 'replica_restart', reason }));
  });

  it('execute hanging past the deadline → 504, and the replica is recycled while the pool serves on', async () => {
    const hung = await infer('flaky', [6], 300_000);
    expect(hung.status).toBe(504);
    expect(hung.body.error).toMatch(/did not answer before the deadline/);
    expect((await infer('scorer', [0.3])).status).toBe(200);
    expect(ys(await infer('flaky', [0.5]))).toEqual([1]);
    expect(await metric('tandem_inference_replica_restarts_total{model="flaky",version="1",reason="hung"}')).toBe(1);
    expect(gw.app.get(InferenceService).replicas('flaky')).toBe(1);
  });

  it('a module that does not compile, is not defineModel(...), throws in initialize or declares no outputs: failed with the reason, the rest loads', async () => {
    const reasons: Record<string, RegExp> = {
      broken: /cannot compile .*broken\/1\/model\.ts:1:\d+/,
      notmodel: /default export must be defineModel/,
      initfail: /initialize failed: weights missing/,
      undeclared: /declares its outputs in config\.json/,
    };
    for (const [m, reason] of Object.entries(reasons)) {
      const ready = await get(`/v2/models/${m}/ready`);
      expect(ready.status).toBe(400);
      expect(ready.body).toEqual({ name: m, ready: false, reason: expect.stringMatching(reason) });
      const meta = await get(`/v2/models/${m}`);
      expect(meta.status).toBe(503);
      expect(meta.body.error).toMatch(reason);
      expect(lines.some((l) => l.msg.includes(`model ${m}/1 failed to load`) && reason.test(l.msg))).toBe(true);
    }
    const index = (await post('/v2/repository/index')).body as unknown as { name: string; state: string; reason: string }[];
    expect(
      index
        .filter((e) => e.state === 'READY')
        .map((e) => e.name)
        .sort(),
    ).toEqual(['bytes', 'flaky', 'mutable', 'pipeline', 'scorer']);
    expect(index.find((e) => e.name === 'initfail')).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(reasons.initfail!) });
    const grpcMeta = await grpc(client, 'ModelMetadata', { name: 'initfail', version: '' }).catch((e: ServiceError) => e);
    expect(grpcMeta).toMatchObject({ code: status.UNAVAILABLE, details: expect.stringMatching(reasons.initfail!) });
    expect(lines.some((l) => l.msg.includes('failed to start: initialize failed: weights missing') && String(l.stack).includes('model.ts'))).toBe(true);
  });

  it('load recompiles the file; unload frees the replicas', async () => {
    expect(ys(await infer('mutable', [1.5]))).toEqual([3]);
    writeFileSync(join(repo.dir, 'mutable', '1', 'model.ts'), MUTABLE(3));
    expect((await post('/v2/repository/models/mutable/load')).status).toBe(200);
    expect(ys(await infer('mutable', [1.5]))).toEqual([4.5]);
    expect((await post('/v2/repository/models/mutable/unload')).status).toBe(200);
    expect((await infer('mutable', [1])).status).toBe(503);
    // A broken edit leaves the model failed on load and says why; fixing it brings it back.
    writeFileSync(join(repo.dir, 'initfail', '1', 'model.ts'), MUTABLE(5));
    expect((await post('/v2/repository/models/initfail/load')).status).toBe(200);
    expect(ys(await infer('initfail', [1]))).toEqual([5]);
  });
});
